//! A proxy URL as curl reads it (`[http|https://][USER[:PASSWORD]@]HOST[:PORT]`),
//! its Basic credentials, and the one rule for hiding a password in any
//! argument that may hold one.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::target::{Host, HostPort};
use crate::text;

/// The port of an `http://` proxy URL that names none (curl's default).
pub const DEFAULT_HTTP_PORT: u16 = 1080;
/// The port of an `https://` proxy URL that names none (curl's default).
pub const DEFAULT_HTTPS_PORT: u16 = 443;

/// How the proxy itself is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`: CONNECT over plain TCP.
    Http,
    /// `https://`: TLS to the proxy, CONNECT inside it.
    Https,
}

/// A user name and password from the URL's userinfo, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: Vec<u8>,
    password: Vec<u8>,
    /// The password as the URL spells it (percent-encoded or not), to hide
    /// it in that form too.
    password_in_url: String,
}

impl Credentials {
    /// The user name, printable (percent-encoded where it is not plain).
    pub fn user(&self) -> String {
        percent_encode(&self.user)
    }

    /// `base64(user:password)`, for `Proxy-Authorization: Basic`.
    pub(super) fn basic(&self) -> String {
        let mut pair = self.user.clone();
        pair.push(b':');
        pair.extend_from_slice(&self.password);
        base64(&pair)
    }

    /// Every form in which the password may come back in a proxy's answer:
    /// decoded, as the URL spells it, and inside the Basic token. An empty
    /// password is no secret (the token still is).
    pub(super) fn secrets(&self) -> Vec<Vec<u8>> {
        let mut secrets = vec![
            self.basic().into_bytes(),
            self.password.clone(),
            self.password_in_url.clone().into_bytes(),
        ];
        secrets.retain(|s| !s.is_empty());
        // Longest first: a form that holds another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }
}

/// Never prints the password, so a `{:?}` of a config cannot leak it.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user())
            .field("password", &"***")
            .finish()
    }
}

/// A validated proxy URL: `[http|https://][USER[:PASSWORD]@]HOST[:PORT][/...]`.
///
/// `Display` shows it with the password replaced by `***` (and, when
/// [`ProxyUrl::cut_userinfo`], the port too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// How to speak to the proxy.
    pub scheme: Scheme,
    /// The proxy's host (resolved by us; it is what TCP and TLS go to).
    pub host: Host,
    /// The proxy's port.
    pub port: u16,
    /// Basic credentials, if the URL has userinfo.
    pub credentials: Option<Credentials>,
    /// An `@` follows the host part: a password with an unescaped `/`, `?` or
    /// `#` ended it early (`http://alice:1234/x@proxy:3128` is host `alice`,
    /// port 1234, as in curl), so the host is likely the user name and the
    /// port the password's start.
    pub cut_userinfo: bool,
}

impl FromStr for ProxyUrl {
    type Err = String;

    /// Parses the way curl does where it matters: no scheme means `http://`;
    /// the userinfo ends at the first `@` and the user at its first `:`; a
    /// path, query or fragment is ignored. Messages never repeat the userinfo.
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = match s.find("://") {
            Some(end) => (&s[..end], &s[end + 3..]),
            None => ("http", s),
        };
        // RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Anything else
        // before "://" may be part of a password: say so without showing it.
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err("the proxy URL's scheme (before \"://\") is malformed".into());
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "socks" | "socks4" | "socks4a" | "socks5" | "socks5h" => {
                return Err(format!(
                    "{scheme}:// proxies are not supported; vers-tunnel speaks HTTP CONNECT \
                     to http:// and https:// proxies"
                ))
            }
            _ => {
                return Err(format!(
                    "unsupported proxy scheme '{}://'; use http:// or https://",
                    text::escape(scheme)
                ))
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let (userinfo, hostport) = match authority.split_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        if hostport.is_empty() {
            return Err("the proxy URL has no host".into());
        }
        let hostport: HostPort = hostport.parse().map_err(|e| {
            if rest.contains('@') {
                // A password with an unescaped '/', '?' or '#' ends the
                // authority early and lands here: show none of it.
                "the proxy's HOST[:PORT] is not valid (percent-encode '@', ':', '/', '?' \
                 and '#' in the user name and password)"
                    .to_string()
            } else {
                format!("in the proxy's host: {e}")
            }
        })?;
        let credentials = userinfo.map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Credentials {
                user: percent_decode(user),
                password: percent_decode(password),
                password_in_url: password.to_string(),
            }
        });
        Ok(ProxyUrl {
            scheme,
            port: hostport.port.unwrap_or(match scheme {
                Scheme::Http => DEFAULT_HTTP_PORT,
                Scheme::Https => DEFAULT_HTTPS_PORT,
            }),
            host: hostport.host,
            credentials,
            cut_userinfo: rest[authority.len()..].contains('@'),
        })
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://")?;
        if let Some(credentials) = &self.credentials {
            write!(f, "{}", credentials.user())?;
            if !credentials.password.is_empty() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        if self.cut_userinfo {
            // The port is likely the start of a password.
            write!(f, "{}:***", self.host)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `text` (an argument, perhaps a proxy URL) with the password of a
/// `USER:PASSWORD@` in it replaced by `***`, as [`ProxyUrl`] shows it, and
/// where the password is in `text`; `None` when it has none. The userinfo is
/// taken to run to the last `@`, so that a password holding an unescaped `/`,
/// `?`, `#`, `@` or `://` is hidden whole. After a scheme (`http://`, also
/// after `--proxy=`), the password starts at the next `:`; without one, at the
/// first `:` of all, hiding more rather than less.
pub fn redact_password(text: &str) -> Option<(String, Range<usize>)> {
    let at = text.rfind('@')?;
    let head = &text[..at];
    let after_scheme = head.find("://").filter(|&end| {
        let scheme_start = head[..end]
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let (before, scheme) = (&head[..scheme_start], &head[scheme_start..end]);
        // Only an option's `--name=` may come before the scheme.
        let option = |b: &str| {
            b.strip_prefix('-')
                .and_then(|b| b.strip_suffix('='))
                .is_some_and(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        };
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && (before.is_empty() || option(before))
    });
    let colon = match after_scheme {
        Some(end) => end + 3 + head[end + 3..].find(':')?,
        None => head.find(':')?,
    };
    if colon + 1 == at {
        return None;
    }
    let redacted = format!("{}:***{}", &text[..colon], &text[at..]);
    Some((redacted, colon + 1..at))
}

/// RFC 3986 percent-decoding; a `%` not followed by two hex digits stays as is (as in curl).
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Unreserved characters (RFC 3986) as they are, everything else as `%XX`.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4), for the Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    use crate::proxy::testing::{name, url};

    #[test]
    fn urls_default_to_http_and_curls_ports() {
        let u = url("proxy.corp:3128");
        assert_eq!(
            (u.scheme, u.host.clone(), u.port),
            (Scheme::Http, name("proxy.corp"), 3128)
        );
        assert_eq!(url("proxy.corp").port, 1080);
        assert_eq!(url("http://proxy.corp/").port, 1080);
        assert_eq!(url("HTTPS://proxy.corp").scheme, Scheme::Https);
        assert_eq!(url("https://proxy.corp").port, 443);
        assert_eq!(
            url("http://[::1]:8080/path?q#f").host,
            Host::Ip(Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(
            url("http://127.0.0.1:8080").to_string(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn userinfo_is_percent_decoded_and_never_displayed() {
        let u = url("http://alice:p%40ss%24%3A%25w@proxy:3128");
        let c = u.credentials.clone().unwrap();
        assert_eq!(c.user, b"alice");
        assert_eq!(c.password, b"p@ss$:%w");
        assert_eq!(u.to_string(), "http://alice:***@proxy:3128");
        assert!(!format!("{u:?}").contains("p@ss"), "{u:?}");
        // The password is split at the first ':' and may hold more of them.
        let c = url("http://bob:a:b@proxy").credentials.unwrap();
        assert_eq!((c.user, c.password), (b"bob".to_vec(), b"a:b".to_vec()));
        assert_eq!(
            url("http://carol@proxy").to_string(),
            "http://carol@proxy:1080"
        );
        assert_eq!(
            url("http://d%20e:x@proxy").to_string(),
            "http://d%20e:***@proxy:1080"
        );
        // A bad escape stays as written, as curl leaves it.
        assert_eq!(
            url("http://u:100%@p").credentials.unwrap().password,
            b"100%"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_the_userinfo() {
        for (input, reason) in [
            (
                "socks5://u:secret@proxy:1080",
                "socks5:// proxies are not supported",
            ),
            ("socks5h://proxy", "not supported"),
            ("ftp://u:secret@proxy", "unsupported proxy scheme 'ftp://'"),
            ("http://u:secret@", "no host"),
            ("http://proxy:0", "port 0"),
            ("http://proxy:http", "not a number"),
            ("http://u:secret@proxy:0", "HOST[:PORT] is not valid"),
            ("http://u:sec@ret@proxy", "HOST[:PORT] is not valid"),
            ("http://u:sec/ret@proxy", "HOST[:PORT] is not valid"),
            ("u:sec://ret@proxy", "scheme (before \"://\") is malformed"),
        ] {
            let err = input.parse::<ProxyUrl>().unwrap_err();
            assert!(err.contains(reason), "{input}: {err}");
            assert!(
                !err.contains("secret") && !err.contains("sec"),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn a_password_with_an_unescaped_slash_parses_as_curl_does_and_shows_no_port() {
        let u = url("http://alice:1234/x@proxy.corp:3128");
        assert_eq!((u.host.clone(), u.port), (name("alice"), 1234));
        assert!(u.cut_userinfo && u.credentials.is_none());
        assert_eq!(u.to_string(), "http://alice:***");
        for plain in [
            "http://alice:pw@proxy.corp:3128/x",
            "http://proxy:3128/a?b#c",
        ] {
            assert!(!url(plain).cut_userinfo, "{plain}");
        }
    }

    #[test]
    fn passwords_in_arguments_are_redacted_whole() {
        for (arg, redacted, password) in [
            (
                "http://alice:hunter2@p:9",
                "http://alice:***@p:9",
                "hunter2",
            ),
            (
                "http://alice:1234/x@proxy.corp:3128",
                "http://alice:***@proxy.corp:3128",
                "1234/x",
            ),
            ("--proxy=alice:a@b@p", "--proxy=alice:***@p", "a@b"),
            // `://` in the password, with and without a scheme before it.
            (
                "http://alice:hunter2://x\u{1}@proxy.example:3128",
                "http://alice:***@proxy.example:3128",
                "hunter2://x\u{1}",
            ),
            ("alice:hunter2://x@p", "alice:***@p", "hunter2://x"),
            (
                "--proxy=http://alice:pw://x@p",
                "--proxy=http://alice:***@p",
                "pw://x",
            ),
            (
                "https://u:p\u{1}w@[::1]:8",
                "https://u:***@[::1]:8",
                "p\u{1}w",
            ),
        ] {
            let (shown, at) = redact_password(arg).unwrap();
            assert_eq!((shown.as_str(), &arg[at]), (redacted, password), "{arg}");
        }
        // Found by the proxy_url fuzz target: no scheme, `://` further on.
        let odd = ":::./jhunter2fS=o://@:@[@\0/:\u{1e}@";
        let (shown, _) = redact_password(odd).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        let odd = ":::hunter2./@:@.:://@:@\u{1e}@/@";
        let (shown, _) = redact_password(odd).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            redact_password("\u{17f}.K://@:@\u{1e}@/@").unwrap().0,
            "\u{17f}.K:***@"
        );
        for none in [
            "h.sh",
            "http://p:3128",
            "http://alice@p",
            "http://alice:@p",
            "[::1]:22",
        ] {
            assert_eq!(redact_password(none), None, "{none}");
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    proptest! {
        #[test]
        fn url_parsing_never_panics(s in any::<String>()) {
            let _ = s.parse::<ProxyUrl>();
        }

        #[test]
        fn decoding_undoes_encoding(bytes in prop::collection::vec(any::<u8>(), 0..50)) {
            prop_assert_eq!(percent_decode(&percent_encode(&bytes)), bytes);
        }
    }
}
