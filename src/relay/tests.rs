//! The pump's state machine in memory: a rustls server on a wire whose reads
//! and writes take what each turn allows (partial, or none at all), a local
//! end likewise, and events only where an edge-triggered poller owes them.

use std::io;
use std::time::{Duration, Instant};

use rustls::version::{TLS12, TLS13};

use super::memory::{client, configs, owed_events, Duplex, MemLocal, MemWire, Server};
use super::outcome::Close;
use super::*;
use crate::error::{exit, Error, Result, UncleanCause};

/// Sizes a read or a write may take in one call: none, a few bytes, more
/// than a record, more than a buffer.
const SIZES: [usize; 7] = [0, 1, 5, 300, 17_000, 70_000, usize::MAX];

/// Turns after which a test that has not got where it was going has hung.
const MAX_TURNS: usize = 100_000;

struct Harness {
    session: Session<MemLocal, MemWire>,
    server: Server,
    wire: Duplex,
    local: Duplex,
    /// What the local end received.
    received: Vec<u8>,
    poll: mio::Poll,
    seed: u64,
    /// Random limits at each turn; else everything moves at once.
    choppy: bool,
}

impl Harness {
    fn new(versions: &[&'static rustls::SupportedProtocolVersion], seed: u64) -> Harness {
        let (client_config, server_config) = configs(versions);
        let wire = Duplex::new();
        let local = Duplex::new();
        let tokens = Tokens {
            edge: Token(0),
            local_in: Token(1),
            local_out: Token(2),
        };
        let session = Session::new(
            Peer::for_tests(),
            MemWire(wire.clone()),
            client(&client_config),
            MemLocal(local.clone()),
            tokens,
            Instant::now() + Duration::from_secs(3600),
        );
        Harness {
            session,
            server: Server::new(&server_config),
            wire,
            local,
            received: Vec::new(),
            poll: mio::Poll::new().unwrap(),
            seed: seed | 1,
            choppy: true,
        }
    }

    fn next(&mut self, bound: usize) -> usize {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed % bound as u64) as usize
    }

    fn size(&mut self) -> usize {
        if self.choppy {
            SIZES[self.next(SIZES.len())]
        } else {
            usize::MAX
        }
    }

    /// One turn: new limits, the events owed, a pump, the server's answer.
    fn turn(&mut self) -> Result<Pump> {
        let sizes = [self.size(), self.size(), self.size(), self.size()];
        self.wire.up.borrow_mut().room = sizes[0];
        self.wire.down.borrow_mut().chunk = sizes[1].max(1);
        self.local.up.borrow_mut().chunk = sizes[2].max(1);
        self.local.down.borrow_mut().room = sizes[3];
        for (source, ready) in owed_events(&self.wire, &self.local) {
            self.session.on_ready(source, ready);
        }
        let pumped = self.session.pump(self.poll.registry());
        self.received
            .extend(self.local.down.borrow_mut().bytes.drain(..));
        if !self.server.conn.is_handshaking() || self.next(2) == 0 {
            self.server.serve(&self.wire);
        }
        pumped
    }

    /// Turns until `done` holds; the error or the end if the session stops first.
    fn until(&mut self, done: impl Fn(&Harness) -> bool) -> Result<Option<Ending>> {
        for _ in 0..MAX_TURNS {
            if done(self) {
                return Ok(None);
            }
            if let Pump::Over(ending) = self.turn()? {
                return Ok(Some(ending));
            }
        }
        panic!("stuck: the pump waits for an event no poller would give");
    }

    /// Turns until the session is over.
    fn finish(&mut self) -> Result<Ending> {
        loop {
            if let Some(ending) = self.until(|_| false)? {
                return Ok(ending);
            }
        }
    }

    fn handshake(&mut self) {
        let done = self.until(|h| !h.session.is_handshaking() && !h.server.conn.is_handshaking());
        assert!(matches!(done, Ok(None)), "{done:?}");
    }

    fn local_sends(&mut self, bytes: &[u8]) {
        self.local.up.borrow_mut().bytes.extend(bytes);
    }

    fn local_ends(&mut self) {
        self.local.up.borrow_mut().eof = true;
    }

    fn local_saw_eof(&self) -> bool {
        self.local.down.borrow().eof
    }

    /// The server's records so far reach the wire, then TCP EOF.
    fn server_tcp_eof(&mut self) {
        self.server.serve(&self.wire);
        self.wire.down.borrow_mut().eof = true;
    }

    fn server_close_notify(&mut self) {
        self.server.conn.send_close_notify();
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 7 + u64::from(seed)) as u8)
        .collect()
}

/// Full duplex through partial reads and writes and `WouldBlock` at every
/// step, then both half-closes: ours first (close_notify, and the server's
/// bytes still come), then the server's. Every byte arrives once, in order.
#[test]
fn both_ways_through_partial_io_then_our_half_close_then_the_servers() {
    for (versions, seed) in [(&[&TLS13][..], 1), (&[&TLS12][..], 2), (&[&TLS13][..], 3)] {
        let mut h = Harness::new(versions, seed);
        let up = data(1 << 20, 1);
        let down = data(1 << 20, 2);
        h.local_sends(&up);
        h.server.send(&down);
        let ended = h.until(|h| h.server.got.len() == up.len() && h.received.len() == down.len());
        assert!(matches!(ended, Ok(None)), "{ended:?}");
        assert!(h.server.got == up, "the server got other bytes");
        assert!(h.received == down, "the local end got other bytes");
        h.local_ends();
        assert!(matches!(h.until(|h| h.server.closed), Ok(None)));
        assert!(
            !h.local_saw_eof(),
            "our close_notify ended the other direction"
        );
        h.server.send(b"after your close");
        h.server_close_notify();
        assert_eq!(h.finish().unwrap(), Ending::BothClosed);
        assert!(h.received.ends_with(b"after your close"));
        assert!(h.local_saw_eof());
        assert_eq!(h.session.sent(), up.len() as u64);
        assert_eq!(h.session.received(), down.len() as u64 + 16);
    }
}

/// The server closes its direction first: the local reader sees EOF at
/// once, our direction still carries bytes, and our close ends the session.
#[test]
fn the_servers_half_close_first_keeps_our_direction_open() {
    let mut h = Harness::new(&[&TLS13], 4);
    h.handshake();
    h.server.send(b"banner");
    h.server_close_notify();
    assert!(matches!(h.until(|h| h.local_saw_eof()), Ok(None)));
    assert_eq!(h.received, b"banner");
    let up = data(300_000, 3);
    h.local_sends(&up);
    h.local_ends();
    assert_eq!(h.finish().unwrap(), Ending::BothClosed);
    h.server.serve(&h.wire);
    assert!(h.server.got == up && h.server.closed);
}

/// Our end before the handshake is done: close_notify waits for it, and the
/// server's answer still comes.
#[test]
fn local_eof_during_the_handshake_closes_after_it() {
    let mut h = Harness::new(&[&TLS13], 5);
    h.local_sends(b"request");
    h.local_ends();
    assert!(matches!(h.until(|h| h.server.closed), Ok(None)));
    assert_eq!(h.server.got, b"request");
    h.server.send(b"answer");
    h.server_close_notify();
    assert_eq!(h.finish().unwrap(), Ending::BothClosed);
    assert_eq!(h.received, b"answer");
}

#[test]
fn eof_during_the_handshake_is_a_tls_failure() {
    let mut h = Harness::new(&[&TLS13], 6);
    h.wire.down.borrow_mut().eof = true;
    let err = h.finish().unwrap_err();
    assert_eq!(err.exit_code(), exit::TLS);
    assert!(
        err.to_string()
            .ends_with("failed: the server closed the connection"),
        "{err}"
    );
}

/// Before the service's first byte, with our side open: close_notify or
/// TCP EOF alike mean nothing on the VM accepted the connection.
#[test]
fn an_end_before_the_first_byte_is_no_service() {
    for close_notify in [true, false] {
        let mut h = Harness::new(&[&TLS13], 7);
        h.handshake();
        if close_notify {
            h.server_close_notify();
        } else {
            h.server_tcp_eof();
        }
        let err = h.finish().unwrap_err();
        assert_eq!(err.exit_code(), exit::NO_SERVICE, "{err}");
    }
}

/// After data, TCP EOF without close_notify is an unclean end, reported
/// once every byte before it is written.
#[test]
fn tcp_eof_after_data_delivers_everything_then_is_unclean() {
    let mut h = Harness::new(&[&TLS13], 8);
    h.handshake();
    let down = data(200_000, 4);
    h.server.send(&down);
    h.server_tcp_eof();
    let err = h.finish().unwrap_err();
    assert!(h.received == down, "got {} bytes", h.received.len());
    assert!(
        matches!(
            err,
            Error::Unclean {
                received: 200_000,
                cause: UncleanCause::NoCloseNotify,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(h.session.server_close(), Some(&Close::TcpEof));
}

/// A reset after data: the bytes before it still reach the local end.
#[test]
fn a_reset_after_data_delivers_everything_then_is_unclean() {
    let mut h = Harness::new(&[&TLS13], 9);
    h.handshake();
    h.server.send(b"partial answer");
    h.server.serve(&h.wire);
    h.wire.down.borrow_mut().error = Some(io::ErrorKind::ConnectionReset);
    let err = h.finish().unwrap_err();
    assert_eq!(h.received, b"partial answer");
    assert_eq!(err.exit_code(), exit::UNCLEAN);
    assert!(
        err.to_string()
            .ends_with("after 14 bytes received: connection reset by peer"),
        "{err}"
    );
}

/// A record no key decrypts, in the same read as good ones: their
/// plaintext reaches the local end first, and the session ends as the
/// doctor says (unclean, 5), never as no service (6).
#[test]
fn plaintext_before_a_bad_record_is_delivered_then_the_session_is_unclean() {
    let mut h = Harness::new(&[&TLS13], 10);
    h.choppy = false;
    h.handshake();
    h.server.send(b"hello");
    h.server.serve(&h.wire);
    // An application-data record of 32 zero bytes.
    let mut bad = vec![0x17, 0x03, 0x03, 0, 32];
    bad.extend_from_slice(&[0; 32]);
    h.wire.down.borrow_mut().bytes.extend(&bad);
    let err = h.finish().unwrap_err();
    assert_eq!(h.received, b"hello");
    assert_eq!(err.exit_code(), exit::UNCLEAN, "{err}");
    assert_eq!(
        err.to_string(),
        "connection to x.vm.vers.sh ended uncleanly after 5 bytes received: \
         a TLS record from the server could not be decrypted"
    );
    h.server.serve(&h.wire);
    assert!(
        matches!(
            h.server.failed,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::BadRecordMac
            ))
        ),
        "the server was not told why: {:?}",
        h.server.failed
    );
}

/// close_notify, then TCP EOF or a reset: the server finished cleanly; the
/// session waits for our side, then ends cleanly.
#[test]
fn tcp_eof_after_close_notify_is_clean() {
    let mut h = Harness::new(&[&TLS13], 11);
    h.handshake();
    h.server.send(b"bye");
    h.server_close_notify();
    h.server_tcp_eof();
    assert!(matches!(h.until(|h| h.local_saw_eof()), Ok(None)));
    h.local_ends();
    assert_eq!(h.finish().unwrap(), Ending::BothClosed);
    assert_eq!(h.received, b"bye");
    assert_eq!(h.session.server_close(), Some(&Close::Notify));
}

/// The local reader goes away (EPIPE): the session ends quietly.
#[test]
fn the_local_reader_leaving_ends_the_session_quietly() {
    let mut h = Harness::new(&[&TLS13], 12);
    h.handshake();
    h.local.down.borrow_mut().error = Some(io::ErrorKind::BrokenPipe);
    h.server.send(b"nobody reads this");
    assert_eq!(h.finish().unwrap(), Ending::ReaderGone);
}

/// A hang-up on the local sink before the server has finished means the
/// reader is gone, even with nothing to write.
#[test]
fn a_hang_up_event_on_the_local_sink_ends_the_session() {
    let mut h = Harness::new(&[&TLS13], 13);
    h.handshake();
    let hang_up = Readiness {
        write_closed: true,
        ..Readiness::default()
    };
    h.session.on_ready(Source::LocalOut, hang_up);
    assert_eq!(h.finish().unwrap(), Ending::ReaderGone);
}

/// A local end that still holds bytes it took (Windows' stdout thread)
/// keeps a session that is over both ways from ending until they are out:
/// the process would exit with them.
#[test]
fn a_clean_end_waits_for_the_local_end_to_write_what_it_took() {
    let mut h = Harness::new(&[&TLS13], 14);
    h.handshake();
    h.local.down.borrow_mut().held = true;
    h.server.send(b"bye");
    h.server_close_notify();
    h.local_ends();
    let both_closed = h.until(|h| h.local_saw_eof() && h.session.upstream_closed());
    assert!(matches!(both_closed, Ok(None)), "{both_closed:?}");
    for _ in 0..100 {
        let turn = h.turn();
        assert!(matches!(turn, Ok(Pump::Idle)), "{turn:?} with bytes held");
    }
    h.local.down.borrow_mut().held = false;
    assert_eq!(h.finish().unwrap(), Ending::BothClosed);
    assert_eq!(h.received, b"bye");
}

/// What was negotiated reads in the names users know, for the `-v` line and
/// the doctor alike.
#[test]
fn the_negotiated_version_suite_and_group_have_their_iana_names() {
    for (versions, version) in [(&[&TLS13][..], "TLS 1.3"), (&[&TLS12][..], "TLS 1.2")] {
        let mut h = Harness::new(versions, 14);
        h.handshake();
        let negotiated = channel::Negotiated::of(h.session.tls());
        assert_eq!(negotiated.version, version);
        let suite = negotiated.suite.unwrap();
        assert!(
            suite.starts_with(if version == "TLS 1.3" {
                "TLS13_"
            } else {
                "TLS_ECDHE_"
            }),
            "{suite}"
        );
        assert_eq!(negotiated.group, Some("X25519"));
    }
}
