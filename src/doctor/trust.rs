//! The doctor's trust: the tunnel's own TLS config, with a verifier that
//! shows it the chain the server presented, kept even when verification
//! refuses it, and the words for that chain (names, issuer,
//! validity, days left).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::ClientConfig;

use super::json::Value;
use crate::error::{utc, Error};
use crate::text;
use crate::tls;
use crate::tls::{verifier, x509};

/// A leaf certificate expiring within this many days gets a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// The tunnel's TLS config, with its verifier observed so that the chain the
/// server presented is kept even when verification refuses it.
pub(super) struct Trust {
    pub(super) config: Arc<ClientConfig>,
    /// The chain the server presented, kept before the verifier decides.
    chain: Arc<Mutex<Vec<CertificateDer<'static>>>>,
}

impl Trust {
    /// The trust the tunnel would use with `cacerts`, and how many
    /// certificates each file added.
    pub(super) fn new(cacerts: &[PathBuf]) -> Result<(Trust, Vec<usize>), Error> {
        let mut config = Arc::unwrap_or_clone(tls::client_config(cacerts)?);
        // The config does not hand its verifier out: the observed one gets
        // the same roots, built again (the CA files are read twice).
        let (roots, counts) = tls::root_store(cacerts)?;
        let provider = Arc::clone(config.crypto_provider());
        let chain = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&chain);
        let observer = Box::new(
            move |leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]| {
                let presented = std::iter::once(leaf)
                    .chain(intermediates)
                    .map(|c| c.clone().into_owned())
                    .collect();
                *keep.lock().unwrap_or_else(PoisonError::into_inner) = presented;
            },
        );
        let verifier = verifier::observed_server_verifier(roots, provider, observer)?;
        config.dangerous().set_certificate_verifier(verifier);
        let trust = Trust {
            config: Arc::new(config),
            chain,
        };
        Ok((trust, counts))
    }

    /// The chain the server presented in the last handshake, if it got that far.
    pub(super) fn presented_chain(&self) -> Vec<CertificateDer<'static>> {
        std::mem::take(&mut *self.chain.lock().unwrap_or_else(PoisonError::into_inner))
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
