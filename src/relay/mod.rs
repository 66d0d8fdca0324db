//! The pump: one TLS session with the edge and its local end, moving bytes
//! whenever they can move and deciding when the session is over. The tunnel,
//! every `forward` connection and the doctor run it; the local end is any
//! [`Local`] (stdin/stdout, an accepted connection, the doctor's probe).
//!
//! - [`channel`]: rustls over the wire, one record at a time ([`records`]);
//!   TLS to an `https://` proxy runs on it too.
//! - [`direction`]: each direction's state, bytes in flight ([`buffer`]) and count.
//! - [`outcome`]: what the end of the server's side means, decided once.
//!
//! Readiness is tracked in flags that events set and `WouldBlock` clears, so
//! each source is registered once (edge-triggered) and never re-registered.
//! Events come in as [`Readiness`] for a [`Source`], so the pump runs as well
//! on a sequence of them as on a poller's.

pub(crate) mod buffer;
pub(crate) mod channel;
pub(crate) mod direction;
pub(crate) mod local;
pub(crate) mod outcome;
mod records;

#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Registry, Token};
use rustls::ClientConnection;

use crate::error::{Error, Hop, Phase, Result};
use crate::net::poller::Poller;
use crate::proxy::transport::Transport;
use crate::target::ShownAddr;
use channel::{Channel, Intake, Plain};
use direction::{Direction, Down, Up};
use local::{Local, Side};
use outcome::{classify, Close, End, Facts};

/// Rounds of work between two looks at events when data never stops coming.
const ROUNDS_PER_WAIT: usize = 64;

/// The far end of a session, described once for every message about it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The name the certificate is verified for, as messages show it.
    pub(crate) host: String,
    /// The port on the VM, as the user named it.
    pub(crate) port: u16,
    /// The address the TCP connection reached (the proxy's, through one).
    pub(crate) addr: ShownAddr,
    /// The connect timeout in force.
    pub(crate) connect_timeout: Duration,
}

impl Peer {
    /// `host:port` as the user named it.
    pub(crate) fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The edge, as messages name it.
    pub(crate) fn hop(&self) -> Hop {
        Hop::Edge {
            target: self.target(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Peer {
        Peer {
            host: "x.vm.vers.sh".into(),
            port: 443,
            addr: ShownAddr::new(([192, 0, 2, 1], 443).into(), false),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The byte stream the session's TLS runs over: [`Transport`] (TCP, or TLS
/// to a proxy), or a wire in memory in tests.
pub(crate) trait Wire: Read + Write {
    /// Whether a layer below (TLS to a proxy) holds records not yet out;
    /// `flush` sends them.
    fn wants_write(&self) -> bool;

    /// Ends the layer below, once the session is over both ways.
    fn close(&mut self);
}

impl Wire for Transport {
    fn wants_write(&self) -> bool {
        Transport::wants_write(self)
    }

    fn close(&mut self) {
        Transport::close(self);
    }
}

/// The tokens a session's sources are registered with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens {
    /// The TCP connection to the edge.
    pub(crate) edge: Token,
    /// The local source (stdin, or the accepted socket).
    pub(crate) local_in: Token,
    /// The local sink (stdout, or the accepted socket again).
    pub(crate) local_out: Token,
}

/// Which of a session's sources an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Edge,
    LocalIn,
    LocalOut,
}

/// What an event says of a source.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) read_closed: bool,
    pub(crate) write_closed: bool,
    pub(crate) error: bool,
}

impl From<&Event> for Readiness {
    fn from(event: &Event) -> Self {
        Readiness {
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            write_closed: event.is_write_closed(),
            error: event.is_error(),
        }
    }
}

/// What a call to [`Session::pump`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pump {
    /// Nothing more can move until an event comes.
    Idle,
    /// It stopped with work still possible, to let other events in.
    Busy,
    /// The session is over, cleanly.
    Over(Ending),
}

/// How a session ended cleanly (a failure is an [`Error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Both directions closed with close_notify.
    BothClosed,
    /// The process reading our stdout (or the local client) went away.
    ReaderGone,
    /// The server finished its direction, then closed or reset the connection.
    ServerClosed,
    /// The server finished, and a person at a terminal has no EOF to give.
    TerminalDone,
}

impl Ending {
    /// Why the session is over, in words for `-v`.
    pub(crate) fn words(self) -> &'static str {
        match self {
            Ending::BothClosed => "both directions closed cleanly",
            Ending::ReaderGone => "the local reader went away",
            Ending::ServerClosed => "the server finished its direction and closed the connection",
            Ending::TerminalDone => "the server finished and stdin is a terminal",
        }
    }
}

/// Which sources may have work for us; events set these, `WouldBlock` clears them.
#[derive(Debug, Clone, Copy)]
struct Ready {
    sock_read: bool,
    sock_write: bool,
    local_read: bool,
    local_write: bool,
}

/// One tunnel: the TLS session over its wire, and its local end.
#[derive(Debug)]
pub(crate) struct Session<L, W = Transport> {
    peer: Peer,
    wire: W,
    channel: Channel,
    local: L,
    tokens: Tokens,
    up: Direction<Up>,
    down: Direction<Down>,
    ready: Ready,
    gone: Option<Ending>,
    /// How the server's side closed, once it has.
    closed: Option<Close>,
    /// The connect phase's deadline, which the handshake must also meet.
    deadline: Instant,
    started: Instant,
}

/// Runs one session (the stdio tunnel) until both directions are finished,
/// the reader goes away, or a stop signal arrives.
pub(crate) fn run<L: Local>(poller: &mut Poller, mut session: Session<L>) -> Result<()> {
    let result = loop {
        let wait_until = match session.pump(poller.registry()) {
            Err(e) => break Err(e),
            Ok(Pump::Over(ending)) => {
                log::info!("session over: {}", ending.words());
                break Ok(());
            }
            Ok(Pump::Busy) => Some(Instant::now()),
            Ok(Pump::Idle) => session.wake_at(),
        };
        if let Err(e) = session.check_deadline(Instant::now()) {
            break Err(e);
        }
        match poller.wait(wait_until) {
            Ok(events) => events.iter().for_each(|e| session.on_event(e)),
            Err(e) => break Err(e),
        }
    };
    session.log_totals();
    result
}

impl<L: Local, W: Wire> Session<L, W> {
    /// A session over `wire` (connected to the edge, or through a proxy)
    /// with a fresh client connection, relaying for `local`; the handshake
    /// must finish by `deadline`. The caller has registered every source
    /// with its token in `tokens`, for reading and writing.
    pub(crate) fn new(
        peer: Peer,
        wire: W,
        conn: ClientConnection,
        local: L,
        tokens: Tokens,
        deadline: Instant,
    ) -> Self {
        let many = local.one_of_many();
        Session {
            peer,
            wire,
            channel: Channel::new(conn),
            local,
            tokens,
            up: Direction::new(Up::Open, many),
            down: Direction::new(Down::Open, many),
            ready: Ready {
                sock_read: true,
                sock_write: true,
                local_read: true,
                local_write: true,
            },
            gone: None,
            closed: None,
            deadline,
            started: Instant::now(),
        }
    }

    /// Takes note of a readiness event for one of this session's sources.
    pub(crate) fn on_event(&mut self, event: &Event) {
        let token = event.token();
        let ready = Readiness::from(event);
        if token == self.tokens.edge {
            self.on_ready(Source::Edge, ready);
        }
        if token == self.tokens.local_in {
            self.on_ready(Source::LocalIn, ready);
        }
        if token == self.tokens.local_out {
            self.on_ready(Source::LocalOut, ready);
        }
    }

    /// Takes note of what an event says of `source`.
    pub(crate) fn on_ready(&mut self, source: Source, ready: Readiness) {
        match source {
            Source::Edge => {
                self.ready.sock_read |= ready.readable || ready.read_closed;
                self.ready.sock_write |= ready.writable || ready.write_closed;
                if ready.error {
                    // Let the next read or write surface the error itself.
                    self.ready.sock_read = true;
                    self.ready.sock_write = true;
                }
                if self.down.state == Down::Closed && (ready.error || ready.write_closed) {
                    self.gone = Some(Ending::ServerClosed);
                }
            }
            Source::LocalIn => {
                self.ready.local_read |= ready.readable || ready.read_closed;
            }
            Source::LocalOut => {
                self.ready.local_write |= ready.writable || ready.write_closed;
                // A pipe's reader closing shows only as an error on our end:
                // without it, a silent server would keep us waiting for an
                // EPIPE that never comes (ssh killed). Once we have ended our
                // writing (the server finished), a hang-up only means the local
                // client has ended its side too: its last bytes are still to be
                // read (`local_read`, the same event for a socket).
                if (ready.error || ready.write_closed) && self.down.state != Down::Closed {
                    log::debug!("the local reader has gone away");
                    self.gone = Some(Ending::ReaderGone);
                }
            }
        }
    }

    /// When the session must be looked at though no event came: the
    /// handshake's deadline, while it lasts.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.channel.is_handshaking().then_some(self.deadline)
    }

    /// The timeout error, if the handshake is still going at `now` past the deadline.
    pub(crate) fn check_deadline(&self, now: Instant) -> Result<()> {
        if self.channel.is_handshaking() && now >= self.deadline {
            return Err(Error::Timeout {
                hop: self.peer.hop(),
                phase: Phase::Handshake,
                after: self.peer.connect_timeout,
            });
        }
        Ok(())
    }

    /// Logs what moved, at `-v`.
    pub(crate) fn log_totals(&self) {
        log::info!(
            "sent {} bytes, received {} bytes in {:.1?}",
            self.sent(),
            self.received(),
            self.started.elapsed()
        );
    }

    /// Bytes from the local end handed to TLS.
    pub(crate) fn sent(&self) -> u64 {
        self.up.moved
    }

    /// Bytes from the server written to the local end.
    pub(crate) fn received(&self) -> u64 {
        self.down.moved
    }

    /// Whether the TLS handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.channel.is_handshaking()
    }

    /// The TLS session, for what it negotiated and was shown.
    pub(crate) fn tls(&self) -> &ClientConnection {
        self.channel.conn()
    }

    /// How the server's side closed, once it has (whether that ended the
    /// session cleanly or not).
    pub(crate) fn server_close(&self) -> Option<&Close> {
        self.closed.as_ref()
    }

    /// Whether our direction is over: close_notify is out.
    pub(crate) fn upstream_closed(&self) -> bool {
        self.up.state == Up::Closed
    }

    /// The local end.
    pub(crate) fn local(&self) -> &L {
        &self.local
    }

    /// The local end, to change what it does next.
    pub(crate) fn local_mut(&mut self) -> &mut L {
        &mut self.local
    }

    /// The local end, for `forward` to reset after a failure.
    pub(crate) fn into_local(self) -> L {
        self.local
    }

    /// Ends the wire's lower layer (TLS to a proxy), when a session stops
    /// before [`Pump::Over`].
    pub(crate) fn close_wire(&mut self) {
        self.wire.close();
    }

    /// Why the session is over, once it is.
    fn ending(&self) -> Option<Ending> {
        let flushed = self.up.buf.is_empty() && !self.records_wait();
        match self.gone {
            Some(Ending::ReaderGone) => return Some(Ending::ReaderGone),
            Some(ending) if flushed => return Some(ending),
            _ => {}
        }
        if self.up.state == Up::Closed && self.down.state == Down::Closed {
            return Some(Ending::BothClosed);
        }
        // A person at a terminal has no EOF to give once the server is done.
        if self.down.state == Down::Closed && flushed && self.local.input_is_terminal() {
            return Some(Ending::TerminalDone);
        }
        None
    }

    /// Does all the work readiness allows.
    pub(crate) fn pump(&mut self, registry: &Registry) -> Result<Pump> {
        for _ in 0..ROUNDS_PER_WAIT {
            let mut progress = self.flush_tls()?;
            progress |= self.receive(registry)?;
            progress |= self.send()?;
            progress |= self.finish_upstream();
            if let Some(ending) = self.ending() {
                self.wire.close();
                return Ok(Pump::Over(ending));
            }
            if !progress {
                return Ok(Pump::Idle);
            }
        }
        Ok(Pump::Busy)
    }

    /// Writes queued TLS records (the edge's, and the wire's own to an
    /// `https://` proxy) to the socket.
    fn flush_tls(&mut self) -> Result<bool> {
        if !self.ready.sock_write || !self.records_wait() {
            return Ok(false);
        }
        match self.send_records() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready.sock_write = false,
            Err(e) => self.ended(End::Io(e))?,
        }
        Ok(true)
    }

    /// What the wire holds first, then the session's records, until both
    /// are out; `WouldBlock` once the socket is full.
    fn send_records(&mut self) -> io::Result<()> {
        self.wire.flush()?;
        self.channel.send(&mut self.wire)?;
        self.wire.flush()
    }

    /// Whether TLS records wait to be written, in either TLS layer.
    fn records_wait(&self) -> bool {
        self.channel.wants_write() || self.wire.wants_write()
    }

    /// Reads TLS records from the socket and passes the plaintext on.
    fn receive(&mut self, registry: &Registry) -> Result<bool> {
        let mut progress = self.deliver(registry)?;
        let was_handshaking = self.channel.is_handshaking();
        while self.ready.sock_read && self.down.state == Down::Open && self.channel.wants_read() {
            match self.channel.take(&mut self.wire) {
                Intake::Blocked => {
                    self.ready.sock_read = false;
                    break;
                }
                Intake::Partial => {}
                Intake::Processed => {
                    if was_handshaking && !self.channel.is_handshaking() {
                        self.log_established();
                    }
                    self.gather();
                }
                Intake::Eof => {
                    log::debug!("TCP EOF from the server");
                    self.down.state = Down::Draining;
                }
                Intake::Failed => self.down.state = Down::Draining,
            }
            progress = true;
        }
        if self.down.state == Down::Draining && self.channel.is_handshaking() {
            // No plaintext comes before the handshake's end: the end is now.
            let end = self.channel.take_failure().unwrap_or(End::TcpEof);
            self.ended(end)?;
        }
        progress |= self.deliver(registry)?;
        Ok(progress)
    }

    /// Takes the plaintext rustls holds while more ciphertext is ready, so
    /// the local end gets a few large writes instead of one per record.
    fn gather(&mut self) {
        let room = self.down.buf.room();
        if !room.is_empty() {
            let n = self.channel.take_plaintext(room);
            self.down.buf.filled(n);
        }
    }

    /// Writes received plaintext to the local end; once the server's side
    /// has ended and everything before it is written, acts on that end.
    fn deliver(&mut self, registry: &Registry) -> Result<bool> {
        if self.channel.is_handshaking() {
            // No plaintext before the handshake, and an end now is a failed
            // handshake (reported by `receive`), not a truncated session.
            return Ok(false);
        }
        let mut progress = false;
        while self.ready.local_write && self.down.state != Down::Closed && self.gone.is_none() {
            if self.down.buf.is_empty() {
                match self.channel.read(self.down.buf.room()) {
                    Plain::Data(n) => self.down.buf.filled(n),
                    Plain::Empty => {
                        self.down.buf.idle();
                        break;
                    }
                    Plain::End(end) => {
                        self.down.buf.idle();
                        self.ended(end)?;
                        log::debug!("close_notify from the server; ending the local side");
                        self.local.shutdown_write(registry);
                        self.down.state = Down::Closed;
                        return Ok(true);
                    }
                }
            }
            match self.local.write(self.down.buf.pending()) {
                Ok(n) => {
                    self.down.consume(n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.local_write = self.local.never_waits(Side::Out);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reader_gone(&e) => self.gone = Some(Ending::ReaderGone),
                Err(source) => return Err(self.local_error(Side::Out, source)),
            }
        }
        Ok(progress)
    }

    /// Reads the local end and hands it to rustls, which encrypts it into records.
    fn send(&mut self) -> Result<bool> {
        if self.channel.is_handshaking() || matches!(self.up.state, Up::Closing | Up::Closed) {
            return Ok(false);
        }
        let mut progress = false;
        loop {
            while !self.up.buf.is_empty() {
                match self.channel.write(self.up.buf.pending()) {
                    // rustls holds BUDGET unsent bytes: wait for the socket.
                    Ok(0) => return Ok(progress),
                    Ok(n) => {
                        self.up.consume(n);
                        progress = true;
                    }
                    Err(e) => {
                        self.ended(End::Io(e))?;
                        return Ok(progress);
                    }
                }
            }
            if self.up.state != Up::Open || !self.ready.local_read {
                return Ok(progress);
            }
            match self.local.read(self.up.buf.room()) {
                Ok(0) => {
                    log::debug!("EOF from the local end; closing our direction");
                    self.up.state = Up::Draining;
                    self.up.buf.idle();
                }
                Ok(n) => self.up.buf.filled(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.local_read = self.local.never_waits(Side::In);
                    self.up.buf.idle();
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(self.local_error(Side::In, source)),
            }
            progress = true;
        }
    }

    /// After local EOF: close_notify once everything read is queued, and keep
    /// receiving. close_notify alone ends our direction (TLS 1.3, RFC 8446
    /// §6.1); TCP stays open both ways until the session is over, because an
    /// HTTP CONNECT proxy may close both directions on a client's FIN (RFC
    /// 9110 §9.3.6; squid and tinyproxy do), and the edge sees the same bytes
    /// with or without a proxy in between.
    fn finish_upstream(&mut self) -> bool {
        match self.up.state {
            Up::Draining if self.up.buf.is_empty() && !self.channel.is_handshaking() => {
                self.channel.close();
                self.up.state = Up::Closing;
                true
            }
            Up::Closing if !self.records_wait() => {
                log::debug!("close_notify sent; our direction is closed");
                self.up.state = Up::Closed;
                true
            }
            _ => false,
        }
    }

    fn log_established(&self) {
        let tls = self.channel.conn();
        let version = tls
            .protocol_version()
            .map_or_else(|| "TLS".into(), |v| format!("{v:?}"));
        let suite = tls
            .negotiated_cipher_suite()
            .map_or_else(String::new, |s| format!("{:?}", s.suite()));
        let resumed = match tls.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => ", resumed",
            _ => "",
        };
        log::info!(
            "{version} established with {} ({}) using {suite}{resumed} in {:.1?}",
            self.peer.host,
            self.peer.addr,
            self.started.elapsed()
        );
    }

    /// What the session knows, for [`classify`].
    fn facts(&self) -> Facts {
        Facts {
            handshaking: self.channel.is_handshaking(),
            client_cert_asked: self.channel.client_cert_asked(),
            received: self.down.moved + self.down.buf.pending().len() as u64,
            upstream_open: self.up.state == Up::Open,
        }
    }

    /// Acts on the server's side ending with `end`: `Ok` when that is a
    /// clean end, else the error it is.
    fn ended(&mut self, end: End) -> Result<()> {
        if matches!(end, End::Tls(_)) {
            // Best effort: tell the server why (rustls queued an alert).
            let _ = self.send_records();
        }
        self.closed = Some(end.close());
        let facts = self.facts();
        match classify(end, facts).into_error(&self.peer, facts) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    fn local_error(&self, side: Side, source: io::Error) -> Error {
        Error::Stdio {
            which: self.local.name(side),
            source,
        }
    }
}

/// EPIPE on stdout, or a local client that reset or closed: the reader is
/// gone, which ends the session quietly.
fn is_reader_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}
