//! Trust and TLS settings: the roots, the client config, and TLS failures in plain words.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, PeerIncompatible, RootCertStore};

use crate::error::{Error, Result};

/// Records whether the server asked for a client certificate; never offers one.
///
/// Without it a server that demands client authentication fails the handshake
/// with a bare `handshake_failure` alert, and the user would not learn why.
#[derive(Debug, Default)]
pub struct ClientCertProbe {
    asked: AtomicBool,
}

impl ClientCertProbe {
    /// Whether a CertificateRequest arrived during the handshake.
    pub fn was_asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }
}

impl ResolvesClientCert for ClientCertProbe {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The crypto provider `client_config` uses, as `--version` names it; change both together.
pub const CRYPTO_PROVIDER: &str = "ring";

/// Builds the client config: TLS 1.2 and 1.3, webpki roots plus `cacerts`.
pub fn client_config(
    cacerts: &[impl AsRef<Path>],
    probe: Arc<ClientCertProbe>,
) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in cacerts {
        add_pem_roots(&mut roots, path.as_ref())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Setup {
            what: "TLS configuration",
            source: std::io::Error::other(e),
        })?
        .with_root_certificates(roots)
        .with_client_cert_resolver(probe);
    Ok(Arc::new(config))
}

fn add_pem_roots(roots: &mut RootCertStore, path: &Path) -> Result<()> {
    let invalid = |reason: String| Error::CaFileInvalid {
        path: path.to_path_buf(),
        reason,
    };
    if path.is_dir() {
        return Err(invalid("it is a directory, not a PEM file".into()));
    }
    let pem = fs::read(path).map_err(|source| Error::CaFileRead {
        path: path.to_path_buf(),
        source,
    })?;
    let mut found = 0;
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| invalid(describe_pem_error(&e)))?;
        roots.add(cert).map_err(|e| {
            invalid(format!(
                "certificate {} is not a usable CA certificate: {e}",
                index + 1
            ))
        })?;
        found += 1;
    }
    if found == 0 {
        let what = if pem.iter().all(u8::is_ascii_whitespace) {
            "it is empty"
        } else {
            "it holds no PEM \"CERTIFICATE\" block"
        };
        return Err(invalid(what.into()));
    }
    Ok(())
}

fn describe_pem_error(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        other => format!("it is not valid PEM ({other:?})"),
    }
}

/// A TLS failure in words a user can act on; `host` is the name being verified.
pub fn describe_tls_error(err: &rustls::Error, host: &str, client_cert_requested: bool) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(cert) => describe_cert_error(cert, host),
        E::AlertReceived(AlertDescription::CertificateRequired) => client_cert_message(),
        E::AlertReceived(AlertDescription::HandshakeFailure) if client_cert_requested => {
            client_cert_message()
        }
        E::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the server does not support TLS 1.2 or 1.3 (it sent a protocol_version alert)".into()
        }
        E::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        ) => "the server does not support TLS 1.2 or 1.3".into(),
        E::PeerIncompatible(p) => format!("the server has no TLS settings in common with us ({p:?})"),
        E::AlertReceived(alert) => format!("the server refused the connection with a {alert:?} alert"),
        E::InvalidMessage(_) => {
            "the server did not answer with TLS; is this a TLS port? (it sent a message that is not TLS)"
                .into()
        }
        other => other.to_string(),
    }
}

/// `a.example` from webpki's `DnsName("a.example")`, `10.0.0.1` from `IpAddress(10.0.0.1)`.
fn plain_name(presented: &str) -> &str {
    let unwrap = |prefix: &str, suffix: &str| {
        presented
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
    };
    unwrap("DnsName(\"", "\")")
        .or_else(|| unwrap("IpAddress(", ")"))
        .unwrap_or(presented)
}

fn client_cert_message() -> String {
    "the server requires a client certificate, and vers-tunnel does not send one".into()
}

fn describe_cert_error(err: &CertificateError, host: &str) -> String {
    use CertificateError as C;
    match err {
        C::UnknownIssuer => format!(
            "the certificate for {host} is not signed by a trusted authority (unknown issuer); \
             if the edge uses a private CA, pass it with --cacert FILE"
        ),
        C::NotValidForNameContext { presented, .. } => {
            let names = if presented.is_empty() {
                "no names".to_string()
            } else {
                presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("the certificate is not valid for {host} (name mismatch): it covers {names}")
        }
        C::NotValidForName => format!("the certificate is not valid for {host} (name mismatch)"),
        C::ExpiredContext { time, not_after } => format!(
            "the certificate for {host} expired on {} (it is now {})",
            utc(*not_after),
            utc(*time)
        ),
        C::Expired => format!("the certificate for {host} has expired"),
        C::NotValidYetContext { time, not_before } => format!(
            "the certificate for {host} is not valid until {} (it is now {}); check the clock",
            utc(*not_before),
            utc(*time)
        ),
        C::NotValidYet => format!("the certificate for {host} is not valid yet"),
        C::BadSignature => "a certificate in the chain has a bad signature".into(),
        C::BadEncoding => "the server sent a malformed certificate".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not meant for TLS servers (extended key usage)".into()
        }
        C::Revoked => format!("the certificate for {host} is revoked"),
        C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            format!("the server presented a CA certificate as its own certificate for {host}")
        }
        other => format!("the certificate for {host} was rejected ({other:?})"),
    }
}

/// `2026-11-25 17:11:05 UTC` for a unix time.
fn utc(time: UnixTime) -> String {
    let secs = time.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Proleptic Gregorian date for days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_795_626_665));
        assert_eq!(utc(t), "2026-11-25 17:11:05 UTC");
        let leap = UnixTime::since_unix_epoch(std::time::Duration::from_secs(951_782_400));
        assert_eq!(utc(leap), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn presented_names_lose_their_debug_wrapping() {
        assert_eq!(plain_name("DnsName(\"a.vm.vers.sh\")"), "a.vm.vers.sh");
        assert_eq!(plain_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn cert_errors_name_the_host_and_the_cause() {
        let msg = describe_tls_error(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "x.vm.vers.sh",
            false,
        );
        assert!(
            msg.contains("x.vm.vers.sh") && msg.contains("unknown issuer"),
            "{msg}"
        );
    }
}
