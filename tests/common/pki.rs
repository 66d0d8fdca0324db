//! A test certificate authority, made fresh for each test run, and the
//! certificates (good and deliberately bad) that the test edge serves.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its key, ready for a rustls server, and the
/// certificate and key as PEM, for other servers.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA: its certificate (PEM, written to `pem_path`) and its signing key.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    pub pem_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new root CA named `name`, its PEM written into `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        Ca::make(dir, name, None)
    }

    /// An intermediate CA signed by this one, its PEM written into `dir`.
    pub fn intermediate(&self, dir: &Path, name: &str) -> Ca {
        Ca::make(dir, name, Some(self))
    }

    fn make(dir: &Path, name: &str, parent: Option<&Ca>) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = match parent {
            Some(parent) => params.signed_by(&key, &parent.issuer),
            None => params.self_signed(&key),
        }
        .unwrap();
        let pem_path = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_path, cert.pem()).unwrap();
        Ca {
            cert: cert.der().clone(),
            pem: cert.pem(),
            pem_path,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid from a year ago for ten years.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_valid(names, (2025, 1, 1), (2035, 1, 1))
    }

    /// A server certificate for `names` valid between two dates (y, m, d).
    pub fn leaf_valid(&self, names: &[&str], from: (i32, u8, u8), until: (i32, u8, u8)) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
