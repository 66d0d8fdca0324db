//! Which hosts skip the proxy: curl's `NO_PROXY` / `--noproxy` matching,
//! ported line for line so that a list written for curl means the same here.
//!
//! The source is curl's `lib/proxy.c` (`proxy_check_noproxy`, `match_host`,
//! `match_ip`, `cidr4_match`, `cidr6_match`) and `lib/curlx/inet_pton.c`, at
//! commit 5c61e16 (2026-08-22); the table tests are its `tests/unit/unit1614.c`.
//! curl's own address parser is ported too, not replaced by `std`'s, because
//! the two disagree on inputs a list may hold (e.g. `1:2:3:4:5:6:7::8`).
//! The C code stops at a NUL byte; so does this.

/// Whether the NO_PROXY-style `list` exempts `name` from the proxy.
///
/// `name` is the host as the user named it: a DNS name, or an IP address
/// without brackets. The list is comma-separated; blanks around entries are
/// skipped, but a blank inside the list ends it (curl: `"a .b"` is only `a`).
/// `*` alone matches every name; an entry matches a name equal to it or one
/// ending in `.entry`, case-insensitively, ignoring one leading and one
/// trailing dot; for an IP `name`, entries are addresses or CIDR ranges.
pub fn matches(name: &str, list: &str) -> bool {
    let name = until_nul(name.as_bytes());
    let list = until_nul(list.as_bytes());
    if name.is_empty() || list.is_empty() {
        return false;
    }
    if list == b"*" {
        return true;
    }
    let kind = if parse_ipv4(name).is_some() {
        Kind::V4
    } else if parse_ipv6(name).is_some() {
        Kind::V6
    } else {
        Kind::Host
    };
    let name = match kind {
        Kind::Host => name.strip_suffix(b".").unwrap_or(name),
        Kind::V4 | Kind::V6 => name,
    };
    let mut p = 0;
    while p < list.len() {
        p = skip_blanks(list, p);
        let start = p;
        while p < list.len() && !is_blank(list[p]) && list[p] != b',' {
            p += 1;
        }
        let token = &list[start..p];
        if !token.is_empty() {
            let hit = match kind {
                Kind::Host => match_host(token, name),
                Kind::V4 | Kind::V6 => match_ip(kind, token, name),
            };
            if hit {
                return true;
            }
        }
        p = skip_blanks(list, p);
        if list.get(p) != Some(&b',') {
            break;
        }
        while list.get(p) == Some(&b',') {
            p += 1;
        }
    }
    false
}

#[derive(Clone, Copy)]
enum Kind {
    Host,
    V4,
    V6,
}

fn until_nul(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |end| &s[..end])
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &[u8], mut p: usize) -> usize {
    while s.get(p).copied().is_some_and(is_blank) {
        p += 1;
    }
    p
}

/// `example.com` matches `example.com` and `www.example.com`, not `nonexample.com`.
fn match_host(token: &[u8], name: &[u8]) -> bool {
    let token = token.strip_suffix(b".").unwrap_or(token);
    let token = token.strip_prefix(b".").unwrap_or(token);
    if token.len() == name.len() {
        token.eq_ignore_ascii_case(name)
    } else if token.len() < name.len() {
        let tail = name.len() - token.len();
        name[tail - 1] == b'.' && token.eq_ignore_ascii_case(&name[tail..])
    } else {
        false
    }
}

/// An address (`kind`) against an entry `ADDR` or `ADDR/BITS`.
fn match_ip(kind: Kind, token: &[u8], name: &[u8]) -> bool {
    // curl copies the entry into a 128-byte buffer first.
    if token.len() >= 128 {
        return false;
    }
    let (network, bits) = match token.iter().position(|&b| b == b'/') {
        Some(slash) => match parse_bits(&token[slash + 1..]) {
            Some(bits) => (&token[..slash], bits),
            None => return false,
        },
        None => (token, 0),
    };
    match kind {
        Kind::V6 => cidr6_match(name, network, bits),
        _ => cidr4_match(name, network, bits),
    }
}

/// curl's `curlx_str_number(.., 128)` that must use up the rest: digits only, at most 128.
fn parse_bits(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u32 = 0;
    for &d in digits {
        value = value * 10 + u32::from(d - b'0');
        if value > 128 {
            return None;
        }
    }
    Some(value)
}

/// Whether `ipv4` is in `network/bits`; 0 bits (or 32) compares whole addresses.
fn cidr4_match(ipv4: &[u8], network: &[u8], bits: u32) -> bool {
    if bits > 32 {
        return false;
    }
    let (Some(address), Some(check)) = (parse_ipv4(ipv4), parse_ipv4(network)) else {
        return false;
    };
    if bits != 0 && bits != 32 {
        let mask = u32::MAX << (32 - bits);
        return (u32::from_be_bytes(address) ^ u32::from_be_bytes(check)) & mask == 0;
    }
    address == check
}

/// Whether `ipv6` is in `network/bits`; 0 bits means 128.
fn cidr6_match(ipv6: &[u8], network: &[u8], bits: u32) -> bool {
    let bits = if bits == 0 { 128 } else { bits };
    let bytes = (bits / 8) as usize;
    let rest = bits & 7;
    if bytes > 16 || (bytes == 16 && rest != 0) {
        return false;
    }
    let (Some(address), Some(check)) = (parse_ipv6(ipv6), parse_ipv6(network)) else {
        return false;
    };
    if address[..bytes] != check[..bytes] {
        return false;
    }
    rest == 0 || (address[bytes] ^ check[bytes]) & (0xff << (8 - rest)) == 0
}

/// curl's `inet_pton4`: exactly four decimal octets, no leading zeros.
fn parse_ipv4(src: &[u8]) -> Option<[u8; 4]> {
    let mut tmp = [0u8; 4];
    let mut tp = 0;
    let mut saw_digit = false;
    let mut octets = 0;
    for &ch in src {
        if ch.is_ascii_digit() {
            let val = u32::from(tmp[tp]) * 10 + u32::from(ch - b'0');
            if saw_digit && tmp[tp] == 0 {
                return None;
            }
            if val > 255 {
                return None;
            }
            tmp[tp] = val as u8;
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
        } else if ch == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            tp += 1;
            tmp[tp] = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    (octets == 4).then_some(tmp)
}

/// curl's `inet_pton6` (RFC 1884 text form, an IPv4 tail allowed).
fn parse_ipv6(src: &[u8]) -> Option<[u8; 16]> {
    const END: usize = 16;
    let mut tmp = [0u8; END];
    let mut tp = 0;
    let mut colonp: Option<usize> = None;
    let mut i = 0;
    // A leading "::" needs special handling.
    if src.first() == Some(&b':') {
        if src.get(1) != Some(&b':') {
            return None;
        }
        i = 1;
    }
    let mut curtok = i;
    let mut saw_xdigit = 0;
    let mut val: u32 = 0;
    while i < src.len() {
        let ch = src[i];
        i += 1;
        if let Some(digit) = char::from(ch).to_digit(16) {
            val = (val << 4) | digit;
            saw_xdigit += 1;
            if saw_xdigit > 4 {
                return None;
            }
            continue;
        }
        if ch == b':' {
            curtok = i;
            if saw_xdigit == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            }
            if tp + 2 > END {
                return None;
            }
            tmp[tp..tp + 2].copy_from_slice(&(val as u16).to_be_bytes());
            tp += 2;
            saw_xdigit = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= END {
            if let Some(v4) = parse_ipv4(&src[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4);
                tp += 4;
                saw_xdigit = 0;
                // parse_ipv4 read the rest of the string.
                break;
            }
        }
        return None;
    }
    if saw_xdigit != 0 {
        if tp + 2 > END {
            return None;
        }
        tmp[tp..tp + 2].copy_from_slice(&(val as u16).to_be_bytes());
        tp += 2;
    }
    if let Some(colon) = colonp {
        if tp == END {
            return None;
        }
        // Move what followed "::" to the end, one byte at a time as curl does.
        let n = tp - colon;
        for k in 1..=n {
            tmp[END - k] = tmp[colon + n - k];
            tmp[colon + n - k] = 0;
        }
        tp = END;
    }
    (tp == END).then_some(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn curl_unit1614_cidr4() {
        for (a, n, bits, want) in [
            ("192.160.0.1", "192.160.0.1", 33, false),
            ("192.160.0.1", "192.160.0.1", 32, true),
            ("192.160.0.1", "192.160.0.1", 0, true),
            ("192.160.0.1", "192.160.0.1", 24, true),
            ("192.160.0.1", "192.160.0.1", 26, true),
            ("192.160.0.1", "192.160.0.1", 20, true),
            ("192.160.0.1", "192.160.0.1", 18, true),
            ("192.160.0.1", "192.160.0.1", 12, true),
            ("192.160.0.1", "192.160.0.1", 8, true),
            ("192.160.0.1", "10.0.0.1", 8, false),
            ("192.160.0.1", "10.0.0.1", 32, false),
            ("192.160.0.1", "10.0.0.1", 0, false),
        ] {
            assert_eq!(
                cidr4_match(a.as_bytes(), n.as_bytes(), bits),
                want,
                "{a} in {n}/{bits}"
            );
        }
    }

    #[test]
    fn curl_unit1614_cidr6() {
        for (a, n, bits, want) in [
            ("::1", "::1", 0, true),
            ("::1", "::1", 128, true),
            ("::1", "0:0::1", 128, true),
            ("::1", "0:0::1", 129, false),
            (
                "fe80::ab47:4396:55c9:8474",
                "fe80::ab47:4396:55c9:8474",
                64,
                true,
            ),
        ] {
            assert_eq!(
                cidr6_match(a.as_bytes(), n.as_bytes(), bits),
                want,
                "{a} in {n}/{bits}"
            );
        }
    }

    #[test]
    fn curl_unit1614_noproxy() {
        let long128 = "localhost,127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.\
                       127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.\
                       0.0.1.127.0.0.1.127.0.0.";
        let long127 = "localhost,127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.\
                       127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.0.0.1.127.\
                       0.0.1.127.0.0.1.127.0.0";
        let cases: &[(&str, &str, bool)] = &[
            (
                "www.example.com",
                "localhost .example.com .example.de",
                false,
            ),
            (
                "www.example.com",
                "localhost,.example.com,.example.de",
                true,
            ),
            (
                "www.example.com.",
                "localhost,.example.com,.example.de",
                true,
            ),
            ("example.com", "localhost,.example.com,.example.de", true),
            ("example.com.", "localhost,.example.com,.example.de", true),
            (
                "www.example.com",
                "localhost,.example.com.,.example.de",
                true,
            ),
            (
                "www.example.com",
                "localhost,www.example.com.,.example.de",
                true,
            ),
            ("example.com", "localhost,example.com,.example.de", true),
            ("example.com.", "localhost,example.com,.example.de", true),
            ("nexample.com", "localhost,example.com,.example.de", false),
            ("www.example.com", "localhost,example.com,.example.de", true),
            ("127.0.0.1", "127.0.0.1,localhost", true),
            ("127.0.0.1", "127.0.0.1,localhost,", true),
            ("127.0.0.1", "127.0.0.1/8,localhost,", true),
            ("127.0.0.1", "127.0.0.1/28,localhost,", true),
            ("127.0.0.1", "127.0.0.1/31,localhost,", true),
            ("127.0.0.1", "localhost,127.0.0.1", true),
            ("127.0.0.1", long128, false),
            ("127.0.0.1", long127, false),
            ("localhost", "localhost,127.0.0.1", true),
            ("localhost", "127.0.0.1,localhost", true),
            ("foobar", "barfoo", false),
            ("foobar", "foobar", true),
            ("192.168.0.1", "foobar", false),
            ("192.168.0.1", "192.168.0.0/16", true),
            ("192.168.0.1", "192.168.0.0/16a", false),
            ("192.168.0.1", "192.168.0.0/16 ", true),
            ("192.168.0.1", "192.168.0.0/a16", false),
            ("192.168.0.1", "192.168.0.0/ 16", false),
            ("192.168.0.1", "192.168.0.0/24", true),
            ("192.168.0.1", "192.168.0.0/32", false),
            ("192.168.0.1", "192.168.0.1/32", true),
            ("192.168.0.1", "192.168.0.1/33", false),
            ("192.168.0.1", "192.168.0.0", false),
            ("192.168.1.1", "192.168.0.0/24", false),
            ("192.168.1.1", "192.168.0.0/33", false),
            ("192.168.1.1", "foo, bar, 192.168.0.0/24", false),
            ("192.168.1.1", "foo, bar, 192.168.0.0/16", true),
            ("::1", "foo, bar, 192.168.0.0/16", false),
            ("::1", "foo, bar, ::1/64", true),
            ("::1", "::1/64", true),
            ("::1", "::1/96", true),
            ("::1", "::1/129", false),
            ("::1", "::1/128", true),
            ("::1", "::1/127", true),
            ("::1", "::1/a127", false),
            ("::1", "::1/127a", false),
            ("::1", "::1/ 127", false),
            ("::1", "::1/127 ", true),
            ("::1", "::1/126", true),
            ("::1", "::1/125", true),
            ("::1", "::1/124", true),
            ("::1", "::1/123", true),
            ("::1", "::1/122", true),
            ("2001:db8:8000::1", "2001:db8::/65", false),
            ("2001:db8:8000::1", "2001:db8::/66", false),
            ("2001:db8:8000::1", "2001:db8::/67", false),
            ("2001:db8:8000::1", "2001:db8::/68", false),
            ("2001:db8:8000::1", "2001:db8::/69", false),
            ("2001:db8:8000::1", "2001:db8::/70", false),
            ("2001:db8:8000::1", "2001:db8::/71", false),
            ("2001:db8:8000::1", "2001:db8::/72", false),
            ("2001:db8::1", "2001:db8::/65", true),
            ("2001:db8::1", "2001:db8::/66", true),
            ("2001:db8::1", "2001:db8::/67", true),
            ("2001:db8::1", "2001:db8::/68", true),
            ("2001:db8::1", "2001:db8::/69", true),
            ("2001:db8::1", "2001:db8::/70", true),
            ("2001:db8::1", "2001:db8::/71", true),
            ("2001:db8::1", "2001:db8::/72", true),
            ("::1", "::1/129", false),
            ("bar", "foo, bar, ::1/64", true),
            ("BAr", "foo, bar, ::1/64", true),
            ("BAr", "foo,,,,,              bar, ::1/64", true),
            ("www.example.com", "foo, .example.com", true),
            ("www.example.com", "www2.example.com, .example.net", false),
            ("example.com", ".example.com, .example.net", true),
            ("nonexample.com", ".example.com, .example.net", false),
        ];
        for &(name, list, want) in cases {
            assert_eq!(matches(name, list), want, "{name:?} in {list:?}");
        }
    }

    /// The examples of curl's `--noproxy` documentation, and the edges of `*`.
    #[test]
    fn curl_documentation_examples() {
        assert!(matches("local.com", "local.com"));
        assert!(matches("www.local.com", "local.com"));
        assert!(!matches("www.notlocal.com", "local.com"));
        assert!(matches("x.vm.vers.sh", "*"));
        assert!(matches("10.1.2.3", "*"));
        // `*` is a wildcard only alone: in a list it is a name like any other.
        assert!(!matches("x.vm.vers.sh", "*,localhost"));
        assert!(!matches("x.vm.vers.sh", " *"));
        assert!(matches("x.vm.vers.sh", ".vers.sh"));
        assert!(matches("X.VM.Vers.SH", "vm.vers.sh"));
        assert!(!matches("x.vm.vers.sh", ""));
        assert!(!matches("", "*"));
        // Ports in entries are not understood: the entry is a name that never matches.
        assert!(!matches("x.vm.vers.sh", "x.vm.vers.sh:443"));
    }

    #[test]
    fn curl_address_parser_quirks() {
        assert_eq!(parse_ipv4(b"01.2.3.4"), None);
        assert_eq!(parse_ipv4(b"1.2.3"), None);
        assert_eq!(parse_ipv4(b"1.2.3.4.5"), None);
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some([0; 4]));
        assert_eq!(parse_ipv6(b"1:2:3:4:5:6:7::8"), None);
        assert_eq!(parse_ipv6(b":1::"), None);
        assert!(parse_ipv6(b"::ffff:1.2.3.4").is_some());
        assert!(parse_ipv6(b"1::2::3").is_none());
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9-]{0,9}"
    }

    fn domain() -> impl Strategy<Value = String> {
        prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join("."))
    }

    proptest! {
        #[test]
        fn never_panics(name in any::<String>(), list in any::<String>()) {
            let _ = matches(&name, &list);
        }

        #[test]
        fn never_panics_on_list_like_input(name in "[0-9a-fA-F:./]{0,40}", list in "[0-9a-fA-F:./, \t*]{0,60}") {
            let _ = matches(&name, &list);
        }

        #[test]
        fn star_alone_matches_every_name(name in ".+") {
            prop_assume!(!name.starts_with('\0'));
            prop_assert!(matches(&name, "*"));
        }

        #[test]
        fn matching_ignores_ascii_case(name in "[a-zA-Z0-9.:-]{1,30}", list in "[a-zA-Z0-9.:/, -]{0,60}") {
            let want = matches(&name, &list);
            prop_assert_eq!(matches(&name.to_ascii_uppercase(), &list), want);
            prop_assert_eq!(matches(&name.to_ascii_lowercase(), &list.to_ascii_uppercase()), want);
        }

        #[test]
        fn a_domain_matches_its_subdomains_at_a_dot_only(sub in domain(), d in domain(), glued in "[a-z]{1,5}") {
            let name = format!("{sub}.{d}");
            let dotted = format!(".{d}");
            let in_list = format!("other.example, {d}.");
            prop_assert!(matches(&name, &d));
            prop_assert!(matches(&name, &dotted));
            prop_assert!(matches(&name, &in_list));
            let (glued_name, entry) = (format!("{glued}{d}"), format!("{sub}.{d}"));
            prop_assert!(!matches(&glued_name, &entry));
            let (glued_name, entry) = (format!("{sub}{glued}{d}"), format!("{glued}.{d}"));
            prop_assert!(!matches(&glued_name, &entry));
        }

        #[test]
        fn an_entry_matches_itself(name in domain(), before in "[a-z.]{0,10}", after in "[a-z.]{0,10}") {
            let list = format!("{before},{name} ,{after}");
            prop_assert!(matches(&name, &list));
        }

        #[test]
        fn addresses_parse_as_std_prints_them(v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>()) {
            let (a, b) = (Ipv4Addr::from(v4), Ipv6Addr::from(v6));
            let (a_text, b_text) = (a.to_string(), b.to_string());
            prop_assert_eq!(parse_ipv4(a_text.as_bytes()), Some(v4));
            prop_assert_eq!(parse_ipv6(b_text.as_bytes()), Some(v6));
            let (a_range, b_range) = (format!("{a}/32"), format!("{b}/128"));
            prop_assert!(matches(&a_text, &a_range));
            prop_assert!(matches(&b_text, &b_range));
        }

        #[test]
        fn cidr_ranges_match_by_prefix(v4 in any::<u32>(), other in any::<u32>(), bits in 1u32..=31) {
            let mask = u32::MAX << (32 - bits);
            let want = (v4 ^ other) & mask == 0;
            let list = format!("{}/{bits}", Ipv4Addr::from(other));
            prop_assert_eq!(matches(&Ipv4Addr::from(v4).to_string(), &list), want);
        }
    }
}
