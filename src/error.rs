//! Every way a tunnel can fail, the words a user sees for it, and its exit status.
//!
//! Each message carries its cause in plain words, so [`Error`] has no
//! `source()`: a printed chain would say the cause twice. The typed cause stays
//! in the variant's fields for code that needs to match on it.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::{pem, UnixTime};
use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use crate::target::ShownAddr;
use crate::text;

/// A `Result` whose error is a tunnel [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit statuses, documented in the README; scripts rely on them.
pub mod exit {
    /// Both directions finished cleanly, or the local reader went away.
    pub const OK: u8 = 0;
    /// stdin/stdout failed, or the tunnel could not set itself up.
    pub const LOCAL: u8 = 1;
    /// Bad command line or configuration (including an unusable `--cacert`).
    pub const USAGE: u8 = 2;
    /// The name did not resolve, or no TCP connection could be made in time;
    /// or, through a proxy, the proxy could not be reached, refused the
    /// tunnel (403, 407, 502...), or did not answer CONNECT in HTTP or in time.
    pub const CONNECT: u8 = 3;
    /// The TLS handshake failed: untrusted or invalid certificate, no common
    /// protocol, a server that does not speak TLS, or no answer in time; the
    /// same for the TLS to an `https://` proxy itself.
    pub const TLS: u8 = 4;
    /// An established session ended without TLS close_notify (truncation
    /// cannot be ruled out), was reset, or broke at the TLS layer.
    pub const UNCLEAN: u8 = 5;
    /// TLS with the edge completed, but the edge closed before the service sent
    /// a byte: nothing on the VM accepted the connection.
    pub const NO_SERVICE: u8 = 6;
    /// Added to the signal number when SIGHUP, SIGINT or SIGTERM ends the tunnel.
    /// On Windows a console control event counts as the signal it stands for:
    /// Ctrl-C SIGINT (130), Ctrl-Break SIGBREAK, 21 (149), the console closing
    /// SIGHUP (129), logoff and shutdown SIGTERM (143).
    pub const SIGNAL_BASE: u8 = 128;
}

/// Where a timed-out connection attempt was when time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Looking the name up.
    Resolve,
    /// Waiting for a TCP connection.
    Connect,
    /// Waiting for the TLS handshake to finish.
    Handshake,
    /// Waiting for the proxy's answer to CONNECT (a proxy hop only).
    Answer,
}

/// The hop of the route a connection failure happened on: the edge, or the
/// proxy in front of it. The same failure reads the same way on either,
/// naming the hop.
#[derive(Debug, Clone)]
pub enum Hop {
    /// The edge (or `--connect-to`'s host).
    Edge {
        /// Host and port as the user named them.
        target: String,
    },
    /// The proxy (boxed: every connection error carries a hop).
    Proxy(Box<ProxyName>),
}

/// A proxy as messages name it: never with its password.
#[derive(Debug, Clone)]
pub struct ProxyName {
    /// The proxy's URL, its password replaced by `***`.
    pub url: String,
    /// Where the proxy came from: `--proxy` or the variable's name.
    pub from: &'static str,
    /// The `host:port` the CONNECT request names.
    pub target: String,
    /// The URL has an `@` after its host part ([`crate::proxy::url::ProxyUrl::cut_userinfo`]):
    /// its port may be part of a password, so addresses are shown without it.
    pub cut_userinfo: bool,
}

/// `http://proxy:3128 (from ALL_PROXY)`.
impl fmt::Display for ProxyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.url, self.from)
    }
}

/// Why a tunnel did not end cleanly.
#[derive(Debug)]
pub enum Error {
    /// A `--cacert` (or `SSL_CERT_FILE`) file could not be read.
    CaFileRead {
        /// The file as given.
        path: PathBuf,
        /// Why reading it failed.
        source: io::Error,
    },
    /// A CA file was read but holds no usable PEM certificate.
    CaFileInvalid {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: CaProblem,
    },
    /// rustls refused our own TLS settings: a local problem, not the server's.
    TlsSetup {
        /// What rustls said.
        source: rustls::Error,
    },
    /// A hop's name could not be resolved.
    Resolve {
        /// The hop.
        hop: Hop,
        /// The name looked up.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// A hop's name resolved, but to no address of the requested family.
    NoAddress {
        /// The hop.
        hop: Hop,
        /// The name looked up.
        host: String,
        /// "IPv4 " or "IPv6 " (with `-4`/`-6`), or "" for any family.
        family: &'static str,
    },
    /// Every address of a hop refused or failed.
    Connect {
        /// The hop.
        hop: Hop,
        /// Each address tried, with its failure.
        attempts: Vec<(SocketAddr, io::Error)>,
    },
    /// The connect phase (resolve, TCP, TLS handshake, a proxy's answer) ran
    /// out of time.
    Timeout {
        /// The hop under way.
        hop: Hop,
        /// The phase that was under way.
        phase: Phase,
        /// The connect timeout in force.
        after: Duration,
    },
    /// The TLS handshake with a hop failed.
    Tls {
        /// The hop.
        hop: Hop,
        /// The name the certificate was checked against.
        host: String,
        /// The address the handshake ran over (the proxy's, through one).
        addr: ShownAddr,
        /// The TLS error (boxed, as `Result`s carry `Error`).
        source: Box<rustls::Error>,
        /// Whether the server asked for a client certificate.
        client_cert_requested: bool,
    },
    /// The socket failed, or the peer closed it, during the TLS handshake.
    HandshakeIo {
        /// The hop.
        hop: Hop,
        /// The name the certificate was to be checked against.
        host: String,
        /// The address the handshake ran over (the proxy's, through one).
        addr: ShownAddr,
        /// What happened to the socket; `UnexpectedEof` for a close.
        source: io::Error,
    },
    /// The established session ended without close_notify, was reset, or
    /// failed at the TLS layer.
    Unclean {
        /// The server's name.
        host: String,
        /// Bytes received from the server before the end.
        received: u64,
        /// What ended it.
        cause: UncleanCause,
    },
    /// The edge closed the session, cleanly or not, before the service sent
    /// a byte while our side was still open: nothing on the VM accepted it.
    NoService {
        /// The host as the user named it (IPv6 literals in brackets).
        host: String,
        /// The port as the user named it.
        port: u16,
    },
    /// Reading stdin or writing stdout failed.
    Stdio {
        /// "stdin" or "stdout".
        which: &'static str,
        /// What failed.
        source: io::Error,
    },
    /// `forward` could not listen where it was asked to.
    Listen {
        /// The address and port.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// `forward` could not set one of its mappings up: its listener, or its
    /// target's name.
    Mapping {
        /// The mapping, `[BIND_ADDR:]LOCAL_PORT:HOST:PORT` as the user wrote it.
        mapping: String,
        /// What failed (boxed: `Result`s carry `Error`).
        source: Box<Error>,
    },
    /// The tunnel could not set up its event loop or signal handling.
    Setup {
        /// The operation that failed.
        what: &'static str,
        /// What failed.
        source: io::Error,
    },
    /// `forward --max-connections` asks for more connections than the
    /// open-files limit can be raised to hold.
    TooManyConnections {
        /// The number asked for.
        asked: usize,
        /// The descriptors that many connections may hold, with the forwarder's own.
        needed: u64,
        /// The most the open-files limit can be raised to.
        ceiling: u64,
        /// The most connections that fit under it.
        fit: u64,
    },
    /// `--make-ssh-dir` found `~/.ssh` owned by another user, who could take
    /// over the sessions ssh shares through a socket there.
    ForeignSshDir {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// SIGHUP, SIGINT or SIGTERM arrived: a request to stop, not a failure.
    Interrupted {
        /// The signal number.
        signal: i32,
    },
    /// The proxy was reached, but did not open the tunnel.
    Proxy {
        /// The proxy.
        proxy: Box<ProxyName>,
        /// What went wrong (boxed: it is large, and `Result`s carry `Error`).
        problem: Box<ProxyProblem>,
    },
}

/// How a reached proxy failed to open the tunnel (the cause, in [`Error::Proxy`]).
#[derive(Debug)]
pub enum ProxyProblem {
    /// The socket failed while the CONNECT exchange was under way.
    Io(io::Error),
    /// The proxy closed the connection before its answer's header was complete.
    Closed {
        /// Whether any part of an answer had arrived.
        partly_answered: bool,
    },
    /// The answer does not start with an HTTP/1.x status line.
    NotHttp {
        /// Its first bytes, escaped to printable ASCII.
        start: String,
    },
    /// The answer's header went on past the limit.
    HeaderTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 407 (or 401, as tinyproxy sends) to a request without credentials.
    AuthRequired {
        /// 407 or 401.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
        /// The schemes its `Proxy-Authenticate` headers offer (`Basic`, `NTLM`...).
        offered: Vec<String>,
    },
    /// 407 (or 401) to a request with credentials: they were wrong, or the
    /// proxy takes no Basic credentials at all.
    CredentialsRejected {
        /// The user name sent (never the password).
        user: String,
        /// 407 or 401.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
        /// The schemes its `Proxy-Authenticate` headers offer.
        offered: Vec<String>,
    },
    /// Any other status than 2xx, 401 and 407.
    Refused {
        /// The status code.
        status: u16,
        /// The proxy's reason phrase.
        reason: String,
    },
}

/// What is wrong with a CA file that could be read.
#[derive(Debug)]
pub enum CaProblem {
    /// A directory was named.
    Directory,
    /// The file holds nothing but white space.
    Empty,
    /// The file holds text, but no `CERTIFICATE` block.
    NoCertificate,
    /// A PEM block is malformed.
    Pem(pem::Error),
    /// Certificate `index` (from 1) is not a usable trust anchor.
    NotAnAnchor {
        /// Position in the file, from 1.
        index: usize,
        /// What webpki said.
        source: rustls::Error,
    },
}

/// The certificate does not cover the name it was checked for (from
/// [`crate::tls::verifier`], in `CertificateError::Other`).
#[derive(Debug)]
pub struct NameMismatch {
    /// The subjectAltName DNS names (as the certificate holds them, hostile)
    /// and IP addresses; `None` if the certificate could not be read for them.
    pub covers: Option<(Vec<Vec<u8>>, Vec<IpAddr>)>,
}

/// What the certificate covers, escaped: `a.example, 10.0.0.1`.
impl fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((dns_names, ip_addresses)) = &self.covers else {
            return f.write_str("the certificate's names could not be read");
        };
        let names: Vec<String> = dns_names
            .iter()
            .map(|name| text::escape_bytes(name))
            .chain(ip_addresses.iter().map(ToString::to_string))
            .collect();
        if names.is_empty() {
            f.write_str("it covers no names")
        } else {
            write!(f, "it covers {}", names.join(", "))
        }
    }
}

impl std::error::Error for NameMismatch {}

/// What ended an established session uncleanly.
#[derive(Debug)]
pub enum UncleanCause {
    /// TCP EOF with no close_notify before it.
    NoCloseNotify,
    /// The socket failed (reset, timed out...).
    Io(io::Error),
    /// The server sent something rustls rejected.
    Tls(rustls::Error),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::CaFileRead { .. }
            | Error::CaFileInvalid { .. }
            | Error::Listen { .. }
            | Error::TooManyConnections { .. } => exit::USAGE,
            Error::Resolve { .. } | Error::NoAddress { .. } | Error::Connect { .. } => {
                exit::CONNECT
            }
            Error::Timeout { phase, .. } => match phase {
                Phase::Resolve | Phase::Connect | Phase::Answer => exit::CONNECT,
                Phase::Handshake => exit::TLS,
            },
            Error::Tls { .. } | Error::HandshakeIo { .. } => exit::TLS,
            Error::Unclean { .. } => exit::UNCLEAN,
            Error::NoService { .. } => exit::NO_SERVICE,
            Error::Stdio { .. }
            | Error::Setup { .. }
            | Error::TlsSetup { .. }
            | Error::ForeignSshDir { .. } => exit::LOCAL,
            Error::Interrupted { signal } => {
                exit::SIGNAL_BASE.saturating_add(u8::try_from(*signal).unwrap_or(0))
            }
            Error::Proxy { .. } => exit::CONNECT,
            Error::Mapping { source, .. } => source.exit_code(),
        }
    }

    /// Whether this ending deserves no message at the default log level.
    pub fn is_quiet(&self) -> bool {
        matches!(self, Error::Interrupted { .. })
    }
}

impl Error {
    /// The proxy could not be reached, and its URL has an `@` after the host
    /// part: the likeliest cause is a password that cut the URL short.
    fn may_be_a_cut_password(&self) -> bool {
        let hop = match self {
            Error::Resolve { hop, .. }
            | Error::NoAddress { hop, .. }
            | Error::Connect { hop, .. } => hop,
            Error::Timeout {
                hop,
                phase: Phase::Resolve | Phase::Connect,
                ..
            } => hop,
            _ => return false,
        };
        matches!(hop, Hop::Proxy(proxy) if proxy.cut_userinfo)
    }

    /// The message, without the cut-password hint.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CaFileRead { path, source } => write!(
                f,
                "cannot read CA file {}: {}",
                path.display(),
                describe_io(source)
            ),
            Error::CaFileInvalid { path, problem } => {
                write!(f, "CA file {} is unusable: {problem}", path.display())
            }
            Error::TlsSetup { source } => write!(
                f,
                "setting up TLS: {}",
                describe_tls_error(source, "the server", false, false)
            ),
            Error::Resolve { hop, host, source } => write!(
                f,
                "could not resolve {}: {}",
                hop.named(host),
                describe_io(source)
            ),
            Error::NoAddress { hop, host, family } => {
                write!(f, "{} has no {family}address", hop.named(host))
            }
            Error::Connect { hop, attempts } => {
                write!(f, "could not connect to {}: ", hop.named_as_target())?;
                for (i, (addr, err)) in attempts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{}: {}", hop.address(addr), describe_io(err))?;
                }
                Ok(())
            }
            Error::Timeout { hop, phase, after } => {
                let during = match (phase, hop) {
                    (Phase::Resolve, Hop::Edge { .. }) => "resolving the name".to_string(),
                    (Phase::Resolve, Hop::Proxy(_)) => "resolving its name".to_string(),
                    (Phase::Connect, _) => "waiting for a TCP connection".to_string(),
                    (Phase::Handshake, Hop::Edge { .. }) => "waiting for the TLS handshake".to_string(),
                    (Phase::Handshake, Hop::Proxy(_)) => {
                        "waiting for the TLS handshake with it".to_string()
                    }
                    (Phase::Answer, Hop::Edge { .. }) => "waiting for the proxy's answer".to_string(),
                    (Phase::Answer, Hop::Proxy(proxy)) => {
                        format!("waiting for its answer to CONNECT {}", proxy.target)
                    }
                };
                write!(
                    f,
                    "timed out connecting to {} after {}s, {during} (see --connect-timeout)",
                    hop.named_as_target(),
                    after.as_secs_f64()
                )
            }
            Error::Tls {
                hop,
                host,
                addr,
                source,
                client_cert_requested,
            } => write!(
                f,
                "{}{}",
                handshake_with(hop, host, addr),
                describe_tls_error(source, host, hop.is_proxy(), *client_cert_requested)
            ),
            Error::HandshakeIo {
                hop,
                host,
                addr,
                source,
            } => {
                let why = if source.kind() == io::ErrorKind::UnexpectedEof {
                    let who = if hop.is_proxy() { "proxy" } else { "server" };
                    format!("the {who} closed the connection")
                } else {
                    describe_io(source)
                };
                write!(f, "{}{why}", handshake_with(hop, host, addr))
            }
            Error::Unclean {
                host,
                received,
                cause,
            } => {
                write!(
                    f,
                    "connection to {host} ended uncleanly after {received} bytes received: "
                )?;
                match cause {
                    UncleanCause::NoCloseNotify => write!(
                        f,
                        "the server closed TCP without TLS close_notify, so the data may be truncated"
                    ),
                    UncleanCause::Io(e) => write!(f, "{}", describe_io(e)),
                    UncleanCause::Tls(e) => {
                        write!(f, "{}", describe_tls_error(e, host, false, false))
                    }
                }
            }
            Error::NoService { host, port } => write!(
                f,
                "the edge closed the connection to {host}:{port} before the service sent anything: {} \
                 (`vers-tunnel doctor {host}:{port}` checks each step)",
                describe_no_service(*port)
            ),
            Error::Stdio { which, source } => write!(f, "{which}: {}", describe_io(source)),
            Error::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {}", describe_io(source))
            }
            Error::Mapping { mapping, source } => write!(f, "forward {mapping}: {source}"),
            Error::Setup { what, source } => write!(f, "{what}: {}", describe_io(source)),
            Error::TooManyConnections {
                asked,
                needed,
                ceiling,
                fit,
            } => write!(
                f,
                "--max-connections {asked} needs up to {needed} open files, and the open-files \
                 limit cannot go above {ceiling} (ulimit -Hn): at most {fit} connections fit"
            ),
            Error::ForeignSshDir { path, owner } => write!(
                f,
                "{} belongs to uid {owner}, who could take over the connections ssh shares \
                 through it: chown it to yourself",
                path.display()
            ),
            Error::Interrupted { signal } => write!(f, "stopped by signal {signal}"),
            Error::Proxy { proxy, problem } => describe_proxy_problem(f, proxy, problem),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f)?;
        if self.may_be_a_cut_password() {
            f.write_str(
                "; the URL has an '@' after the host it names, so its password probably \
                 holds a '/', '?' or '#', which ends the host part early: percent-encode \
                 them (%2F, %3F, %23)",
            )?;
        }
        Ok(())
    }
}

/// The "TLS handshake with ... failed: " that starts a handshake failure's message.
fn handshake_with(hop: &Hop, host: &str, addr: &ShownAddr) -> String {
    match hop {
        Hop::Edge { .. } => format!("TLS handshake with {host} ({addr}) failed: "),
        Hop::Proxy(proxy) => format!("TLS handshake with proxy {proxy} at {addr} failed: "),
    }
}

impl Hop {
    /// Whether this is the proxy.
    fn is_proxy(&self) -> bool {
        matches!(self, Hop::Proxy(_))
    }

    /// `name` for the edge, `proxy URL (from SOURCE)` for the proxy.
    fn named(&self, name: &str) -> String {
        match self {
            Hop::Edge { .. } => name.to_string(),
            Hop::Proxy(proxy) => format!("proxy {proxy}"),
        }
    }

    /// `host:port` for the edge, `proxy URL (from SOURCE)` for the proxy.
    fn named_as_target(&self) -> String {
        match self {
            Hop::Edge { target } => self.named(target),
            Hop::Proxy(_) => self.named(""),
        }
    }

    /// An address tried: without its port when that may be part of a
    /// proxy's password.
    fn address(&self, addr: &SocketAddr) -> ShownAddr {
        let cut = matches!(self, Hop::Proxy(proxy) if proxy.cut_userinfo);
        ShownAddr::new(*addr, cut)
    }
}

/// One line for a reached proxy's failure to open the tunnel.
fn describe_proxy_problem(
    f: &mut fmt::Formatter<'_>,
    proxy: &ProxyName,
    problem: &ProxyProblem,
) -> fmt::Result {
    use ProxyProblem as P;
    let target = &proxy.target;
    match problem {
        P::Io(source) => write!(
            f,
            "connection to proxy {proxy} failed during CONNECT {target}: {}",
            describe_io(source)
        ),
        P::Closed {
            partly_answered: false,
        } => write!(
            f,
            "proxy {proxy} closed the connection without answering CONNECT {target}"
        ),
        P::Closed {
            partly_answered: true,
        } => write!(
            f,
            "proxy {proxy} closed the connection in the middle of its answer to CONNECT {target}"
        ),
        P::NotHttp { start } => write!(
            f,
            "proxy {proxy} did not answer CONNECT {target} in HTTP (its answer began \"{start}\"); is it an HTTP proxy?"
        ),
        P::HeaderTooLong { limit } => write!(
            f,
            "proxy {proxy} answered CONNECT {target} with a header longer than {limit} bytes"
        ),
        P::AuthRequired {
            status,
            reason,
            offered,
        } => {
            write!(
                f,
                "proxy {proxy} requires credentials ({}): put them in the proxy URL as \
                 USER:PASSWORD@ before the host, percent-encoding special characters",
                status_line(*status, reason)
            )?;
            no_basic(f, offered)
        }
        P::CredentialsRejected {
            user,
            status,
            reason,
            offered,
        } => {
            write!(
                f,
                "proxy {proxy} rejected the credentials for user {user} ({})",
                status_line(*status, reason)
            )?;
            no_basic(f, offered)
        }
        P::Refused { status, reason } => {
            write!(
                f,
                "proxy {proxy} refused CONNECT {target}: {}",
                status_line(*status, reason)
            )
        }
    }
}

/// `403 Forbidden`, or `403` when the proxy gave no reason phrase.
fn status_line(status: u16, reason: &str) -> String {
    if reason.is_empty() {
        status.to_string()
    } else {
        format!("{status} {reason}")
    }
}

/// When a proxy's `Proxy-Authenticate` offers schemes and Basic is not one of
/// them, says so: credentials in the URL cannot satisfy it.
fn no_basic(f: &mut fmt::Formatter<'_>, offered: &[String]) -> fmt::Result {
    if offered.is_empty() || offered.iter().any(|s| s.eq_ignore_ascii_case("basic")) {
        return Ok(());
    }
    write!(
        f,
        "; but it offers only {}, and vers-tunnel sends Basic",
        offered.join(", ")
    )
}

impl std::error::Error for Error {}

impl fmt::Display for CaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaProblem::Directory => f.write_str("it is a directory, not a PEM file"),
            CaProblem::Empty => f.write_str("it is empty"),
            CaProblem::NoCertificate => f.write_str("it holds no PEM \"CERTIFICATE\" block"),
            CaProblem::Pem(e) => f.write_str(&describe_pem_error(e)),
            CaProblem::NotAnAnchor { index, source } => {
                let why = match source {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding) => {
                        "it is not well-formed X.509 (DER)"
                    }
                    _ => "webpki cannot take it as a trust anchor",
                };
                write!(
                    f,
                    "certificate {index} is not a usable CA certificate: {why}"
                )
            }
        }
    }
}

/// What an edge closing before the service's first byte means, and its usual
/// causes (the Vers docs' checklist), for the tunnel and the doctor alike.
pub(crate) fn describe_no_service(port: u16) -> String {
    format!(
        "nothing on the VM accepted the connection on port {port}; usually the service \
         is not running, listens on 0.0.0.0 (IPv4 only) instead of ::, or the VM is not running"
    )
}

/// An I/O error in plain lowercase words: from its errno when the system
/// gave one, else from what it wraps (a TLS error, a resolver's code, a
/// message written for it), else from its kind. Never std's text with its
/// "(os error N)".
pub fn describe_io(err: &io::Error) -> String {
    if let Some(errno) = err.raw_os_error() {
        return match errno_words(errno) {
            Some(words) => words.to_string(),
            None => kind_words(err.kind(), Some(errno)),
        };
    }
    match err.get_ref() {
        Some(inner) => match inner.downcast_ref::<rustls::Error>() {
            Some(tls) => describe_tls_error(tls, "the server", false, false),
            // Ours ([`crate::net::resolve::LookupError`], or a message written
            // for the error): already in plain words.
            None => inner.to_string(),
        },
        None => kind_words(err.kind(), None),
    }
}

/// Words for the errnos a network tunnel meets, as glibc's `strerror` words
/// them (lowercase), so that the static (musl) binary says the same.
#[cfg(unix)]
fn errno_words(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::ECONNREFUSED => "connection refused",
        libc::ECONNRESET => "connection reset by peer",
        libc::ECONNABORTED => "software caused connection abort",
        libc::ENETUNREACH => "network is unreachable",
        libc::ENETDOWN => "network is down",
        libc::EHOSTUNREACH => "no route to host",
        libc::ETIMEDOUT => "connection timed out",
        libc::EPIPE => "broken pipe",
        libc::EADDRINUSE => "address already in use",
        libc::EADDRNOTAVAIL => "cannot assign requested address",
        libc::EAFNOSUPPORT => "address family not supported by protocol",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        libc::ENOENT => "no such file or directory",
        libc::EISDIR => "is a directory",
        libc::ENOTDIR => "not a directory",
        libc::EMFILE => "too many open files",
        libc::ENFILE => "too many open files in system",
        libc::ENOBUFS => "no buffer space available",
        libc::ENOMEM => "cannot allocate memory",
        libc::EIO => "input/output error",
        libc::EBADF => "bad file descriptor",
        libc::EINVAL => "invalid argument",
        libc::ENOTCONN => "transport endpoint is not connected",
        libc::ENOSPC => "no space left on device",
        _ => return None,
    })
}

/// Words for the codes Windows gives where Unix gives those errnos (Winsock's
/// for sockets, Win32's for files and pipes), in glibc's words, so that a
/// failure reads the same on every platform.
#[cfg(windows)]
fn errno_words(code: i32) -> Option<&'static str> {
    use windows_sys::Win32::Foundation as w;
    use windows_sys::Win32::Networking::WinSock as ws;
    const WORDS: [(i32, &str); 36] = [
        (ws::WSAECONNREFUSED, "connection refused"),
        (ws::WSAECONNRESET, "connection reset by peer"),
        (ws::WSAECONNABORTED, "software caused connection abort"),
        (ws::WSAENETUNREACH, "network is unreachable"),
        (ws::WSAENETDOWN, "network is down"),
        (ws::WSAENETRESET, "connection reset by network"),
        (ws::WSAEHOSTUNREACH, "no route to host"),
        (ws::WSAEHOSTDOWN, "host is down"),
        (ws::WSAETIMEDOUT, "connection timed out"),
        (ws::WSAEADDRINUSE, "address already in use"),
        (ws::WSAEADDRNOTAVAIL, "cannot assign requested address"),
        (
            ws::WSAEAFNOSUPPORT,
            "address family not supported by protocol",
        ),
        (ws::WSAEACCES, "permission denied"),
        (ws::WSAEMFILE, "too many open files"),
        (ws::WSAENOBUFS, "no buffer space available"),
        (ws::WSAEINVAL, "invalid argument"),
        (ws::WSAENOTCONN, "transport endpoint is not connected"),
        (
            ws::WSAESHUTDOWN,
            "cannot send after transport endpoint shutdown",
        ),
        (ws::WSAENOTSOCK, "socket operation on non-socket"),
        (ws::WSANOTINITIALISED, "the network is not initialised"),
        (w::ERROR_BROKEN_PIPE as i32, "broken pipe"),
        (w::ERROR_NO_DATA as i32, "broken pipe"),
        (w::ERROR_PIPE_NOT_CONNECTED as i32, "broken pipe"),
        (w::ERROR_ACCESS_DENIED as i32, "permission denied"),
        (
            w::ERROR_SHARING_VIOLATION as i32,
            "the file is in use by another process",
        ),
        (w::ERROR_FILE_NOT_FOUND as i32, "no such file or directory"),
        (w::ERROR_PATH_NOT_FOUND as i32, "no such file or directory"),
        (w::ERROR_INVALID_NAME as i32, "invalid file name"),
        (w::ERROR_DIRECTORY as i32, "not a directory"),
        (w::ERROR_TOO_MANY_OPEN_FILES as i32, "too many open files"),
        (w::ERROR_NOT_ENOUGH_MEMORY as i32, "cannot allocate memory"),
        (w::ERROR_OUTOFMEMORY as i32, "cannot allocate memory"),
        (w::ERROR_INVALID_HANDLE as i32, "bad file descriptor"),
        (w::ERROR_INVALID_PARAMETER as i32, "invalid argument"),
        (w::ERROR_DISK_FULL as i32, "no space left on device"),
        (w::ERROR_HANDLE_DISK_FULL as i32, "no space left on device"),
    ];
    WORDS
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, words)| *words)
}

/// Words for an error known only by its kind; `errno` when the system gave
/// one that [`errno_words`] does not name.
fn kind_words(kind: io::ErrorKind, errno: Option<i32>) -> String {
    use io::ErrorKind as K;
    let words = match kind {
        K::UnexpectedEof => "unexpected end of file",
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset by peer",
        K::ConnectionAborted => "connection aborted",
        K::NotConnected => "not connected",
        K::BrokenPipe => "broken pipe",
        K::TimedOut => "timed out",
        K::NotFound => "not found",
        K::PermissionDenied => "permission denied",
        K::AddrInUse => "address already in use",
        K::AddrNotAvailable => "address not available",
        K::AlreadyExists => "already exists",
        K::InvalidInput => "invalid argument",
        K::InvalidData => "invalid data",
        K::OutOfMemory => "out of memory",
        _ => "",
    };
    match (words, errno) {
        ("", Some(errno)) => format!("system error {errno}"),
        ("", None) => kind.to_string(),
        (words, _) => words.to_string(),
    }
}

fn describe_pem_error(err: &pem::Error) -> String {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        _ => "it is not valid PEM".into(),
    }
}

/// A TLS failure in words a user can act on; `host` is the name being
/// verified, on the proxy when `proxy` (whose CA flag differs).
pub(crate) fn describe_tls_error(
    err: &rustls::Error,
    host: &str,
    proxy: bool,
    client_cert_requested: bool,
) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(cert) => describe_cert_error(cert, host, proxy),
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
        // The variant's name: what a TLS expert needs, and nothing from the network.
        E::PeerIncompatible(p) => format!("the server has no TLS settings in common with us ({p:?})"),
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            let article = match name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                true => "an",
                false => "a",
            };
            format!("the server refused the connection with {article} {name} alert")
        }
        E::InvalidMessage(_) => {
            "the server did not answer with TLS; is this a TLS port? (it sent a message that is not TLS)"
                .into()
        }
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a TLS message out of turn".into()
        }
        E::PeerMisbehaved(_) => "the server broke the TLS protocol".into(),
        E::DecryptError => "a TLS record from the server could not be decrypted".into(),
        E::PeerSentOversizedRecord => "the server sent a TLS record over the size limit".into(),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::NoApplicationProtocol => "the server offered no application protocol we speak".into(),
        E::FailedToGetCurrentTime => "the system clock could not be read".into(),
        E::FailedToGetRandomBytes => "the system gave no random bytes".into(),
        _ => "the TLS library failed for a reason vers-tunnel does not name".into(),
    }
}

/// A TLS alert by its name in the RFCs (RFC 8446 §6, RFC 5246 §7.2), as
/// OpenSSL and Wireshark show it too: `handshake_failure`.
fn alert_name(alert: AlertDescription) -> Cow<'static, str> {
    use AlertDescription as A;
    Cow::Borrowed(match alert {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::DecryptionFailed => "decryption_failed",
        A::RecordOverflow => "record_overflow",
        A::DecompressionFailure => "decompression_failure",
        A::HandshakeFailure => "handshake_failure",
        A::NoCertificate => "no_certificate",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ExportRestriction => "export_restriction",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::InappropriateFallback => "inappropriate_fallback",
        A::UserCanceled => "user_canceled",
        A::NoRenegotiation => "no_renegotiation",
        A::MissingExtension => "missing_extension",
        A::UnsupportedExtension => "unsupported_extension",
        A::CertificateUnobtainable => "certificate_unobtainable",
        A::UnrecognisedName => "unrecognized_name",
        A::BadCertificateStatusResponse => "bad_certificate_status_response",
        A::BadCertificateHashValue => "bad_certificate_hash_value",
        A::UnknownPSKIdentity => "unknown_psk_identity",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        A::EncryptedClientHelloRequired => "encrypted_client_hello_required",
        // A code no RFC we know names: its number, never rustls's text.
        other => return Cow::Owned(format!("code {}", u8::from(other))),
    })
}

fn client_cert_message() -> String {
    "the server requires a client certificate, and vers-tunnel does not send one".into()
}

fn describe_cert_error(err: &CertificateError, host: &str, proxy: bool) -> String {
    use CertificateError as C;
    match err {
        C::UnknownIssuer => {
            let (who, flag) = match proxy {
                false => ("edge", "--cacert"),
                true => ("proxy", "--proxy-cacert"),
            };
            format!(
                "the certificate for {host} is not signed by a trusted authority (unknown issuer); \
                 if the {who} uses a private CA, pass it with {flag} FILE"
            )
        }
        C::Other(other) if other.0.downcast_ref::<NameMismatch>().is_some() => {
            let names = other
                .0
                .downcast_ref::<NameMismatch>()
                .map(ToString::to_string);
            format!(
                "the certificate is not valid for {host} (name mismatch): {}",
                names.unwrap_or_default()
            )
        }
        // webpki's own list of names is its Debug text, raw: never shown.
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("the certificate is not valid for {host} (name mismatch)")
        }
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
        C::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            format!("the server presented a CA certificate as its own certificate for {host}")
        }
        C::UnhandledCriticalExtension => format!(
            "the certificate for {host} was rejected (it has a critical extension webpki does not handle)"
        ),
        C::UnknownRevocationStatus => format!(
            "the certificate for {host} was rejected (its revocation status is unknown)"
        ),
        C::ApplicationVerificationFailure => {
            format!("the certificate for {host} was rejected (by our verifier)")
        }
        _ => format!("the certificate for {host} was rejected"),
    }
}

/// `2026-11-25 17:11:05 UTC` for a unix time.
pub(crate) fn utc(time: UnixTime) -> String {
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

    /// The codes `raw_os_error()` gives for these failures, by their POSIX
    /// names: errno on Unix; Winsock's, Win32's and getaddrinfo's on Windows.
    #[cfg(unix)]
    mod code {
        pub(super) use libc::{
            EADDRINUSE, EAI_NONAME, ECONNREFUSED, ECONNRESET, EEXIST, EHOSTUNREACH, EMFILE,
            ENETUNREACH, ENOENT, ETIMEDOUT,
        };
        /// A code the table has no words for, and whose kind has none either.
        pub(super) const UNNAMED: i32 = libc::ENOTBLK;
    }
    #[cfg(windows)]
    mod code {
        use windows_sys::Win32::Foundation as w;
        use windows_sys::Win32::Networking::WinSock as ws;
        pub(super) const ECONNREFUSED: i32 = ws::WSAECONNREFUSED;
        pub(super) const ECONNRESET: i32 = ws::WSAECONNRESET;
        pub(super) const ENETUNREACH: i32 = ws::WSAENETUNREACH;
        pub(super) const EHOSTUNREACH: i32 = ws::WSAEHOSTUNREACH;
        pub(super) const ETIMEDOUT: i32 = ws::WSAETIMEDOUT;
        pub(super) const EADDRINUSE: i32 = ws::WSAEADDRINUSE;
        pub(super) const EMFILE: i32 = ws::WSAEMFILE;
        pub(super) const ENOENT: i32 = w::ERROR_FILE_NOT_FOUND as i32;
        pub(super) const EEXIST: i32 = w::ERROR_ALREADY_EXISTS as i32;
        pub(super) const EAI_NONAME: i32 = ws::WSAHOST_NOT_FOUND;
        /// A code the table has no words for, and whose kind has none either.
        pub(super) const UNNAMED: i32 = w::ERROR_CRC as i32;
    }

    #[test]
    fn io_errors_read_as_plain_words() {
        let refused = io::Error::from_raw_os_error(code::ECONNREFUSED);
        assert_eq!(describe_io(&refused), "connection refused");
        let lookup = io::Error::new(
            io::ErrorKind::NotFound,
            crate::net::resolve::LookupError(code::EAI_NONAME),
        );
        assert_eq!(describe_io(&lookup), "name or service not known");
    }

    #[test]
    fn errnos_read_as_glibc_words_whatever_the_libc() {
        for (errno, words) in [
            (code::ECONNREFUSED, "connection refused"),
            (code::ECONNRESET, "connection reset by peer"),
            (code::ENETUNREACH, "network is unreachable"),
            (code::EHOSTUNREACH, "no route to host"),
            (code::ETIMEDOUT, "connection timed out"),
            (code::EADDRINUSE, "address already in use"),
            (code::EMFILE, "too many open files"),
            (code::ENOENT, "no such file or directory"),
        ] {
            let err = io::Error::from_raw_os_error(errno);
            assert_eq!(describe_io(&err), words, "errno {errno}");
        }
    }

    #[test]
    fn an_errno_without_words_reads_as_its_kind_never_as_os_error_n() {
        // EEXIST: no words in the table; its kind has some.
        let err = io::Error::from_raw_os_error(code::EEXIST);
        assert_eq!(describe_io(&err), "already exists");
        // An errno whose kind has no words either: its number, in our words.
        let err = io::Error::from_raw_os_error(code::UNNAMED);
        assert_eq!(describe_io(&err), format!("system error {}", code::UNNAMED));
    }

    #[test]
    fn errors_without_an_errno_read_as_their_kind_or_what_they_wrap() {
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(describe_io(&eof), "unexpected end of file");
        let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(
            describe_io(&tls),
            "a TLS record from the server could not be decrypted"
        );
    }

    fn edge() -> Hop {
        Hop::Edge {
            target: "x.vm.vers.sh:443".into(),
        }
    }

    fn proxy(cut_userinfo: bool) -> Hop {
        Hop::Proxy(Box::new(ProxyName {
            url: "http://alice:***@proxy.example:3128".into(),
            from: "ALL_PROXY",
            target: "x.vm.vers.sh:443".into(),
            cut_userinfo,
        }))
    }

    const ADDR: &str = "192.0.2.1:3128";

    fn refused(hop: Hop) -> Error {
        let addr = ADDR.parse().unwrap();
        Error::Connect {
            hop,
            attempts: vec![(addr, io::Error::from_raw_os_error(code::ECONNREFUSED))],
        }
    }

    #[test]
    fn the_same_failure_names_its_hop_with_the_same_status() {
        let e = refused(edge());
        assert_eq!(
            e.to_string(),
            "could not connect to x.vm.vers.sh:443: 192.0.2.1:3128: connection refused"
        );
        let p = refused(proxy(false));
        assert_eq!(
            p.to_string(),
            "could not connect to proxy http://alice:***@proxy.example:3128 (from ALL_PROXY): \
             192.0.2.1:3128: connection refused"
        );
        assert_eq!(e.exit_code(), exit::CONNECT);
        assert_eq!(p.exit_code(), exit::CONNECT);
    }

    #[test]
    fn a_proxy_url_cut_by_its_password_hides_the_port_and_says_why() {
        let msg = refused(proxy(true)).to_string();
        assert!(
            msg.contains("(from ALL_PROXY): 192.0.2.1: connection refused; the URL has an '@'"),
            "{msg}"
        );
        // Reached, the proxy's URL was right: no hint.
        let closed = Error::Proxy {
            proxy: match proxy(true) {
                Hop::Proxy(name) => name,
                Hop::Edge { .. } => unreachable!(),
            },
            problem: Box::new(ProxyProblem::Closed {
                partly_answered: false,
            }),
        };
        assert!(!closed.to_string().contains("'@'"), "{closed}");
    }

    #[test]
    fn each_hop_words_its_handshake_failures() {
        let addr = ShownAddr::new(ADDR.parse().unwrap(), false);
        let tls = |hop, host: &str| Error::Tls {
            hop,
            host: host.into(),
            addr,
            source: Box::new(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            client_cert_requested: false,
        };
        let e = tls(edge(), "x.vm.vers.sh").to_string();
        assert!(
            e.starts_with("TLS handshake with x.vm.vers.sh (192.0.2.1:3128) failed: ")
                && e.ends_with("pass it with --cacert FILE"),
            "{e}"
        );
        let p = tls(proxy(false), "proxy.example").to_string();
        assert!(
            p.starts_with("TLS handshake with proxy http://alice:***@proxy.example:3128 (from ALL_PROXY) at 192.0.2.1:3128 failed: ")
                && p.ends_with("pass it with --proxy-cacert FILE"),
            "{p}"
        );
        let closed = |hop| Error::HandshakeIo {
            hop,
            host: "h".into(),
            addr,
            source: io::ErrorKind::UnexpectedEof.into(),
        };
        assert!(closed(edge())
            .to_string()
            .ends_with("failed: the server closed the connection"));
        assert!(closed(proxy(false))
            .to_string()
            .ends_with("failed: the proxy closed the connection"));
        assert_eq!(closed(proxy(false)).exit_code(), exit::TLS);
    }

    #[test]
    fn timeouts_name_the_hop_and_what_was_under_way() {
        let after = Duration::from_millis(1500);
        let t = |hop, phase| Error::Timeout { hop, phase, after };
        assert_eq!(
            t(edge(), Phase::Resolve).to_string(),
            "timed out connecting to x.vm.vers.sh:443 after 1.5s, resolving the name (see --connect-timeout)"
        );
        assert_eq!(
            t(proxy(false), Phase::Answer).to_string(),
            "timed out connecting to proxy http://alice:***@proxy.example:3128 (from ALL_PROXY) \
             after 1.5s, waiting for its answer to CONNECT x.vm.vers.sh:443 (see --connect-timeout)"
        );
        assert_eq!(t(edge(), Phase::Handshake).exit_code(), exit::TLS);
        assert_eq!(t(proxy(false), Phase::Handshake).exit_code(), exit::TLS);
        assert_eq!(t(proxy(false), Phase::Answer).exit_code(), exit::CONNECT);
    }

    #[test]
    fn signals_map_to_128_plus_signal() {
        let e = Error::Interrupted {
            signal: libc::SIGTERM,
        };
        assert_eq!(e.exit_code(), 143);
        assert!(e.is_quiet());
    }

    #[test]
    fn no_service_names_the_port_the_causes_and_the_doctor() {
        let e = Error::NoService {
            host: "x.vm.vers.sh".into(),
            port: 443,
        };
        assert_eq!(e.exit_code(), exit::NO_SERVICE);
        let msg = e.to_string();
        for words in [
            "the edge closed the connection to x.vm.vers.sh:443 before the service sent anything",
            "nothing on the VM accepted the connection on port 443",
            "not running",
            "0.0.0.0 (IPv4 only) instead of ::",
            "`vers-tunnel doctor x.vm.vers.sh:443`",
        ] {
            assert!(msg.contains(words), "{words:?} not in {msg:?}");
        }
        assert!(describe_no_service(8080).contains("on port 8080;"));
    }

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

    fn mismatch(covers: Option<(Vec<Vec<u8>>, Vec<IpAddr>)>) -> String {
        let other = rustls::OtherError(std::sync::Arc::new(NameMismatch { covers }));
        describe_tls_error(
            &rustls::Error::InvalidCertificate(CertificateError::Other(other)),
            "x.vm.vers.sh",
            false,
            false,
        )
    }

    #[test]
    fn a_name_mismatch_lists_the_names_escaped() {
        let names = vec![
            b"evil\x1b[2J\x1b]0;owned\x07.example".to_vec(),
            b"x\nvers-tunnel: fake line\n".to_vec(),
            b"\xe2\x80\xaeevil\xff".to_vec(),
        ];
        let msg = mismatch(Some((names, vec![[10, 0, 0, 1].into()])));
        assert_eq!(
            msg,
            "the certificate is not valid for x.vm.vers.sh (name mismatch): it covers \
             evil\\u{1b}[2J\\u{1b}]0;owned\\u{7}.example, x\\nvers-tunnel: fake line\\n, \
             \\u{202e}evil\\xff, 10.0.0.1"
        );
        assert!(mismatch(Some((vec![], vec![]))).ends_with("(name mismatch): it covers no names"));
        assert!(
            mismatch(None).ends_with("(name mismatch): the certificate's names could not be read")
        );
    }

    #[test]
    fn alerts_are_named_as_the_rfcs_name_them_never_by_rustls_text() {
        let refused = |alert| {
            describe_tls_error(
                &rustls::Error::AlertReceived(alert),
                "x.vm.vers.sh",
                false,
                false,
            )
        };
        assert_eq!(
            refused(AlertDescription::HandshakeFailure),
            "the server refused the connection with a handshake_failure alert"
        );
        assert_eq!(
            refused(AlertDescription::UnrecognisedName),
            "the server refused the connection with an unrecognized_name alert"
        );
        assert_eq!(
            refused(AlertDescription::Unknown(200)),
            "the server refused the connection with a code 200 alert"
        );
    }

    #[test]
    fn cert_errors_name_the_host_and_the_cause() {
        let msg = describe_tls_error(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "x.vm.vers.sh",
            false,
            false,
        );
        assert!(
            msg.contains("x.vm.vers.sh") && msg.contains("unknown issuer"),
            "{msg}"
        );
    }
}
