//! The doctor's trust: the tunnel's own TLS config, with its verifier
//! wrapped so that the chain the server presented is kept even when
//! verification refuses it, and the words for that chain (names, issuer,
//! validity, days left).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::json::Value;
use crate::error::{utc, Error};
use crate::tls::{self, ClientCertProbe};
use crate::{text, verifier, x509};

/// A leaf certificate expiring within this many days gets a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// The tunnel's TLS config, with its verifier wrapped so that the chain the
/// server presented is kept even when verification refuses it.
pub(super) struct Trust {
    /// The config for the handshake.
    pub(super) config: Arc<ClientConfig>,
    /// Tells whether the server asked for a client certificate.
    pub(super) probe: Arc<ClientCertProbe>,
    recorder: Arc<Recorder>,
}

impl Trust {
    /// The trust the tunnel would use with `cacerts`, and how many
    /// certificates each file added.
    pub(super) fn new(cacerts: &[PathBuf]) -> Result<(Trust, Vec<usize>), Error> {
        let probe = Arc::new(ClientCertProbe::default());
        let mut config = Arc::unwrap_or_clone(tls::client_config(cacerts, Arc::clone(&probe))?);
        // The config does not hand its verifier out: the wrapped one gets the
        // same roots, built again (the CA files are read twice).
        let (roots, counts) = tls::root_store(cacerts)?;
        let provider = Arc::clone(config.crypto_provider());
        let recorder = Arc::new(Recorder {
            inner: verifier::server_verifier(roots, provider)?,
            chain: Mutex::new(Vec::new()),
        });
        config
            .dangerous()
            .set_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>);
        let trust = Trust {
            config: Arc::new(config),
            probe,
            recorder,
        };
        Ok((trust, counts))
    }

    /// The chain the server presented in the last handshake, if it got that far.
    pub(super) fn presented_chain(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(
            &mut *self
                .recorder
                .chain
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// Keeps the presented chain, then lets the tunnel's verifier decide: the
/// verification and its error words are the tunnel's.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
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

/// A line and a JSON object per certificate, and a warning if the leaf
/// expires soon.
pub(super) fn describe_chain(
    chain: &[CertificateDer<'_>],
    host: &str,
) -> (Vec<String>, Vec<Value>, Option<String>) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut lines = Vec::new();
    let mut values = Vec::new();
    let mut warning = None;
    for (i, der) in chain.iter().enumerate() {
        let which = if i == 0 {
            "certificate".to_string()
        } else {
            format!("issuer {i}")
        };
        let cert = match x509::parse(der) {
            Ok(cert) => cert,
            Err(problem) => {
                lines.push(format!("{which}: cannot be read ({problem})"));
                values.push(Value::Object(vec![("error".into(), problem.into())]));
                continue;
            }
        };
        let mut names: Vec<String> = cert
            .dns_names
            .iter()
            .map(|n| text::escape_bytes(n))
            .collect();
        names.extend(cert.ip_addresses.iter().map(ToString::to_string));
        let days_left = (cert.not_after - now).div_euclid(86_400);
        let left = if cert.not_after < now {
            format!("expired {} ago", days(-days_left))
        } else {
            format!("{} left", days(days_left))
        };
        let subject_cn = cert.subject_cn.as_deref().map(text::escape_bytes);
        let issuer_cn = cert.issuer_cn.as_deref().map(text::escape_bytes);
        let cn = |name: &Option<String>| name.clone().unwrap_or_else(|| "(no CN)".into());
        lines.push(format!(
            "{which}: subject CN {}; covers {}; issuer CN {}; valid {} to {} ({left})",
            cn(&subject_cn),
            if names.is_empty() {
                "no names".to_string()
            } else {
                names.join(", ")
            },
            cn(&issuer_cn),
            date(cert.not_before),
            date(cert.not_after),
        ));
        if i == 0 && cert.not_after >= now && days_left < EXPIRY_WARNING_DAYS {
            warning = Some(format!(
                "the certificate for {host} expires in {}, on {}",
                days(days_left),
                date(cert.not_after)
            ));
        }
        values.push(Value::Object(vec![
            ("subject_cn".into(), subject_cn.into()),
            ("names".into(), names.into()),
            ("issuer_cn".into(), issuer_cn.into()),
            ("not_before".into(), date(cert.not_before).into()),
            ("not_after".into(), date(cert.not_after).into()),
            ("days_left".into(), Value::Int(days_left)),
        ]));
    }
    (lines, values, warning)
}

/// `1 day`, `6 days`.
fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// A validity date in the tunnel's format; dates before 1970 are rare enough
/// to be shown only as such.
fn date(secs: i64) -> String {
    match u64::try_from(secs) {
        Ok(secs) => utc(UnixTime::since_unix_epoch(Duration::from_secs(secs))),
        Err(_) => "a date before 1970".into(),
    }
}
