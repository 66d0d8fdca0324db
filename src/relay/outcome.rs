//! How a session with the edge ended, classified once for every mode: the
//! tunnel, each `forward` connection and the doctor get the same outcome, so
//! the same exit status and the same words, for the same end.

use std::io;

use crate::error::{describe_io, Error, UncleanCause};
use crate::relay::Peer;

/// How the server's side of a session ended (or broke).
#[derive(Debug)]
pub(crate) enum End {
    /// TLS close_notify: the server finished its direction.
    CloseNotify,
    /// TCP EOF without close_notify before it.
    TcpEof,
    /// The socket failed (a reset, a timeout...).
    Io(io::Error),
    /// The server sent something rustls rejected.
    Tls(rustls::Error),
}

impl End {
    /// How the connection closed, as far as the user can tell.
    pub(crate) fn close(&self) -> Close {
        match self {
            End::CloseNotify => Close::Notify,
            End::TcpEof => Close::TcpEof,
            End::Io(e) => Close::Reset(describe_io(e)),
            End::Tls(_) => Close::Rejected,
        }
    }
}

/// How the server's side of a session closed: a fact of the session for
/// `-v` lines and the doctor's report, whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Close {
    /// With TLS close_notify.
    Notify,
    /// TCP EOF without close_notify.
    TcpEof,
    /// The socket failed: why, in words.
    Reset(String),
    /// A record rustls rejected.
    Rejected,
}

impl Close {
    /// How the edge closed the connection: "cleanly (TLS close_notify)".
    pub(crate) fn words(&self) -> String {
        match self {
            Close::Notify => "cleanly (TLS close_notify)".into(),
            Close::TcpEof => "without TLS close_notify".into(),
            Close::Reset(why) => format!("abruptly ({why})"),
            Close::Rejected => "with a TLS record that could not be accepted".into(),
        }
    }

    /// Its name in `--json`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Close::Notify => "close_notify",
            Close::TcpEof => "tcp_eof",
            Close::Reset(_) => "reset",
            Close::Rejected => "tls_error",
        }
    }
}

/// What the session knew when its server's side ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Facts {
    /// The handshake was still under way.
    pub(crate) handshaking: bool,
    /// The server asked for a client certificate (none is ever sent).
    pub(crate) client_cert_asked: bool,
    /// Plaintext bytes the server had sent (all of them passed on first).
    pub(crate) received: u64,
    /// Our direction was still open: the local end had not ended it.
    pub(crate) upstream_open: bool,
}

/// What an end means for the user.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server finished its direction cleanly.
    Clean,
    /// The TLS handshake failed (rustls's reason), or was refused at its last
    /// step: TLS 1.3 servers check our (missing) client certificate after our
    /// side of the handshake is done, so their refusal is the first thing after it.
    TlsFailed(rustls::Error),
    /// The socket failed or closed during the handshake (`UnexpectedEof` for a close).
    HandshakeIo(io::Error),
    /// The edge closed the session (close_notify, TCP EOF or a reset) before
    /// the service sent a byte while ours was still open: nothing on the VM
    /// accepted the connection.
    NoService,
    /// An established session ended without close_notify, was reset, or broke
    /// at the TLS layer.
    Unclean(UncleanCause),
}

/// The outcome of `end`, given what the session knew: a pure function, the
/// one place that decides it.
pub(crate) fn classify(end: End, facts: Facts) -> Outcome {
    let refused_our_last_flight = facts.client_cert_asked && facts.received == 0;
    match end {
        End::Tls(e) if facts.handshaking || refused_our_last_flight => Outcome::TlsFailed(e),
        End::Io(e) if facts.handshaking => Outcome::HandshakeIo(e),
        // rustls takes a close_notify during the handshake for an error, so
        // this is never one; both are a close.
        End::TcpEof | End::CloseNotify if facts.handshaking => {
            Outcome::HandshakeIo(io::ErrorKind::UnexpectedEof.into())
        }
        // A record rustls rejects is a broken session whenever it comes:
        // the service may well be there.
        End::Tls(e) => Outcome::Unclean(UncleanCause::Tls(e)),
        // A close before the service's first byte, while ours was open.
        _ if facts.received == 0 && facts.upstream_open => Outcome::NoService,
        End::CloseNotify => Outcome::Clean,
        End::TcpEof => Outcome::Unclean(UncleanCause::NoCloseNotify),
        End::Io(e) => Outcome::Unclean(UncleanCause::Io(e)),
    }
}

impl Outcome {
    /// The error a failed outcome is, naming `peer`; `None` for a clean end.
    pub(crate) fn into_error(self, peer: &Peer, facts: Facts) -> Option<Error> {
        let host = peer.host.clone();
        Some(match self {
            Outcome::Clean => return None,
            Outcome::TlsFailed(source) => Error::Tls {
                hop: peer.hop(),
                host,
                addr: peer.addr,
                source: Box::new(source),
                client_cert_requested: facts.client_cert_asked,
            },
            Outcome::HandshakeIo(source) => Error::HandshakeIo {
                hop: peer.hop(),
                host,
                addr: peer.addr,
                source,
            },
            Outcome::NoService => Error::NoService {
                host,
                port: peer.port,
            },
            Outcome::Unclean(cause) => Error::Unclean {
                host,
                received: facts.received,
                cause,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    fn facts() -> Facts {
        Facts {
            handshaking: false,
            client_cert_asked: false,
            received: 10,
            upstream_open: true,
        }
    }

    fn eof() -> End {
        End::TcpEof
    }

    fn reset() -> End {
        End::Io(io::Error::from_raw_os_error(libc::ECONNRESET))
    }

    fn bad_record() -> End {
        End::Tls(rustls::Error::DecryptError)
    }

    fn status(end: End, facts: Facts) -> Option<u8> {
        let peer = Peer::for_tests();
        classify(end, facts)
            .into_error(&peer, facts)
            .map(|e| e.exit_code())
    }

    #[test]
    fn after_data_only_close_notify_is_clean() {
        assert_eq!(status(End::CloseNotify, facts()), None);
        for end in [eof(), reset(), bad_record()] {
            assert_eq!(status(end, facts()), Some(exit::UNCLEAN));
        }
    }

    #[test]
    fn a_close_before_the_first_byte_with_our_side_open_is_no_service() {
        let silent = Facts {
            received: 0,
            ..facts()
        };
        for end in [End::CloseNotify, eof(), reset()] {
            assert_eq!(status(end, silent), Some(exit::NO_SERVICE));
        }
    }

    #[test]
    fn a_rejected_record_is_unclean_whenever_it_comes() {
        let silent = Facts {
            received: 0,
            ..facts()
        };
        assert_eq!(status(bad_record(), silent), Some(exit::UNCLEAN));
        assert_eq!(status(bad_record(), facts()), Some(exit::UNCLEAN));
    }

    #[test]
    fn once_our_side_has_ended_a_silent_server_is_not_no_service() {
        let done = Facts {
            received: 0,
            upstream_open: false,
            ..facts()
        };
        assert_eq!(status(End::CloseNotify, done), None);
        assert_eq!(status(eof(), done), Some(exit::UNCLEAN));
    }

    #[test]
    fn any_end_during_the_handshake_is_a_tls_failure() {
        let handshaking = Facts {
            handshaking: true,
            received: 0,
            ..facts()
        };
        for end in [End::CloseNotify, eof(), reset(), bad_record()] {
            assert_eq!(status(end, handshaking), Some(exit::TLS));
        }
    }

    #[test]
    fn a_refusal_right_after_a_client_certificate_request_is_a_tls_failure() {
        let asked = Facts {
            client_cert_asked: true,
            received: 0,
            ..facts()
        };
        let alert = End::Tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert_eq!(status(alert, asked), Some(exit::TLS));
        // Once the service has spoken, the same alert breaks a session.
        let spoke = Facts {
            received: 1,
            ..asked
        };
        assert_eq!(status(bad_record(), spoke), Some(exit::UNCLEAN));
        // A close is not a refusal.
        assert_eq!(status(eof(), asked), Some(exit::NO_SERVICE));
    }

    #[test]
    fn the_words_name_the_cause() {
        let peer = Peer::for_tests();
        let err = classify(bad_record(), facts())
            .into_error(&peer, facts())
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "connection to x.vm.vers.sh ended uncleanly after 10 bytes received: \
             a TLS record from the server could not be decrypted"
        );
        let handshaking = Facts {
            handshaking: true,
            ..facts()
        };
        let closed = classify(eof(), handshaking)
            .into_error(&peer, handshaking)
            .unwrap()
            .to_string();
        assert_eq!(
            closed,
            "TLS handshake with x.vm.vers.sh (192.0.2.1:443) failed: the server closed the connection"
        );
    }
}
