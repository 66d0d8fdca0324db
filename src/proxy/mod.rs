//! HTTP(S) CONNECT proxies, without any I/O: the proxy URL, which proxy applies
//! (curl's order: `--proxy`, then the environment, minus `NO_PROXY`), and the
//! CONNECT exchange as a state machine fed whatever bytes arrive, so that a
//! connect that waits on the poller and an event-driven one can both drive it.

pub mod dial;
pub mod noproxy;
pub mod transport;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::str::FromStr;

use crate::error::ProxyProblem;
use crate::target::{Host, HostPort, ShownAddr};
use crate::text;

/// The port of an `http://` proxy URL that names none (curl's default).
pub const DEFAULT_HTTP_PORT: u16 = 1080;
/// The port of an `https://` proxy URL that names none (curl's default).
pub const DEFAULT_HTTPS_PORT: u16 = 443;
/// Most bytes of answer header (all of it, 1xx blocks included) read before
/// giving up: a proxy's answer to CONNECT is a few hundred bytes.
pub const MAX_ANSWER_HEADER: usize = 16 * 1024;
/// The most bytes of a reason phrase shown: a real one is a few words.
const MAX_REASON: usize = 100;
/// The most bytes shown of an answer that is not HTTP.
const MAX_NOT_HTTP: usize = 32;
/// The shortest secret hidden wherever it occurs in a proxy's answer; a
/// shorter one (a 1 or 2 character password) is hidden only where it stands
/// as a whole word (`alice:pw`, `pw.`), so that it cannot turn every `a` of
/// a message into `***`: a leak is worse than a garbled message, but two
/// letters inside a longer word do not tell a reader which they were.
const MIN_SECRET_ANYWHERE: usize = 3;

/// The variables that name a proxy for an https:// transfer, in the order curl
/// reads them; the first one set and not empty wins.
pub const PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The variables that list hosts to reach without the proxy, in curl's order.
pub const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

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
    fn basic(&self) -> String {
        let mut pair = self.user.clone();
        pair.push(b':');
        pair.extend_from_slice(&self.password);
        base64(&pair)
    }

    /// Every form in which the password may come back in a proxy's answer:
    /// decoded, as the URL spells it, and inside the Basic token. An empty
    /// password is no secret (the token still is).
    fn secrets(&self) -> Vec<Vec<u8>> {
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

/// Where the proxy in use was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--proxy URL`.
    Flag,
    /// An environment variable, by name.
    Env(&'static str),
}

impl Source {
    /// `--proxy` or the variable's name, as messages say it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "--proxy",
            Source::Env(name) => name,
        }
    }
}

/// A proxy and where it came from; `Display` is `URL (from SOURCE)`, password redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy.
    pub url: ProxyUrl,
    /// Where it was named.
    pub source: Source,
}

impl Proxy {
    /// `addr` (one of the proxy's) as every message shows it: the IP alone
    /// when the URL was cut (its port may be the start of the password).
    pub fn show(&self, addr: SocketAddr) -> ShownAddr {
        ShownAddr::new(addr, self.url.cut_userinfo)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.url, self.source.name())
    }
}

/// The values of [`PROXY_VARS`] and [`NO_PROXY_VARS`], read once at the CLI
/// edge (tests make their own); an empty value counts as unset, as in curl.
#[derive(Clone, Default)]
pub struct ProxyEnv {
    values: Vec<(&'static str, OsString)>,
}

/// Names only: a value may hold a password.
impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(name, _)| *name).collect();
        f.debug_struct("ProxyEnv").field("set", &names).finish()
    }
}

impl ProxyEnv {
    /// Reads every variable the proxy choice depends on through `lookup`
    /// (`std::env::var_os` in main).
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<OsString>) -> ProxyEnv {
        let values = PROXY_VARS
            .iter()
            .chain(&NO_PROXY_VARS)
            .filter_map(|&name| lookup(name).map(|value| (name, value)))
            .collect();
        ProxyEnv { values }
    }

    /// A set of values, for tests: `[("HTTPS_PROXY", "http://p:3128")]`.
    /// Names not in [`PROXY_VARS`] or [`NO_PROXY_VARS`] are ignored.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    /// The first of `names` that is set and not empty, with its value.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &OsStr)> {
        names.iter().find_map(|&name| {
            self.values
                .iter()
                .find(|(n, v)| *n == name && !v.is_empty())
                .map(|(n, v)| (*n, v.as_os_str()))
        })
    }
}

/// How the TCP connection reaches the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the connect host: no proxy named, or `--proxy ''`.
    Direct,
    /// Through a CONNECT proxy.
    Proxy(Proxy),
    /// A proxy is named, but the no-proxy list exempts HOST.
    Exempt {
        /// The proxy not used.
        proxy: Proxy,
        /// `--noproxy`, `no_proxy` or `NO_PROXY`.
        by: &'static str,
    },
}

impl Route {
    /// The proxy in use, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Proxy(proxy) => Some(proxy),
            Route::Direct | Route::Exempt { .. } => None,
        }
    }
}

/// Decides the route to `host` (as the user named it) the way curl does:
/// `--proxy` (`''` meaning none, whatever the environment says), else the
/// first of [`PROXY_VARS`]; then the no-proxy list (`--noproxy`, else
/// `no_proxy`, else `NO_PROXY`) may exempt HOST.
///
/// The error is a usage message naming the flag or variable; it never
/// repeats the URL, which may hold a password. As in curl, a proxy that the
/// list exempts is not looked at closely enough to fail.
pub fn route(
    flag: Option<&str>,
    noproxy_flag: Option<&str>,
    env: &ProxyEnv,
    host: &Host,
) -> Result<Route, String> {
    let (source, url) = match flag {
        Some("") => return Ok(Route::Direct),
        Some(text) => (
            Source::Flag,
            text.parse::<ProxyUrl>()
                .map_err(|e| format!("invalid proxy URL in --proxy: {e}")),
        ),
        None => match env.first(&PROXY_VARS) {
            None => return Ok(Route::Direct),
            Some((name, value)) => (Source::Env(name), env_proxy(name, value)),
        },
    };
    let list = match noproxy_flag {
        Some(list) => Some(("--noproxy", list.to_string())),
        None => env
            .first(&NO_PROXY_VARS)
            .map(|(name, value)| (name, value.to_string_lossy().into_owned())),
    };
    let exempt_by = list
        .filter(|(_, list)| noproxy::matches(&noproxy_name(host), list))
        .map(|(by, _)| by);
    match (url, exempt_by) {
        (Ok(url), Some(by)) => Ok(Route::Exempt {
            proxy: Proxy { url, source },
            by,
        }),
        (Err(_), Some(_)) => Ok(Route::Direct),
        (Ok(url), None) => Ok(Route::Proxy(Proxy { url, source })),
        (Err(e), None) => Err(e),
    }
}

/// The proxy URL in variable `name`; the message names the variable, not the value.
fn env_proxy(name: &str, value: &OsStr) -> Result<ProxyUrl, String> {
    let Some(value) = value.to_str() else {
        return Err(format!("{name} is not valid UTF-8"));
    };
    if let Some(c) = value
        .chars()
        .find(|&c| text::needs_escape(c) || c.is_whitespace())
    {
        return Err(format!(
            "{name} contains {}, which no proxy URL may",
            if text::needs_escape(c) {
                format!("a control character (U+{:04X})", c as u32)
            } else {
                "white space".into()
            }
        ));
    }
    value
        .parse()
        .map_err(|e| format!("invalid proxy URL in {name}: {e}"))
}

/// HOST as curl matches it against the list: IPv6 without brackets.
fn noproxy_name(host: &Host) -> String {
    match host {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => ip.to_string(),
    }
}

/// Where a CONNECT exchange stands after some answer bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// The answer's header is not complete yet: feed more.
    NeedMore,
    /// 2xx: the tunnel is open. `leftover` came after the header and is the
    /// tunnel's first bytes.
    Established {
        /// Bytes that followed the header in what was fed.
        leftover: Vec<u8>,
    },
}

/// The CONNECT exchange with a proxy: the request to send, then the proxy's
/// answer fed in as it arrives, in pieces of any size (one byte works).
pub struct Connect {
    request: Vec<u8>,
    /// Everything received so far; at most the header and one feed beyond.
    answer: Vec<u8>,
    /// Where the line being parsed starts in `answer`.
    line_start: usize,
    /// Where to look for its end: before here, there is no newline.
    scan_from: usize,
    /// The current block's status and reason, once its status line is parsed.
    status: Option<(u16, String)>,
    /// Schemes named by `Proxy-Authenticate` headers.
    offered: Vec<String>,
    /// The user whose credentials the request carries.
    user: Option<String>,
    /// The password in every form it may come back in ([`Credentials::secrets`]).
    secrets: Vec<Vec<u8>>,
}

/// Leaves the request out: its `Proxy-Authorization` is the password.
impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("answer_bytes", &self.answer.len())
            .field("status", &self.status)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Connect {
    /// The exchange asking `url`'s proxy for a tunnel to `host:port`. The
    /// name is sent as is: the proxy resolves it.
    pub fn new(url: &ProxyUrl, host: &Host, port: u16) -> Connect {
        let authority = format!("{host}:{port}");
        let mut request = format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: vers-tunnel/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(credentials) = &url.credentials {
            request.push_str(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                credentials.basic()
            ));
        }
        request.push_str("\r\n");
        Connect {
            request: request.into_bytes(),
            answer: Vec::new(),
            line_start: 0,
            scan_from: 0,
            status: None,
            offered: Vec::new(),
            user: url.credentials.as_ref().map(Credentials::user),
            secrets: url
                .credentials
                .as_ref()
                .map_or_else(Vec::new, Credentials::secrets),
        }
    }

    /// The request, to be written whole before the answer can come.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Takes the next bytes of the answer. An error is final.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Progress, ProxyProblem> {
        self.answer.extend_from_slice(bytes);
        loop {
            if self.status.is_none() {
                self.check_http_prefix()?;
            }
            let Some(newline) = self.answer[self.scan_from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| self.scan_from + i)
            else {
                if self.answer.len() > MAX_ANSWER_HEADER {
                    return Err(too_long());
                }
                self.scan_from = self.answer.len();
                return Ok(Progress::NeedMore);
            };
            if newline >= MAX_ANSWER_HEADER {
                return Err(too_long());
            }
            let line = &self.answer[self.line_start..newline];
            let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
            self.line_start = newline + 1;
            self.scan_from = self.line_start;
            match self.status.take() {
                None => self.status = Some(self.parse_status_line(&line)?),
                Some((status, reason)) if line.is_empty() => {
                    if let Some(progress) = self.end_of_block(status, reason)? {
                        return Ok(progress);
                    }
                }
                Some(current) => {
                    self.header_line(&line);
                    self.status = Some(current);
                }
            }
        }
    }

    /// What went wrong when the proxy closed the connection before the end
    /// of its answer's header.
    pub fn closed(&self) -> ProxyProblem {
        ProxyProblem::Closed {
            partly_answered: !self.answer.is_empty(),
        }
    }

    /// Fails as soon as the start of a status line cannot be `HTTP/1.`.
    fn check_http_prefix(&self) -> Result<(), ProxyProblem> {
        const PREFIX: &[u8] = b"HTTP/1.";
        let start = &self.answer[self.line_start..];
        let n = start.len().min(PREFIX.len());
        if start[..n] != PREFIX[..n] {
            return Err(self.not_http(start));
        }
        Ok(())
    }

    /// `HTTP/1.x NNN reason`.
    fn parse_status_line(&self, line: &[u8]) -> Result<(u16, String), ProxyProblem> {
        let Some(rest) = line.strip_prefix(b"HTTP/1.") else {
            return Err(self.not_http(line));
        };
        let well_formed = rest.len() >= 5
            && rest[0].is_ascii_digit()
            && rest[1] == b' '
            && rest[2..5].iter().all(u8::is_ascii_digit)
            && (rest.len() == 5 || rest[5] == b' ');
        if !well_formed {
            return Err(self.not_http(line));
        }
        let status = rest[2..5]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let reason = rest.get(6..).map_or_else(String::new, |reason| {
            self.shown(reason.trim_ascii(), MAX_REASON)
        });
        Ok((status, reason))
    }

    /// Records the schemes a `Proxy-Authenticate` (or, with a 401,
    /// `WWW-Authenticate`) header offers.
    fn header_line(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = &line[..colon];
        if name.eq_ignore_ascii_case(b"proxy-authenticate")
            || name.eq_ignore_ascii_case(b"www-authenticate")
        {
            let value = line[colon + 1..].trim_ascii_start();
            let scheme = value
                .split(u8::is_ascii_whitespace)
                .next()
                .map(|s| s.strip_suffix(b",").unwrap_or(s))
                .filter(|s| !s.is_empty());
            if let Some(scheme) = scheme {
                let scheme = self.shown(scheme, MAX_REASON);
                if !self.offered.contains(&scheme) {
                    self.offered.push(scheme);
                }
            }
        }
    }

    /// A header block ended: 1xx is skipped (RFC 9110 §15.2), 2xx opens the
    /// tunnel (its Content-Length means nothing, RFC 9110 §9.3.6), the rest
    /// fail. No origin server answers before the tunnel exists, so a 401 is
    /// the proxy's too: tinyproxy 1.11 sends it for wrong credentials.
    fn end_of_block(
        &mut self,
        status: u16,
        reason: String,
    ) -> Result<Option<Progress>, ProxyProblem> {
        match status {
            100..=199 => Ok(None),
            200..=299 => Ok(Some(Progress::Established {
                leftover: self.answer.split_off(self.line_start),
            })),
            401 | 407 => Err(match &self.user {
                Some(user) => ProxyProblem::CredentialsRejected {
                    user: user.clone(),
                    status,
                    reason,
                    offered: std::mem::take(&mut self.offered),
                },
                None => ProxyProblem::AuthRequired {
                    status,
                    reason,
                    offered: std::mem::take(&mut self.offered),
                },
            }),
            _ => Err(ProxyProblem::Refused { status, reason }),
        }
    }

    fn not_http(&self, start: &[u8]) -> ProxyProblem {
        ProxyProblem::NotHttp {
            start: self.shown(start, MAX_NOT_HTTP),
        }
    }

    /// Text from the proxy as messages show it: the password, in any form
    /// it was sent in, replaced by `***` (a proxy may repeat the credentials
    /// it was given, as in `403 Forbidden for alice:hunter2`), then cut to
    /// `limit` bytes and escaped. Hidden before the cut, so that the cut
    /// cannot leave the start of a password, and before escaping, so that
    /// `***` can never land inside an escape.
    fn shown(&self, text: &[u8], limit: usize) -> String {
        let mut text = text.to_vec();
        for secret in &self.secrets {
            text = hide(&text, secret);
        }
        text::escape_bytes(&text[..text.len().min(limit)])
    }
}

/// `text` with `secret` (not empty) replaced by `***` wherever it occurs,
/// or, when shorter than [`MIN_SECRET_ANYWHERE`], where it is a whole word.
fn hide(text: &[u8], secret: &[u8]) -> Vec<u8> {
    if secret.is_empty() {
        return text.to_vec();
    }
    let word = |i: usize| text.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let end = i + secret.len();
        let inside_a_word = i.checked_sub(1).is_some_and(word) || word(end);
        let whole = secret.len() >= MIN_SECRET_ANYWHERE || !inside_a_word;
        if text[i..].starts_with(secret) && whole {
            out.extend_from_slice(b"***");
            i = end;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

fn too_long() -> ProxyProblem {
    ProxyProblem::HeaderTooLong {
        limit: MAX_ANSWER_HEADER,
    }
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

    fn url(s: &str) -> ProxyUrl {
        s.parse().unwrap()
    }

    fn name(s: &str) -> Host {
        Host::Name(s.into())
    }

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
        let c = Connect::new(&u, &name("x.vm.vers.sh"), 443);
        assert!(!format!("{c:?}").contains("YWxpY2U6cEBzcyQ6JXc="), "{c:?}");
        let env = ProxyEnv::from_pairs(&[("HTTPS_PROXY", "http://alice:p%40ss@p")]);
        assert_eq!(format!("{env:?}"), r#"ProxyEnv { set: ["HTTPS_PROXY"] }"#);
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

    fn proxy_env(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_pairs(pairs)
    }

    fn decide(flag: Option<&str>, noproxy: Option<&str>, env: &[(&str, &str)]) -> Route {
        route(flag, noproxy, &proxy_env(env), &name("x.vm.vers.sh")).unwrap()
    }

    fn source(route: &Route) -> Option<&'static str> {
        route.proxy().map(|p| p.source.name())
    }

    #[test]
    fn the_proxy_comes_from_the_flag_then_the_variables_lowercase_first() {
        let all = [
            ("https_proxy", "http://a:1"),
            ("HTTPS_PROXY", "http://b:1"),
            ("all_proxy", "http://c:1"),
            ("ALL_PROXY", "http://d:1"),
        ];
        assert_eq!(
            source(&decide(Some("http://f:1"), None, &all)),
            Some("--proxy")
        );
        for skip in 0..4 {
            let env = &all[skip..];
            assert_eq!(source(&decide(None, None, env)), Some(all[skip].0));
        }
        // Empty is unset, as in curl: the next variable is used.
        let env = [("https_proxy", ""), ("HTTPS_PROXY", "http://b:1")];
        assert_eq!(source(&decide(None, None, &env)), Some("HTTPS_PROXY"));
        // http_proxy is for http:// transfers, never ours.
        assert_eq!(
            decide(None, None, &[("http_proxy", "http://h:1")]),
            Route::Direct
        );
        assert_eq!(decide(None, None, &[]), Route::Direct);
        assert_eq!(decide(Some(""), None, &all), Route::Direct);
    }

    #[test]
    fn no_proxy_exempts_host_as_named_and_the_flag_overrides_it() {
        let env = [("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", ".vers.sh")];
        let exempt = |r: &Route| match r {
            Route::Exempt { by, .. } => Some(*by),
            _ => None,
        };
        assert_eq!(exempt(&decide(None, None, &env)), Some("NO_PROXY"));
        assert_eq!(
            exempt(&decide(Some("http://f:1"), None, &env)),
            Some("NO_PROXY")
        );
        assert_eq!(exempt(&decide(None, Some("*"), &env)), Some("--noproxy"));
        // --noproxy '' replaces the variable with an empty list.
        assert_eq!(source(&decide(None, Some(""), &env)), Some("HTTPS_PROXY"));
        let lower_first = [
            ("HTTPS_PROXY", "http://p:1"),
            ("no_proxy", "other.example"),
            ("NO_PROXY", "*"),
        ];
        assert_eq!(
            source(&decide(None, None, &lower_first)),
            Some("HTTPS_PROXY")
        );
        let v6 = route(
            None,
            Some("::1"),
            &proxy_env(&env),
            &Host::Ip(Ipv6Addr::LOCALHOST.into()),
        )
        .unwrap();
        assert_eq!(exempt(&v6), Some("--noproxy"));
    }

    #[test]
    fn a_bad_variable_is_named_and_its_value_not_repeated() {
        let host = name("x.vm.vers.sh");
        for (value, reason) in [
            (
                "socks5://u:secret@p",
                "invalid proxy URL in HTTPS_PROXY: socks5://",
            ),
            (
                "http://u:secret@p\n",
                "HTTPS_PROXY contains a control character",
            ),
            ("http://u:secret@p x", "HTTPS_PROXY contains white space"),
            (
                "http://u:secret@p\u{202e}",
                "HTTPS_PROXY contains a control character (U+202E)",
            ),
        ] {
            let err = route(None, None, &proxy_env(&[("HTTPS_PROXY", value)]), &host).unwrap_err();
            assert!(err.contains(reason), "{value:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    fn exchange(url_text: &str) -> Connect {
        Connect::new(&url(url_text), &Host::Ip([127, 0, 0, 1].into()), 4433)
    }

    #[test]
    fn the_request_names_the_target_and_carries_basic_credentials() {
        let plain = exchange("http://proxy:3128");
        let text = String::from_utf8(plain.request().to_vec()).unwrap();
        assert!(text.starts_with("CONNECT 127.0.0.1:4433 HTTP/1.1\r\nHost: 127.0.0.1:4433\r\n"));
        assert!(text.ends_with("\r\n\r\n") && !text.contains("Proxy-Authorization"));
        let auth = exchange("http://alice:p%40ss%24%3A%25w@proxy:3128");
        let text = String::from_utf8(auth.request().to_vec()).unwrap();
        // base64("alice:p@ss$:%w")
        assert!(
            text.contains("\r\nProxy-Authorization: Basic YWxpY2U6cEBzcyQ6JXc=\r\n"),
            "{text}"
        );
        let v6 = Connect::new(&url("p"), &Host::Ip(Ipv6Addr::LOCALHOST.into()), 22);
        assert!(v6
            .request()
            .starts_with(b"CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n"));
        let named = Connect::new(&url("p"), &name("x.vm.vers.sh"), 443);
        assert!(named
            .request()
            .starts_with(b"CONNECT x.vm.vers.sh:443 HTTP/1.1\r\n"));
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

    /// Feeds `answer` in pieces of `step` bytes, as a socket would hand
    /// them over, until the outcome: a problem as its Debug text (io::Error
    /// has no equality), or the tunnel's bytes: the leftover and what was
    /// not fed yet.
    fn feed(answer: &[u8], step: usize) -> Result<Progress, String> {
        let mut c = exchange("http://proxy:3128");
        for (i, piece) in answer.chunks(step).enumerate() {
            match c.receive(piece) {
                Ok(Progress::NeedMore) => {}
                Ok(Progress::Established { mut leftover }) => {
                    leftover.extend_from_slice(&answer[((i + 1) * step).min(answer.len())..]);
                    return Ok(Progress::Established { leftover });
                }
                Err(p) => return Err(format!("{p:?}")),
            }
        }
        Ok(Progress::NeedMore)
    }

    #[test]
    fn established_returns_the_bytes_after_the_header_at_any_split() {
        let mut answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 Connection established\r\nProxy-agent: x\r\nContent-Length: 5\r\n\r\n".to_vec();
        answer.extend_from_slice(b"\x16\x03\x03tunnel bytes");
        for step in [1, 2, 3, 7, answer.len()] {
            assert_eq!(
                feed(&answer, step),
                Ok(Progress::Established {
                    leftover: b"\x16\x03\x03tunnel bytes".to_vec()
                }),
                "step {step}"
            );
        }
        // Bare LF line ends, as curl accepts them.
        assert_eq!(
            feed(b"HTTP/1.1 200 OK\n\n", 1),
            Ok(Progress::Established { leftover: vec![] })
        );
    }

    fn problem(answer: &[u8]) -> String {
        match feed(answer, 1) {
            Err(p) => p,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(answer)),
        }
    }

    #[test]
    fn refusals_keep_status_and_reason_and_not_the_body() {
        let p = problem(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n<h1>no</h1>");
        assert_eq!(p, r#"Refused { status: 403, reason: "Forbidden" }"#);
        let p = problem(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        assert_eq!(p, r#"Refused { status: 502, reason: "Bad Gateway" }"#);
        assert!(problem(b"HTTP/1.1 503\r\n\r\n").contains("status: 503, reason: \"\""));
        let p = problem(b"HTTP/1.1 504 Gate\x1b[31mway\xc2\x9b\xff\r\n\r\n");
        assert!(
            p.contains(r#"reason: "Gate\\u{1b}[31mway\\u{9b}\\xff""#),
            "{p}"
        );
    }

    /// What `url`'s exchange says of `answer` (fed whole), as `{:?}`.
    fn problem_with(url: &str, answer: &[u8]) -> String {
        match exchange(url).receive(answer) {
            Err(p) => format!("{p:?}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(answer)),
        }
    }

    #[test]
    fn a_password_the_proxy_repeats_is_hidden_in_every_form() {
        // base64("alice:p@ss/w"), from coreutils.
        let basic = "YWxpY2U6cEBzcy93";
        let url = "http://alice:p%40ss%2Fw@proxy:3128";
        for (reason, shown) in [
            ("no for alice:p@ss/w".to_string(), "no for alice:***"),
            ("no for alice:p%40ss%2Fw".to_string(), "no for alice:***"),
            (format!("Basic {basic}, p@ss/w"), "Basic ***, ***"),
        ] {
            let p = problem_with(url, format!("HTTP/1.1 403 {reason}\r\n\r\n").as_bytes());
            assert!(p.contains(&format!("reason: \"{shown}\"")), "{p}");
        }
        let answer = b"HTTP/1.1 407 x\r\nProxy-Authenticate: p@ss/w realm=x\r\n\r\n";
        let p = problem_with("http://proxy:3128", answer);
        assert!(p.contains("p@ss/w"), "no credentials, nothing to hide: {p}");
        let p = problem_with("http://alice:p%40ss%2Fw@proxy:3128", answer);
        assert!(!p.contains("p@ss"), "{p}");
        // The start of an answer that is not HTTP; hidden before the cut to
        // 32 bytes, so that no start of the password is left either.
        let answer = b"SSH-2.0-OpenSSH_9.2 alice:p@ss/w\r\n";
        let p = problem_with(url, answer);
        assert!(
            p.contains(r#"start: "SSH-2.0-OpenSSH_9.2 alice:***\\r"#),
            "{p}"
        );
        let answer = b"SSH-2.0-OpenSSH_9.2 alice:xyzp@ss/w\r\n";
        assert!(!problem_with(url, answer).contains("p@"), "{answer:?}");
    }

    #[test]
    fn short_passwords_are_hidden_as_whole_words_and_empty_ones_not_at_all() {
        let answer = b"HTTP/1.1 403 pw: no pwned alice:pw.\r\n\r\n";
        let p = problem_with("http://alice:pw@proxy:3128", answer);
        assert!(p.contains(r#"reason: "***: no pwned alice:***.""#), "{p}");
        // An empty password hides nothing but the Basic token (base64("alice:")).
        let answer = b"HTTP/1.1 403 alice: YWxpY2U6\r\n\r\n";
        let p = problem_with("http://alice:@proxy:3128", answer);
        assert!(p.contains(r#"reason: "alice: ***""#), "{p}");
        let p = problem_with("http://alice@proxy:3128", answer);
        assert!(p.contains(r#"reason: "alice: ***""#), "{p}");
    }

    #[test]
    fn a_407_or_401_says_whether_credentials_were_sent() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate abc\r\n\r\n";
        let p = problem(answer);
        assert!(
            p.contains("AuthRequired") && p.contains(r#"["NTLM", "Negotiate"]"#),
            "{p}"
        );
        let mut c = exchange("http://alice:secret@proxy:3128");
        let p = c.receive(answer).unwrap_err();
        assert!(matches!(p, ProxyProblem::CredentialsRejected { ref user, .. } if user == "alice"));
        // tinyproxy's answer to wrong credentials.
        let mut c = exchange("http://alice:secret@proxy:3128");
        let p = c.receive(b"HTTP/1.0 401 Unauthorized\r\n\r\n").unwrap_err();
        assert!(
            matches!(p, ProxyProblem::CredentialsRejected { status: 401, .. }),
            "{p:?}"
        );
    }

    #[test]
    fn non_http_and_endless_answers_fail_early() {
        let p = feed(b"SSH-2.0-OpenSSH_9.2\r\n", 100).unwrap_err();
        assert_eq!(p, r#"NotHttp { start: "SSH-2.0-OpenSSH_9.2\\r\\n" }"#);
        // Found at the first wrong byte, before any line end.
        let mut c = exchange("http://proxy:3128");
        assert!(matches!(
            c.receive(b"\x15\x03"),
            Err(ProxyProblem::NotHttp { .. })
        ));
        assert!(problem(b"HTTP/1.1 20 OK\r\n").starts_with("NotHttp"));
        assert!(problem(b"HTTP/1.1 200OK\r\n").starts_with("NotHttp"));
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() <= MAX_ANSWER_HEADER + 100 {
            endless.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(problem(&endless), "HeaderTooLong { limit: 16384 }");
        let mut one_line = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        one_line.resize(MAX_ANSWER_HEADER + 1, b'a');
        assert_eq!(problem(&one_line), "HeaderTooLong { limit: 16384 }");
    }

    #[test]
    fn a_header_ending_exactly_at_the_limit_is_accepted() {
        let mut answer = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        answer.resize(MAX_ANSWER_HEADER - 4, b'a');
        answer.extend_from_slice(b"\r\n\r\n");
        assert_eq!(answer.len(), MAX_ANSWER_HEADER);
        answer.extend_from_slice(&[7; 40_000]);
        assert_eq!(
            feed(&answer, answer.len()),
            Ok(Progress::Established {
                leftover: vec![7; 40_000]
            })
        );
    }

    #[test]
    fn closing_early_says_whether_anything_came() {
        let c = exchange("http://proxy:3128");
        assert!(matches!(
            c.closed(),
            ProxyProblem::Closed {
                partly_answered: false
            }
        ));
        let mut c = exchange("http://proxy:3128");
        assert!(matches!(c.receive(b"HTTP/1.1 2"), Ok(Progress::NeedMore)));
        assert!(matches!(
            c.closed(),
            ProxyProblem::Closed {
                partly_answered: true
            }
        ));
    }

    proptest! {
        #[test]
        fn url_parsing_never_panics(s in any::<String>()) {
            let _ = s.parse::<ProxyUrl>();
        }

        #[test]
        fn answers_never_panic_whatever_the_split(answer in prop::collection::vec(any::<u8>(), 0..300), step in 1usize..20) {
            let _ = feed(&answer, step);
            let mut prefixed = b"HTTP/1.1 ".to_vec();
            prefixed.extend_from_slice(&answer);
            let _ = feed(&prefixed, step);
        }

        #[test]
        fn the_split_never_changes_the_outcome(extra in prop::collection::vec(any::<u8>(), 0..200), step in 1usize..40) {
            let mut answer = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 p\r\n\r\n".to_vec();
            answer.extend_from_slice(&extra);
            prop_assert_eq!(feed(&answer, step), Ok(Progress::Established { leftover: extra }));
        }

        #[test]
        fn decoding_undoes_encoding(bytes in prop::collection::vec(any::<u8>(), 0..50)) {
            prop_assert_eq!(percent_decode(&percent_encode(&bytes)), bytes);
        }
    }
}
