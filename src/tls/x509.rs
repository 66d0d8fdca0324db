//! Reading an X.509 certificate (RFC 5280) for its words: the subject's and
//! issuer's common names, the DNS names and IP addresses it covers, and its
//! validity period, for the doctor's report and a name mismatch's message.
//! Nothing here decides trust: webpki does.
//!
//! webpki reads these fields but does not expose them (a mismatch's names
//! only as its own Debug text, invalid UTF-8 replaced); an X.509 crate costs
//! the static binary more than this reader (README, "Size").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a certificate says about itself. Names are the certificate's bytes,
/// unchecked and hostile: print them only through [`crate::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The subject's common name (CN), if it has one, as UTF-8 (not always valid).
    pub subject_cn: Option<Vec<u8>>,
    /// The issuer's common name (CN), if it has one, as UTF-8 (not always valid).
    pub issuer_cn: Option<Vec<u8>>,
    /// The subjectAltName DNS names, as they are.
    pub dns_names: Vec<Vec<u8>>,
    /// The subjectAltName IP addresses.
    pub ip_addresses: Vec<IpAddr>,
    /// notBefore, in seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT`: the version.
const VERSION: u8 = 0xa0;
/// `[3] EXPLICIT`: the extensions.
const EXTENSIONS: u8 = 0xa3;
/// GeneralName `dNSName [2] IA5String`.
const DNS_NAME: u8 = 0x82;
/// GeneralName `iPAddress [7] OCTET STRING`.
const IP_ADDRESS: u8 = 0x87;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Reads `der`, a DER-encoded certificate; what is malformed if it cannot.
pub fn parse(der: &[u8]) -> Result<Certificate, &'static str> {
    let mut outer = Der(der);
    let mut cert = Der(outer.expect(SEQUENCE, "certificate")?);
    let mut tbs = Der(cert.expect(SEQUENCE, "tbsCertificate")?);
    if tbs.peek() == Some(VERSION) {
        tbs.next()?;
    }
    tbs.next()?; // serialNumber
    tbs.expect(SEQUENCE, "signature algorithm")?;
    let issuer_cn = common_name(tbs.expect(SEQUENCE, "issuer")?)?;
    let mut validity = Der(tbs.expect(SEQUENCE, "validity")?);
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    let subject_cn = common_name(tbs.expect(SEQUENCE, "subject")?)?;
    tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?;
    let mut names = (Vec::new(), Vec::new());
    while let Some(tag) = tbs.peek() {
        let (_, content) = tbs.next()?;
        if tag == EXTENSIONS {
            names = alt_names(content)?;
        }
    }
    Ok(Certificate {
        subject_cn,
        issuer_cn,
        dns_names: names.0,
        ip_addresses: names.1,
        not_before,
        not_after,
    })
}

/// A DER reader over a slice: one tag-length-value at a time.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element's tag and content.
    fn next(&mut self) -> Result<(u8, &'a [u8]), &'static str> {
        let [tag, first, rest @ ..] = self.0 else {
            return Err("it ends in the middle of an element");
        };
        let (len, rest) = match *first {
            short @ 0..=0x7f => (usize::from(short), rest),
            long @ 0x81..=0x84 => {
                let n = usize::from(long & 0x7f);
                if rest.len() < n {
                    return Err("it ends in the middle of a length");
                }
                let len = rest[..n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, &rest[n..])
            }
            _ => return Err("it has a length DER does not allow"),
        };
        if rest.len() < len {
            return Err("an element is longer than what holds it");
        }
        let (content, after) = rest.split_at(len);
        self.0 = after;
        Ok((*tag, content))
    }

    /// The next element's content, which must have `tag`; `what` names it in the error.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], &'static str> {
        match self.next() {
            Ok((t, content)) if t == tag => Ok(content),
            Ok(_) => Err(what),
            Err(e) => Err(e),
        }
    }
}

/// The first common name in a Name (a SEQUENCE OF SET OF {type, value}).
fn common_name(name: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let mut rdns = Der(name);
    while rdns.peek().is_some() {
        let mut set = Der(rdns.expect(SET, "a name")?);
        while set.peek().is_some() {
            let mut attribute = Der(set.expect(SEQUENCE, "a name attribute")?);
            let oid = attribute.expect(OID, "a name attribute's type")?;
            let (tag, value) = attribute.next()?;
            if oid == COMMON_NAME {
                return Ok(Some(directory_string(tag, value)));
            }
        }
    }
    Ok(None)
}

/// A DirectoryString (or IA5String) as UTF-8: Teletex and BMP decoded, the
/// rest as it is.
fn directory_string(tag: u8, value: &[u8]) -> Vec<u8> {
    const TELETEX: u8 = 0x14;
    const BMP: u8 = 0x1e;
    match tag {
        // Teletex is taken as Latin-1, as most software does.
        TELETEX => value
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .into_bytes(),
        BMP => {
            let units = value.chunks(2).map(|c| match c {
                [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                _ => 0xfffd,
            });
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{fffd}'))
                .collect::<String>()
                .into_bytes()
        }
        // UTF8String, PrintableString, IA5String, and anything else.
        _ => value.to_vec(),
    }
}

/// A UTCTime or GeneralizedTime, as RFC 5280 allows them (`Z`, whole seconds).
fn time(der: &mut Der<'_>) -> Result<i64, &'static str> {
    const MALFORMED: &str = "a validity date is malformed";
    let (tag, text) = der.next()?;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2]).ok_or(MALFORMED)?;
            // RFC 5280 4.1.2.5.1: 50-99 are 19xx, 00-49 are 20xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4]).ok_or(MALFORMED)?, &text[4..]),
        _ => return Err(MALFORMED),
    };
    if rest[10] != b'Z' {
        return Err(MALFORMED);
    }
    let field = |at: usize| digits(&rest[at..at + 2]).ok_or(MALFORMED);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(MALFORMED);
    }
    // The encoding allows a leap second (60); it counts as the next second.
    if second > 60 {
        return Err(MALFORMED);
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm; the inverse of the one `error::utc` uses).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The DNS names and IP addresses in the subjectAltName extension, if any.
fn alt_names(extensions: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<IpAddr>), &'static str> {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    let mut list = Der(Der(extensions).expect(SEQUENCE, "the extensions")?);
    while list.peek().is_some() {
        let mut extension = Der(list.expect(SEQUENCE, "an extension")?);
        let oid = extension.expect(OID, "an extension's type")?;
        if extension.peek() == Some(BOOLEAN) {
            extension.next()?;
        }
        let value = extension.expect(OCTET_STRING, "an extension's value")?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        let mut names = Der(Der(value).expect(SEQUENCE, "the subjectAltName")?);
        while names.peek().is_some() {
            match names.next()? {
                (DNS_NAME, name) => dns.push(name.to_vec()),
                (IP_ADDRESS, ip) => match *ip {
                    [a, b, c, d] => ips.push(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
                    _ => match <[u8; 16]>::try_from(ip) {
                        Ok(octets) => ips.push(IpAddr::V6(Ipv6Addr::from(octets))),
                        Err(_) => return Err("an IP address in subjectAltName is malformed"),
                    },
                },
                _ => {}
            }
        }
    }
    Ok((dns, ips))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    use rustls::pki_types::UnixTime;
    use std::time::Duration;

    fn date(secs: i64) -> String {
        crate::error::utc(UnixTime::since_unix_epoch(Duration::from_secs(secs as u64)))
    }

    /// A CA named `test-ca` and a leaf it signs with `params`.
    fn signed(mut params: CertificateParams) -> Vec<u8> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "test-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(ca, ca_key);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    #[test]
    fn reads_names_issuer_and_validity() {
        let mut params =
            CertificateParams::new(vec!["x.vm.vers.sh".into(), "*.vm.vers.sh".into()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().unwrap()));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Vers");
        params.distinguished_name.push(DnType::CommonName, "edge ü");
        params.not_after = rcgen::date_time_ymd(2035, 6, 30);
        let cert = parse(&signed(params)).unwrap();
        assert_eq!(cert.subject_cn.as_deref(), Some("edge ü".as_bytes()));
        assert_eq!(cert.issuer_cn.as_deref(), Some(&b"test-ca"[..]));
        assert_eq!(cert.dns_names, [&b"x.vm.vers.sh"[..], b"*.vm.vers.sh"]);
        assert_eq!(
            cert.ip_addresses,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(date(cert.not_before), "2025-01-01 00:00:00 UTC");
        assert_eq!(date(cert.not_after), "2035-06-30 00:00:00 UTC");
    }

    #[test]
    fn reads_generalized_time_after_2049_and_a_certificate_without_names() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.not_after = rcgen::date_time_ymd(2099, 12, 31);
        let cert = parse(&signed(params)).unwrap();
        assert_eq!(cert.subject_cn, None);
        assert!(cert.dns_names.is_empty() && cert.ip_addresses.is_empty());
        assert_eq!(date(cert.not_after), "2099-12-31 00:00:00 UTC");
    }

    #[test]
    fn utc_time_before_2000_and_names_as_they_are() {
        let mut der = Der(&[
            UTC_TIME, 13, b'9', b'9', b'1', b'2', b'3', b'1', b'2', b'3', b'5', b'9', b'6', b'0',
            b'Z',
        ]);
        assert_eq!(date(time(&mut der).unwrap()), "2000-01-01 00:00:00 UTC");
        assert_eq!(directory_string(0x0c, b"a\x1b[2J\xffb"), b"a\x1b[2J\xffb");
        assert_eq!(
            directory_string(0x1e, &[0, b'h', 0x20, 0xac]),
            "h€".as_bytes()
        );
        assert_eq!(directory_string(0x14, &[b'h', 0xe9]), "hé".as_bytes());
    }

    #[test]
    fn days_from_civil_inverts_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            date(days_from_civil(2024, 2, 29) * 86_400),
            "2024-02-29 00:00:00 UTC"
        );
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let params = CertificateParams::new(vec!["x.vm.vers.sh".into()]).unwrap();
        let der = signed(params);
        for len in 0..der.len() {
            assert!(parse(&der[..len]).is_err(), "a {len}-byte prefix parsed");
        }
        for (i, _) in der.iter().enumerate() {
            let mut bent = der.clone();
            bent[i] ^= 0xff;
            // Any answer will do, as long as there is one.
            let _ = parse(&bent);
        }
        assert_eq!(
            parse(b"\x30\x80"),
            Err("it has a length DER does not allow")
        );
        assert!(parse(b"not a certificate").is_err());
    }
}
