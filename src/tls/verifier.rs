//! The server certificate check: webpki's, unchanged, except that a name
//! mismatch carries the names the certificate holds as its own bytes.
//!
//! rustls-webpki 0.103 reports a mismatch's names as its Debug text of each
//! name (`DnsName("...")`, made with `from_utf8_lossy`, nothing escaped): a
//! hostile certificate's escape sequences come through raw, and bytes that
//! are not UTF-8 are lost. Here the names are read from the certificate
//! ([`crate::tls::x509`]) into [`NameMismatch`], for [`crate::error`] to print
//! escaped. If webpki's error ever carries the names as bytes, this goes.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use crate::error::{Error, NameMismatch};
use crate::tls::x509;

/// Sees the certificate a server presents, and the intermediates it sends
/// with it, before they are verified.
pub type Observer = Box<dyn Fn(&CertificateDer<'_>, &[CertificateDer<'_>]) + Send + Sync>;

/// webpki's verifier for `roots`, with a name mismatch reported as a
/// [`NameMismatch`] (in `CertificateError::Other`).
pub fn server_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    build(roots, provider, None)
}

/// [`server_verifier`], showing `observer` each chain first: the doctor
/// reports the chain even when verification refuses it.
pub fn observed_server_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    observer: Observer,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    build(roots, provider, Some(observer))
}

fn build(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    observer: Option<Observer>,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::TlsSetup {
            source: rustls::Error::General(e.to_string()),
        })?;
    Ok(Arc::new(NamesFromCertificate { inner, observer }))
}

struct NamesFromCertificate {
    inner: Arc<WebPkiServerVerifier>,
    observer: Option<Observer>,
}

impl fmt::Debug for NamesFromCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamesFromCertificate")
            .field("inner", &self.inner)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl ServerCertVerifier for NamesFromCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(observe) = &self.observer {
            observe(end_entity, intermediates);
        }
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {
                let covers = x509::parse(end_entity)
                    .ok()
                    .map(|cert| (cert.dns_names, cert.ip_addresses));
                let mismatch = NameMismatch { covers };
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(mismatch)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
