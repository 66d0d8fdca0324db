//! The certificate reader (`x509::parse`, used by the doctor and by a name
//! mismatch's message): never panics; every name it returns prints
//! (`text::escape_bytes`) without a raw control character;
//! and where x509-parser (a full X.509 parser) reads the same bytes too, the
//! two agree on the common names, the subjectAltName DNS names and addresses,
//! and the validity period. Seeded with real certificates (corpus/x509).
#![no_main]

use std::net::IpAddr;

use fuzz_support::assert_printable;
use libfuzzer_sys::fuzz_target;
use vers_tunnel::fuzzing::{parse_certificate as parse, Certificate};
use vers_tunnel::text::escape_bytes;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

fuzz_target!(|der: &[u8]| {
    let ours = parse(der);
    if let Ok(cert) = &ours {
        for name in cert.subject_cn.iter().chain(&cert.issuer_cn) {
            assert_printable("a common name", &escape_bytes(name));
        }
        for name in &cert.dns_names {
            assert_printable("a subjectAltName DNS name", &escape_bytes(name));
        }
    }
    let Ok((_, theirs)) = X509Certificate::from_der(der) else {
        return;
    };
    // Where only one of the two reads it, nothing is compared: each is
    // stricter than the other somewhere (x509-parser keeps a certificate
    // whose subjectAltName or name lengths it cannot read; the doctor takes
    // RFC 5280's date forms only).
    let Ok(cert) = ours else {
        return;
    };
    agree(&cert, &theirs);
});

fn agree(ours: &Certificate, theirs: &X509Certificate<'_>) {
    let validity = theirs.validity();
    assert_eq!(
        ours.not_before,
        validity.not_before.timestamp(),
        "notBefore"
    );
    assert_eq!(ours.not_after, validity.not_after.timestamp(), "notAfter");
    same_name("subject CN", &ours.subject_cn, theirs.subject());
    same_name("issuer CN", &ours.issuer_cn, theirs.issuer());
    let Ok(Some(san)) = theirs.subject_alternative_name() else {
        return;
    };
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(name) => dns.push(name.as_bytes()),
            GeneralName::IPAddress(octets) => ips.push(*octets),
            _ => {}
        }
    }
    // x509-parser is the more lenient (a constructed [7] is an address to
    // it, any element tagged 3 the extensions), so what the reader finds, it
    // finds too; it drops a DNS name that is not UTF-8.
    for name in &ours.dns_names {
        if std::str::from_utf8(name).is_ok() {
            assert!(dns.contains(&name.as_slice()), "{name:?} not in {dns:?}");
        }
    }
    for ip in &ours.ip_addresses {
        let octets = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        assert!(ips.contains(&octets.as_slice()), "{ip} not in {ips:?}");
    }
}

/// The first CN, where both find one and x509-parser can read it as text
/// (it skips an attribute whose value it cannot read; the reader does not).
fn same_name(what: &str, ours: &Option<Vec<u8>>, name: &X509Name<'_>) {
    let (Some(ours), Some(attribute)) = (ours, name.iter_common_name().next()) else {
        return;
    };
    if let Ok(text) = attribute.as_str() {
        assert_eq!(ours, text.as_bytes(), "{what}");
    }
}
