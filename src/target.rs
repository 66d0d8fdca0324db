//! Parsing and validating `HOST[:PORT]` and `--connect-to` rules: the core never sees raw strings.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use rustls::pki_types::ServerName;

/// The port used when none is given: the Vers edge serves TLS on 443.
pub(crate) const DEFAULT_PORT: u16 = 443;

/// Longest DNS name accepted (RFC 1035, without the trailing dot).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label accepted (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// An address as every message shows it: the IP alone when its port may be
/// the start of a proxy password ([`crate::proxy::url::ProxyUrl::cut_userinfo`]),
/// else IP and port. Made by [`crate::net::connect::Hop::show`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownAddr {
    addr: SocketAddr,
    hide_port: bool,
}

impl ShownAddr {
    /// `addr`, shown without its port when `hide_port`.
    pub(crate) fn new(addr: SocketAddr, hide_port: bool) -> ShownAddr {
        ShownAddr { addr, hide_port }
    }
}

impl fmt::Display for ShownAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hide_port {
            true => write!(f, "{}", self.addr.ip()),
            false => write!(f, "{}", self.addr),
        }
    }
}

/// A host as given on the command line: a DNS name or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A validated DNS name, lowercase, without a trailing dot.
    Name(String),
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
}

impl Host {
    /// The name the certificate must be valid for (and the SNI, for names).
    pub fn server_name(&self) -> ServerName<'static> {
        match self {
            // Validated by `parse_host`, which uses the same rules as rustls.
            Host::Name(name) => ServerName::try_from(name.clone())
                .unwrap_or_else(|_| unreachable!("host names are validated at parse time")),
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
        }
    }
}

/// A host with an optional port, as written `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host.
    pub host: Host,
    /// The port, if one was written.
    pub port: Option<u16>,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s)?;
        let port = match port {
            None => None,
            Some(p) => Some(parse_port(p)?),
        };
        Ok(HostPort {
            host: parse_host(host)?,
            port,
        })
    }
}

/// Where to connect instead of the target, curl's
/// `--connect-to HOST:PORT:CONNECT_HOST:CONNECT_PORT`; empty fields are wildcards
/// (on the match side) or "keep the original" (on the connect side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// Matches any host when `None`.
    pub host: Option<Host>,
    /// Matches any port when `None`.
    pub port: Option<u16>,
    /// Connect here instead; the target's host when `None`.
    pub connect_host: Option<Host>,
    /// Connect on this port; the target's port when `None`.
    pub connect_port: Option<u16>,
}

impl ConnectTo {
    /// Where to connect for `host:port` if this rule applies to it.
    pub fn apply(&self, host: &Host, port: u16) -> Option<(Host, u16)> {
        let host_matches = self.host.as_ref().is_none_or(|h| h == host);
        let port_matches = self.port.is_none_or(|p| p == port);
        (host_matches && port_matches).then(|| {
            (
                self.connect_host.clone().unwrap_or_else(|| host.clone()),
                self.connect_port.unwrap_or(port),
            )
        })
    }
}

impl FromStr for ConnectTo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let fields = split_fields(s)?;
        let [host, port, connect_host, connect_port] = fields.as_slice() else {
            return Err(format!(
                "expected HOST:PORT:CONNECT_HOST:CONNECT_PORT (4 fields), found {}",
                fields.len()
            ));
        };
        let optional_host = |h: &str| (!h.is_empty()).then(|| parse_host(h)).transpose();
        let optional_port = |p: &str| (!p.is_empty()).then(|| parse_port(p)).transpose();
        Ok(ConnectTo {
            host: optional_host(host)?,
            port: optional_port(port)?,
            connect_host: optional_host(connect_host)?,
            connect_port: optional_port(connect_port)?,
        })
    }
}

/// Splits on ':' outside square brackets, keeping the brackets on each field.
pub(crate) fn split_fields(s: &str) -> Result<Vec<&str>, String> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut in_brackets = false;
    for (i, c) in s.char_indices() {
        match c {
            '[' if !in_brackets => in_brackets = true,
            ']' if in_brackets => in_brackets = false,
            ':' if !in_brackets => {
                fields.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_brackets {
        return Err("unclosed '[' in an IPv6 address".into());
    }
    fields.push(&s[start..]);
    Ok(fields)
}

/// Splits `HOST[:PORT]`; a bare IPv6 literal (two or more colons) has no port.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err("unclosed '[' in an IPv6 address".into());
        };
        let (host, after) = (&s[..end + 2], &rest[end + 1..]);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after ']'")),
            },
        };
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => {
            let (host, port) = s.split_once(':').unwrap_or((s, ""));
            Ok((host, Some(port)))
        }
        _ => Ok((s, None)),
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("the port after ':' is empty".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port '{s}' is not a number"));
    }
    match s.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port one can connect to".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("port {s} is out of range (1-65535)")),
    }
}

/// Validates a host: an IP literal (IPv6 in brackets or bare) or a DNS name.
pub fn parse_host(s: &str) -> Result<Host, String> {
    if s.is_empty() {
        return Err("the host name is empty".into());
    }
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("unclosed '[' in an IPv6 address")?;
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => Ok(Host::Ip(IpAddr::V6(ip))),
            Err(_) => Err(format!("'{inner}' in brackets is not an IPv6 address")),
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if s.contains(':') {
        return Err(format!("'{s}' is not a valid IPv6 address"));
    }
    parse_name(s).map(Host::Name)
}

fn parse_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "host name contains {}, which no DNS name can",
            describe_char(c)
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "host name is {} characters long; DNS allows at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host name '{s}' has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "host name has a {}-character label; DNS allows at most {MAX_LABEL_LEN}",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("host name label '{label}' starts or ends with '-'"));
        }
    }
    let name = name.to_ascii_lowercase();
    // rustls has the final word on what it can send as SNI and verify against.
    match ServerName::try_from(name.as_str()) {
        Ok(ServerName::DnsName(_)) => Ok(name),
        _ => Err(format!("'{s}' is not a valid host name")),
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\0' => "a NUL byte".into(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("'{c}'"),
    }
}

/// Where `forward` listens, as written `[BIND_ADDR:]LOCAL_PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The address to bind; `None` for the loopback (127.0.0.1 and ::1).
    pub(crate) bind: Option<IpAddr>,
    /// The port; 0 lets the system pick a free one.
    pub(crate) port: u16,
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (bind, port) = match s.rsplit_once(':') {
            None => (None, s),
            Some((bind, port)) => (Some(bind), port),
        };
        let port = match port {
            "" => return Err("the local port is empty".into()),
            p if !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!("local port '{p}' is not a number"))
            }
            p => p
                .parse::<u16>()
                .map_err(|_| format!("local port {p} is out of range (0-65535)"))?,
        };
        let bind = match bind {
            None | Some("localhost") => None,
            Some(b) if b.starts_with('[') => match parse_host(b)? {
                Host::Ip(ip) => Some(ip),
                Host::Name(_) => return Err(format!("bind address '{b}' is not an IP address")),
            },
            Some(b) => Some(b.parse::<IpAddr>().map_err(|_| {
                format!("bind address '{b}' is not an IP address (use 127.0.0.1, [::1], 0.0.0.0 or [::])")
            })?),
        };
        Ok(Listen { bind, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn hp(s: &str) -> Result<HostPort, String> {
        s.parse()
    }

    fn name(s: &str) -> Host {
        Host::Name(s.into())
    }

    #[test]
    fn accepts_names_ips_and_ports() {
        assert_eq!(
            hp("x.vm.vers.sh").unwrap(),
            HostPort {
                host: name("x.vm.vers.sh"),
                port: None
            }
        );
        assert_eq!(hp("X.VM.vers.sh.:22").unwrap().host, name("x.vm.vers.sh"));
        assert_eq!(hp("X.VM.vers.sh.:22").unwrap().port, Some(22));
        assert_eq!(
            hp("127.0.0.1:8443").unwrap().host,
            Host::Ip(Ipv4Addr::LOCALHOST.into())
        );
        assert_eq!(
            hp("[::1]:8443").unwrap(),
            HostPort {
                host: Host::Ip(Ipv6Addr::LOCALHOST.into()),
                port: Some(8443)
            }
        );
        assert_eq!(hp("::1").unwrap().port, None);
        assert_eq!(hp("[::1]").unwrap().port, None);
    }

    #[test]
    fn rejects_bad_hosts_with_reasons() {
        for (input, reason) in [
            ("", "empty"),
            ("host:", "empty"),
            ("host:99999", "out of range"),
            ("host:0", "port 0"),
            ("host:ssh", "not a number"),
            ("[::1", "unclosed"),
            ("[::1]x", "after ']'"),
            ("[nope]:1", "not an IPv6"),
            ("a b.vm.vers.sh", "a space"),
            ("a\0b", "NUL"),
            ("a..b", "empty label"),
            ("-a.b", "starts or ends"),
            ("x:y:z", "not a valid IPv6"),
        ] {
            let err = hp(input).unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
        let long = format!("{}.sh", "a".repeat(260));
        assert!(hp(&long).unwrap_err().contains("at most 253"));
        let long_label = format!("{}.sh", "a".repeat(64));
        assert!(hp(&long_label).unwrap_err().contains("at most 63"));
    }

    #[test]
    fn connect_to_rules_match_and_substitute() {
        let rule: ConnectTo = "x.vm.vers.sh:443:[::1]:8443".parse().unwrap();
        assert_eq!(
            rule.apply(&name("x.vm.vers.sh"), 443),
            Some((Host::Ip(Ipv6Addr::LOCALHOST.into()), 8443))
        );
        assert_eq!(rule.apply(&name("y.vm.vers.sh"), 443), None);
        assert_eq!(rule.apply(&name("x.vm.vers.sh"), 22), None);

        let any: ConnectTo = "::127.0.0.1:".parse().unwrap();
        assert_eq!(
            any.apply(&name("y.vm.vers.sh"), 22),
            Some((Host::Ip(Ipv4Addr::LOCALHOST.into()), 22))
        );
    }

    #[test]
    fn connect_to_rejects_malformed_rules() {
        for (input, reason) in [
            ("a:1:b", "4 fields"),
            ("a:1:b:2:3", "4 fields"),
            ("a:x:b:2", "not a number"),
            ("a:1:[::1:2", "unclosed"),
            ("a b:1:b:2", "a space"),
        ] {
            let err = input.parse::<ConnectTo>().unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn listen_specs_default_to_the_loopback() {
        let l = |s: &str| s.parse::<Listen>();
        assert_eq!(
            l("5432").unwrap(),
            Listen {
                bind: None,
                port: 5432
            }
        );
        assert_eq!(l("0").unwrap().port, 0);
        assert_eq!(l("localhost:80").unwrap().bind, None);
        assert_eq!(
            l("0.0.0.0:80").unwrap().bind,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(
            l("[::1]:80").unwrap().bind,
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        for (input, reason) in [
            ("", "empty"),
            ("x", "not a number"),
            ("70000", "out of range"),
            ("db.local:80", "not an IP address"),
            ("[::1:80", "unclosed"),
            ("1.2.3:80", "not an IP address"),
        ] {
            let err = l(input).unwrap_err();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }
}
