//! Every way a tunnel can fail, the words a user sees for it, and its exit status.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::tls::describe_tls_error;

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
    /// The name did not resolve, or no TCP connection could be made in time.
    pub const CONNECT: u8 = 3;
    /// The TLS handshake failed: untrusted or invalid certificate, no common
    /// protocol, a server that does not speak TLS, or no answer in time.
    pub const TLS: u8 = 4;
    /// An established session ended without TLS close_notify (truncation
    /// cannot be ruled out), was reset, or broke at the TLS layer.
    pub const UNCLEAN: u8 = 5;
    /// Added to the signal number when SIGHUP, SIGINT or SIGTERM ends the tunnel.
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
        /// What is wrong with it, in words.
        reason: String,
    },
    /// The host name could not be resolved.
    Resolve {
        /// The name looked up.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// The name resolved, but to no address of the requested family.
    NoAddress {
        /// The name looked up.
        host: String,
        /// "IPv4 " or "IPv6 " (with `-4`/`-6`), or "" for any family.
        family: &'static str,
    },
    /// Every address refused or failed.
    Connect {
        /// Host and port as the user named them.
        target: String,
        /// Each address tried, with its failure.
        attempts: Vec<(SocketAddr, io::Error)>,
    },
    /// The connect phase (resolve, TCP, TLS handshake) ran out of time.
    Timeout {
        /// Host and port as the user named them.
        target: String,
        /// The phase that was under way.
        phase: Phase,
        /// The connect timeout in force.
        after: Duration,
    },
    /// The TLS handshake failed.
    Tls {
        /// The name the certificate was checked against.
        host: String,
        /// The address the handshake ran over.
        addr: SocketAddr,
        /// The TLS error.
        source: rustls::Error,
        /// Whether the server asked for a client certificate.
        client_cert_requested: bool,
    },
    /// The socket failed, or the server closed it, during the TLS handshake.
    HandshakeIo {
        /// The name the certificate was checked against.
        host: String,
        /// The address the handshake ran over.
        addr: SocketAddr,
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
    /// Reading stdin or writing stdout failed.
    Stdio {
        /// "stdin" or "stdout".
        which: &'static str,
        /// What failed.
        source: io::Error,
    },
    /// The tunnel could not set up its event loop or signal handling.
    Setup {
        /// The operation that failed.
        what: &'static str,
        /// What failed.
        source: io::Error,
    },
    /// SIGHUP, SIGINT or SIGTERM arrived: a request to stop, not a failure.
    Interrupted {
        /// The signal number.
        signal: i32,
    },
}

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
            Error::CaFileRead { .. } | Error::CaFileInvalid { .. } => exit::USAGE,
            Error::Resolve { .. } | Error::NoAddress { .. } | Error::Connect { .. } => {
                exit::CONNECT
            }
            Error::Timeout { phase, .. } => match phase {
                Phase::Resolve | Phase::Connect => exit::CONNECT,
                Phase::Handshake => exit::TLS,
            },
            Error::Tls { .. } | Error::HandshakeIo { .. } => exit::TLS,
            Error::Unclean { .. } => exit::UNCLEAN,
            Error::Stdio { .. } | Error::Setup { .. } => exit::LOCAL,
            Error::Interrupted { signal } => {
                exit::SIGNAL_BASE.saturating_add(u8::try_from(*signal).unwrap_or(0))
            }
        }
    }

    /// Whether this ending deserves no message at the default log level.
    pub fn is_quiet(&self) -> bool {
        matches!(self, Error::Interrupted { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CaFileRead { path, source } => write!(
                f,
                "cannot read CA file {}: {}",
                path.display(),
                describe_io(source)
            ),
            Error::CaFileInvalid { path, reason } => {
                write!(f, "CA file {} is unusable: {reason}", path.display())
            }
            Error::Resolve { host, source } => {
                write!(f, "could not resolve {host}: {}", describe_io(source))
            }
            Error::NoAddress { host, family } => {
                write!(f, "{host} has no {family}address")
            }
            Error::Connect { target, attempts } => {
                write!(f, "could not connect to {target}: ")?;
                for (i, (addr, err)) in attempts.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "; " };
                    write!(f, "{sep}{addr}: {}", describe_io(err))?;
                }
                Ok(())
            }
            Error::Timeout {
                target,
                phase,
                after,
            } => {
                let during = match phase {
                    Phase::Resolve => "resolving the name",
                    Phase::Connect => "waiting for a TCP connection",
                    Phase::Handshake => "waiting for the TLS handshake",
                };
                write!(
                    f,
                    "timed out connecting to {target} after {}s, {during} (see --connect-timeout)",
                    after.as_secs_f64()
                )
            }
            Error::Tls {
                host,
                addr,
                source,
                client_cert_requested,
            } => write!(
                f,
                "TLS handshake with {host} ({addr}) failed: {}",
                describe_tls_error(source, host, *client_cert_requested)
            ),
            Error::HandshakeIo { host, addr, source } => {
                if source.kind() == io::ErrorKind::UnexpectedEof {
                    write!(
                        f,
                        "TLS handshake with {host} ({addr}) failed: the server closed the connection"
                    )
                } else {
                    write!(
                        f,
                        "TLS handshake with {host} ({addr}) failed: {}",
                        describe_io(source)
                    )
                }
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
                    UncleanCause::Tls(e) => write!(f, "{}", describe_tls_error(e, host, false)),
                }
            }
            Error::Stdio { which, source } => write!(f, "{which}: {}", describe_io(source)),
            Error::Setup { what, source } => write!(f, "{what}: {}", describe_io(source)),
            Error::Interrupted { signal } => write!(f, "stopped by signal {signal}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::CaFileRead { source, .. }
            | Error::Resolve { source, .. }
            | Error::HandshakeIo { source, .. }
            | Error::Stdio { source, .. }
            | Error::Setup { source, .. } => Some(source),
            Error::Tls { source, .. } => Some(source),
            Error::Unclean {
                cause: UncleanCause::Io(e),
                ..
            } => Some(e),
            Error::Unclean {
                cause: UncleanCause::Tls(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// An I/O error in plain lowercase words, without the "(os error N)" suffix.
pub fn describe_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let text = text
        .strip_prefix("failed to lookup address information: ")
        .unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_plain_words() {
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe_io(&refused), "connection refused");
        let lookup =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(describe_io(&lookup), "name or service not known");
    }

    #[test]
    fn signals_map_to_128_plus_signal() {
        let e = Error::Interrupted {
            signal: libc::SIGTERM,
        };
        assert_eq!(e.exit_code(), 143);
        assert!(e.is_quiet());
    }
}
