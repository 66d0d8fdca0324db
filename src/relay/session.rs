//! The pump itself: a session's two directions, moved whenever readiness
//! allows, until the session is over.

use std::io;
use std::time::Instant;

use mio::event::Event;
use mio::Registry;
use rustls::ClientConnection;

use super::buffer::Buffer;
use super::channel::{Channel, Intake, Negotiated, Plain};
use super::direction::{Direction, Down, Up};
use super::local::{Local, Side};
use super::outcome::{classify, Close, End, Facts};
use super::{Ending, Peer, Pump, Readiness, Source, Tokens, Wire};
use crate::error::{Error, Phase, Result};
use crate::net::poller::{Poller, Wakeup, Woken};
use crate::proxy::transport::Transport;

/// Rounds of work between two looks at events when data never stops coming.
const ROUNDS_PER_WAIT: usize = 64;

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
    up: Direction<Up, Buffer>,
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
            Ok(wakeup) => {
                wakeup.iter().for_each(|e| session.on_event(e));
                session.on_wakeup(&wakeup);
            }
            Err(e) => break Err(e),
        }
    };
    // What a thread-fed local end took reaches its reader before the
    // process exits, after a failure too; a stop signal does not wait.
    let result = match result {
        Err(e) if !e.is_quiet() => session.drain_local(poller).and(Err(e)),
        other => other,
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
            up: Direction::new(Up::Open, Buffer::new(many)),
            down: Direction::new(Down::Open, ()),
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

    /// Takes note of what the local end's threads woke the loop for.
    fn on_wakeup(&mut self, wakeup: &Wakeup<'_>) {
        if wakeup.woke(Woken::Stdin) {
            self.on_ready(Source::LocalIn, self.local.woken(Side::In));
        }
        if wakeup.woke(Woken::Stdout) {
            self.on_ready(Source::LocalOut, self.local.woken(Side::Out));
        }
    }

    /// Waits until what the local end took has reached its reader.
    fn drain_local(&self, poller: &mut Poller) -> Result<()> {
        while !self.local.drained() {
            poller.wait(None)?;
        }
        Ok(())
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

    /// Why the session is over, once it is and (unless its reader has gone)
    /// the local end has written all it took.
    fn ending(&self) -> Option<Ending> {
        self.ending_reached()
            .filter(|&ending| ending == Ending::ReaderGone || self.local.drained())
    }

    fn ending_reached(&self) -> Option<Ending> {
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
                    // Each record's plaintext goes out before the next is
                    // read: rustls reads no more while it holds some.
                    self.deliver(registry)?;
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

    /// Writes received plaintext to the local end straight from rustls's
    /// buffer; once the server's side has ended and everything before it is
    /// written, acts on that end.
    fn deliver(&mut self, registry: &Registry) -> Result<bool> {
        if self.channel.is_handshaking() {
            // No plaintext before the handshake, and an end now is a failed
            // handshake (reported by `receive`), not a truncated session.
            return Ok(false);
        }
        let mut progress = false;
        while self.ready.local_write && self.down.state != Down::Closed && self.gone.is_none() {
            let plain = match self.channel.plaintext() {
                Plain::Data(plain) => plain,
                Plain::Empty => break,
                Plain::End(end) => {
                    self.ended(end)?;
                    log::debug!("close_notify from the server; ending the local side");
                    self.local.shutdown_write(registry);
                    self.down.state = Down::Closed;
                    return Ok(true);
                }
            };
            match self.local.write(plain) {
                Ok(n) => {
                    self.channel.consume(n);
                    self.down.moved += n as u64;
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
        let negotiated = Negotiated::of(tls);
        let resumed = match tls.handshake_kind() {
            Some(rustls::HandshakeKind::Resumed) => ", resumed",
            _ => "",
        };
        log::info!(
            "{} established with {} ({}) using {}{resumed} in {:.1?}",
            negotiated.version,
            self.peer.host,
            self.peer.addr,
            negotiated.suite.unwrap_or("an unnamed cipher suite"),
            self.started.elapsed()
        );
    }

    /// What the session knows, for [`classify`].
    fn facts(&self) -> Facts {
        Facts {
            handshaking: self.channel.is_handshaking(),
            client_cert_asked: self.channel.client_cert_asked(),
            received: self.down.moved + self.channel.held() as u64,
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
