//! The CONNECT exchange with a proxy, without I/O: the request, then the
//! answer's header parsed from whatever bytes arrive; what the proxy says is
//! shown escaped and without the password in any form.

use std::fmt;

use super::url::{Credentials, ProxyUrl};
use crate::error::ProxyProblem;
use crate::target::Host;
use crate::text;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    use crate::proxy::testing::{name, url};

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
        // Its Debug leaves the request, and so the password, out.
        assert!(
            !format!("{auth:?}").contains("YWxpY2U6cEBzcyQ6JXc="),
            "{auth:?}"
        );
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
    }
}
