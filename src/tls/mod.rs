//! Trust and TLS settings: the roots and the client config (the words for TLS
//! failures live in [`crate::error`]).

#[cfg(windows)]
mod system_roots;
pub(crate) mod verifier;
pub(crate) mod x509;

use std::cell::Cell;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, IoState, RootCertStore};

use crate::error::{CaProblem, Error, Result};

/// Whether one connection's server asked for a client certificate (none is
/// ever offered): a fact of that connection, kept by it.
///
/// Without it a server that demands client authentication fails the handshake
/// with a bare `handshake_failure` alert, and the user would not learn why.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ClientCertProbe {
    asked: bool,
}

impl ClientCertProbe {
    /// `tls.process_new_packets()`, noting whether the server asked for a
    /// client certificate meanwhile. rustls asks the config's resolver
    /// synchronously inside this call, on this thread, and nowhere else.
    pub(crate) fn process(
        &mut self,
        tls: &mut ClientConnection,
    ) -> std::result::Result<IoState, rustls::Error> {
        ASKED.set(false);
        let result = tls.process_new_packets();
        self.asked |= ASKED.replace(false);
        result
    }

    /// Whether a CertificateRequest arrived during the handshake.
    pub(crate) fn was_asked(&self) -> bool {
        self.asked
    }
}

thread_local! {
    /// Set by [`NoClientCert`] during one [`ClientCertProbe::process`] call.
    /// The configs are shared by every connection (their session cache
    /// resumes only with the very same resolver), so the resolver cannot
    /// hold a connection's fact: it hands it to the call in progress.
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// The client-certificate resolver of every config: offers none, and notes
/// the request for the connection being processed.
#[derive(Debug)]
struct NoClientCert;

impl ResolvesClientCert for NoClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        ASKED.set(true);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The crypto provider `client_config` uses, as `--version` names it; change both together.
pub(crate) const CRYPTO_PROVIDER: &str = "ring";

/// Builds the client config: TLS 1.2 and 1.3, webpki roots plus `cacerts`,
/// verified by [`verifier::server_verifier`]. Connections note whether they
/// were asked for a client certificate with [`ClientCertProbe::process`].
pub fn client_config(cacerts: &[impl AsRef<Path>]) -> Result<Arc<ClientConfig>> {
    let (roots, _) = root_store(cacerts)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier::server_verifier(roots, Arc::clone(&provider))?;
    // "dangerous" only in name: the verifier is webpki's, with better words.
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::TlsSetup { source })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(NoClientCert));
    Ok(Arc::new(config))
}

/// The client config for TLS to an `https://` proxy: the roots of
/// [`client_config`] plus `proxy_cacerts` (`--proxy-cacert`), offering ALPN
/// `http/1.1` as curl does (some proxies pick their protocol by it).
pub(crate) fn proxy_client_config(
    cacerts: &[impl AsRef<Path>],
    proxy_cacerts: &[impl AsRef<Path>],
) -> Result<Arc<ClientConfig>> {
    let paths: Vec<&Path> = cacerts
        .iter()
        .map(AsRef::as_ref)
        .chain(proxy_cacerts.iter().map(AsRef::as_ref))
        .collect();
    let config = client_config(&paths)?;
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The built-in roots (on Windows also the system store's), plus every
/// certificate in `cacerts`, and how many certificates each file added.
pub(crate) fn root_store(cacerts: &[impl AsRef<Path>]) -> Result<(RootCertStore, Vec<usize>)> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    #[cfg(windows)]
    system_roots::add(&mut roots);
    let counts = cacerts
        .iter()
        .map(|path| add_pem_roots(&mut roots, path.as_ref()))
        .collect::<Result<_>>()?;
    Ok((roots, counts))
}

/// Adds the certificates in the PEM file at `path`; how many there were.
fn add_pem_roots(roots: &mut RootCertStore, path: &Path) -> Result<usize> {
    let invalid = |problem| Error::CaFileInvalid {
        path: path.to_path_buf(),
        problem,
    };
    if path.is_dir() {
        return Err(invalid(CaProblem::Directory));
    }
    let pem = fs::read(path).map_err(|source| Error::CaFileRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut found = 0;
    for (index, cert) in (1..).zip(CertificateDer::pem_slice_iter(&pem)) {
        let cert = cert.map_err(|e| invalid(CaProblem::Pem(e)))?;
        roots
            .add(cert)
            .map_err(|source| invalid(CaProblem::NotAnAnchor { index, source }))?;
        found += 1;
    }
    if found == 0 {
        return Err(invalid(if pem.iter().all(u8::is_ascii_whitespace) {
            CaProblem::Empty
        } else {
            CaProblem::NoCertificate
        }));
    }
    Ok(found)
}
