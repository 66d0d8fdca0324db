//! A test certificate authority, made fresh for each test run, and the
//! certificates (good and deliberately bad) that the test edge serves.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
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
        self.sign(params)
    }

    /// A server certificate whose subjectAltName DNS names are `dns_names`,
    /// byte for byte (whatever rcgen would refuse: escape sequences, bytes
    /// that are not UTF-8), and whose subject CN is `cn`: what a hostile
    /// server can present.
    pub fn leaf_with_raw_names(&self, dns_names: &[&[u8]], cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2035, 1, 1);
        // GeneralNames ::= SEQUENCE OF GeneralName; dNSName is [2] IA5String.
        let names: Vec<u8> = dns_names.iter().flat_map(|n| der(0x82, n)).collect();
        const SUBJECT_ALT_NAME: [u64; 4] = [2, 5, 29, 17];
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &SUBJECT_ALT_NAME,
            der(0x30, &names),
        )];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Leaf {
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

/// One DER element: `tag`, the definite length, `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}
