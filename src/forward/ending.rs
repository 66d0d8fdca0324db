//! How a forwarded connection ended, and the one line `-v` gives it: its
//! mapping, its client, how long it lasted, the bytes each way, and the
//! ending, so that a user can see what a long-running forwarder did.
//! Failures are said at the default level, as before; the rest at `-v`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::error::Error;

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum Ending<'a> {
    /// Both directions closed cleanly.
    Clean,
    /// The client reset or closed while the server still sent.
    ResetByClient,
    /// The client left before the connection to the edge was ready.
    LeftDuringSetup,
    /// The established session ended without close_notify, or broke.
    Unclean(&'a Error),
    /// The connection to the edge (or the proxy) could not be set up.
    SetupFailed(&'a Error),
    /// The local connection failed otherwise after setup.
    LocalFailed(&'a Error),
}

impl<'a> Ending<'a> {
    /// The ending of a connection that failed with `err`, `established`
    /// (the handshake done) or not.
    pub(crate) fn of_failure(err: &'a Error, established: bool) -> Ending<'a> {
        match err {
            Error::Stdio { source, .. } if is_reset(source) => Ending::ResetByClient,
            Error::Stdio { .. } if established => Ending::LocalFailed(err),
            Error::NoService { .. } => Ending::SetupFailed(err),
            _ if established => Ending::Unclean(err),
            _ => Ending::SetupFailed(err),
        }
    }

    /// Whether it is worth a line at the default level.
    fn is_failure(&self) -> bool {
        matches!(
            self,
            Ending::Unclean(_) | Ending::SetupFailed(_) | Ending::LocalFailed(_)
        )
    }
}

impl fmt::Display for Ending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Clean => "ended cleanly",
            Ending::ResetByClient => "was reset by the client",
            Ending::LeftDuringSetup => {
                "was abandoned by the client before the connection to the edge was ready"
            }
            Ending::Unclean(_) => "ended uncleanly",
            Ending::SetupFailed(_) => "failed during setup",
            Ending::LocalFailed(_) => "failed on the local side",
        })
    }
}

/// One finished connection, as its line says it.
#[derive(Debug)]
pub(crate) struct Finished<'a> {
    /// The mapping, `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`.
    pub(crate) mapping: &'a str,
    /// The local client.
    pub(crate) from: SocketAddr,
    /// From accepting it to its end.
    pub(crate) lasted: Duration,
    /// Plaintext bytes sent to the edge and received from it.
    pub(crate) totals: (u64, u64),
    pub(crate) ending: Ending<'a>,
}

/// `connection from 127.0.0.1:40112 on 5432:db.example:5432 ended cleanly
/// after 2.3s, 120 bytes sent, 4000 received`, and for a failure, `: ` and
/// why. Every part is ours or escaped by the error's own words.
impl fmt::Display for Finished<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sent, received) = self.totals;
        write!(
            f,
            "connection from {} on {} {} after {:.1?}, {sent} bytes sent, {received} received",
            self.from, self.mapping, self.ending, self.lasted
        )?;
        match &self.ending {
            Ending::Unclean(err) | Ending::SetupFailed(err) | Ending::LocalFailed(err) => {
                write!(f, ": {err}")
            }
            _ => Ok(()),
        }
    }
}

impl Finished<'_> {
    /// Logs the line: a failure as a warning, anything else at `-v`.
    pub(crate) fn log(&self) {
        if self.ending.is_failure() {
            log::warn!("{self}");
        } else {
            log::info!("{self}");
        }
    }
}

/// A reset (or a closed pipe) from the local client.
fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_mapping_client_duration_bytes_and_ending() {
        let line = Finished {
            mapping: "5432:db.sh:5432",
            from: "127.0.0.1:40112".parse().unwrap(),
            lasted: Duration::from_millis(2345),
            totals: (120, 4000),
            ending: Ending::Clean,
        };
        assert_eq!(
            line.to_string(),
            "connection from 127.0.0.1:40112 on 5432:db.sh:5432 ended cleanly after 2.3s, \
             120 bytes sent, 4000 received"
        );
        let err = Error::NoService {
            host: "db.sh".into(),
            port: 5432,
        };
        let failed = Finished {
            ending: Ending::of_failure(&err, true),
            ..line
        };
        let text = failed.to_string();
        assert!(text.contains(" failed during setup after "), "{text}");
        assert!(text.ends_with(&format!(": {err}")), "{text}");
    }

    #[test]
    fn a_client_reset_is_no_failure_and_an_established_session_breaking_is_unclean() {
        let reset = Error::Stdio {
            which: "the local connection",
            source: io::ErrorKind::ConnectionReset.into(),
        };
        assert!(matches!(
            Ending::of_failure(&reset, true),
            Ending::ResetByClient
        ));
        assert!(!Ending::of_failure(&reset, true).is_failure());
        let broke = Error::Unclean {
            host: "h".into(),
            received: 3,
            cause: crate::error::UncleanCause::NoCloseNotify,
        };
        assert!(matches!(
            Ending::of_failure(&broke, true),
            Ending::Unclean(_)
        ));
        let local = Error::Stdio {
            which: "the local connection",
            source: io::ErrorKind::TimedOut.into(),
        };
        assert!(matches!(
            Ending::of_failure(&local, true),
            Ending::LocalFailed(_)
        ));
        let refused = Error::Setup {
            what: "registering the socket",
            source: io::ErrorKind::Other.into(),
        };
        assert!(matches!(
            Ending::of_failure(&refused, false),
            Ending::SetupFailed(_)
        ));
    }
}
