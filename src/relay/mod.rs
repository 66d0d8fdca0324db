//! The pump: one session's TLS connection to the edge and its local end
//! (stdin/stdout, or a connection accepted by `forward`), moving bytes whenever
//! they can move and deciding when the session is over.
//!
//! Readiness is tracked in flags that events set and `WouldBlock` clears, so
//! each source is registered once (edge-triggered) and never re-registered.
//! The stdio tunnel runs one [`Session`] with [`run`]; `forward` runs many on
//! its own loop, through the same [`Session::on_event`] and [`Session::pump`].

pub(crate) mod buffer;
mod records;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Registry, Token};
use rustls::ClientConnection;

use crate::error::{Error, Hop, Phase, Result, UncleanCause};
use crate::net::poller::Poller;
use crate::net::stdio::StdFd;
use crate::proxy::transport::Transport;
use crate::relay::buffer::Buffer;
use crate::relay::records::Records;
use crate::target::ShownAddr;
use crate::tls::ClientCertProbe;

/// The most rustls may hold unsent: with the direction buffers' own bound
/// ([`buffer::BUDGET`](crate::relay::buffer::BUDGET)) and the kernel's socket buffers
/// this bounds memory per direction, so a slow reader on one side stops reads
/// on the other instead of growing buffers.
pub use crate::relay::buffer::BUDGET;

/// Rounds of work between two looks at events when data never stops coming.
const ROUNDS_PER_WAIT: usize = 64;

/// The far end of a session, described once for every message about it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The name the certificate is verified for, as messages show it.
    pub host: String,
    /// The port on the VM, as the user named it.
    pub port: u16,
    /// The address the TCP connection reached (the proxy's, through one).
    pub addr: ShownAddr,
    /// The connect timeout in force.
    pub connect_timeout: Duration,
}

impl Peer {
    /// `host:port` as the user named it.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The edge, as messages name it.
    pub fn hop(&self) -> Hop {
        Hop::Edge {
            target: self.target(),
        }
    }
}

/// The local side of a session.
#[derive(Debug)]
pub enum Local {
    /// stdin and stdout: the ProxyCommand.
    Stdio {
        /// Read and sent to the server.
        stdin: StdFd,
        /// Where the server's bytes go.
        stdout: StdFd,
    },
    /// A connection accepted by `forward`, registered by the session.
    Socket(TcpStream),
}

/// The tokens a session's sources are registered with.
#[derive(Debug, Clone, Copy)]
pub struct Tokens {
    /// The TCP connection to the edge.
    pub edge: Token,
    /// The local source (stdin, or the accepted socket).
    pub local_in: Token,
    /// The local sink (stdout, or the accepted socket again).
    pub local_out: Token,
}

/// What a call to [`Session::pump`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pump {
    /// Nothing more can move until an event comes.
    Idle,
    /// It stopped with work still possible, to let other events in.
    Busy,
    /// The session is over, cleanly, for this reason.
    Over(&'static str),
}

/// Where one direction of the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Its source may still send.
    Open,
    /// Its source has ended (local EOF; TCP EOF from the server); what was
    /// read is still being passed on.
    Draining,
    /// Upstream only: all passed on and close_notify queued; flushing it.
    Closing,
    /// Passed on, and ended at the far side too (close_notify sent, with
    /// no TCP FIN: see [`Session::finish_upstream`]; or the local reader has
    /// seen EOF).
    Closed,
}

/// Which sources may have work for us; events set these, `WouldBlock` clears them.
#[derive(Debug, Clone, Copy)]
struct Ready {
    sock_read: bool,
    sock_write: bool,
    local_read: bool,
    local_write: bool,
}

/// How a session ended without a clean close of both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    /// The process reading our stdout (or the local client) went away.
    Reader,
    /// The server reset or closed the connection after finishing its direction.
    Peer,
}

/// One tunnel: the TLS session over its socket, and its local end.
#[derive(Debug)]
pub struct Session {
    peer: Peer,
    sock: Transport,
    tls: ClientConnection,
    probe: ClientCertProbe,
    local: Local,
    tokens: Tokens,
    /// Local end -> server.
    up: Flow,
    /// Read from the local end, not yet taken by rustls.
    up_buf: Buffer,
    /// Server -> local end.
    down: Flow,
    /// Plaintext from rustls, not yet written to the local end.
    down_buf: Buffer,
    /// The TLS record framing of what the socket has given rustls.
    records: Records,
    ready: Ready,
    gone: Option<Gone>,
    /// The connect phase's deadline, which the handshake must also meet.
    deadline: Instant,
    sent: u64,
    received: u64,
    started: Instant,
}

/// Runs one session (the stdio tunnel) until both directions are finished,
/// the reader goes away, or a stop signal arrives.
pub fn run(poller: &mut Poller, mut session: Session) -> Result<()> {
    let result = loop {
        let wait_until = match session.pump(poller.registry()) {
            Err(e) => break Err(e),
            Ok(Pump::Over(why)) => {
                log::info!("session over: {why}");
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

impl Session {
    /// A session over `sock` (connected to the edge, or through a proxy) with a fresh client connection,
    /// relaying for `local`; the handshake must finish by `deadline`. The
    /// caller has registered every source with its token in `tokens`, for
    /// reading and writing (stdin and stdout, each in its one direction).
    pub fn new(
        peer: Peer,
        sock: Transport,
        mut tls: ClientConnection,
        local: Local,
        tokens: Tokens,
        deadline: Instant,
    ) -> Session {
        let many = matches!(local, Local::Socket(_));
        tls.set_buffer_limit(Some(BUDGET));
        Session {
            peer,
            sock,
            tls,
            probe: ClientCertProbe::default(),
            local,
            tokens,
            up: Flow::Open,
            up_buf: Buffer::new(many),
            down: Flow::Open,
            down_buf: Buffer::new(many),
            records: Records::default(),
            ready: Ready {
                sock_read: true,
                sock_write: true,
                local_read: true,
                local_write: true,
            },
            gone: None,
            deadline,
            sent: 0,
            received: 0,
            started: Instant::now(),
        }
    }

    /// Takes note of a readiness event for one of this session's sources.
    pub fn on_event(&mut self, event: &Event) {
        let token = event.token();
        if token == self.tokens.edge {
            self.ready.sock_read |= event.is_readable() || event.is_read_closed();
            self.ready.sock_write |= event.is_writable() || event.is_write_closed();
            if event.is_error() {
                // Let the next read or write surface the error itself.
                self.ready.sock_read = true;
                self.ready.sock_write = true;
            }
            if self.down == Flow::Closed && (event.is_error() || event.is_write_closed()) {
                self.gone = Some(Gone::Peer);
            }
        }
        if token == self.tokens.local_in {
            self.ready.local_read |= event.is_readable() || event.is_read_closed();
        }
        if token == self.tokens.local_out {
            self.ready.local_write |= event.is_writable() || event.is_write_closed();
            // A pipe's reader closing shows only as an error on our end:
            // without it, a silent server would keep us waiting for an
            // EPIPE that never comes (ssh killed). Once we have ended our
            // writing (the server finished), a hang-up only means the local
            // client has ended its side too: its last bytes are still to be
            // read (`local_read`, the same event for a socket).
            if (event.is_error() || event.is_write_closed()) && self.down != Flow::Closed {
                log::debug!("the local reader has gone away");
                self.gone = Some(Gone::Reader);
            }
        }
    }

    /// When the session must be looked at though no event came: the
    /// handshake's deadline, while it lasts.
    pub fn wake_at(&self) -> Option<Instant> {
        self.tls.is_handshaking().then_some(self.deadline)
    }

    /// The timeout error, if the handshake is still going at `now` past the deadline.
    pub fn check_deadline(&self, now: Instant) -> Result<()> {
        if self.tls.is_handshaking() && now >= self.deadline {
            return Err(Error::Timeout {
                hop: self.peer.hop(),
                phase: Phase::Handshake,
                after: self.peer.connect_timeout,
            });
        }
        Ok(())
    }

    /// Logs what moved, at `-v`.
    pub fn log_totals(&self) {
        log::info!(
            "sent {} bytes, received {} bytes in {:.1?}",
            self.sent,
            self.received,
            self.started.elapsed()
        );
    }

    /// Plaintext bytes moved so far: sent to the server, received from it
    /// (and written to the local end).
    pub fn totals(&self) -> (u64, u64) {
        (self.sent, self.received)
    }

    /// Whether the session ended because the local reader went away (a
    /// `forward` client that reset or closed while the server still sent).
    pub fn reader_went_away(&self) -> bool {
        self.gone == Some(Gone::Reader)
    }

    /// Whether the TLS handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// The accepted local connection, when the local end is one.
    pub fn local_socket(&self) -> Option<&TcpStream> {
        match &self.local {
            Local::Socket(s) => Some(s),
            Local::Stdio { .. } => None,
        }
    }

    /// The accepted local connection, for `forward` to reset after a failure.
    pub fn into_local(self) -> Local {
        self.local
    }

    /// Why the session is over, once it is.
    fn ending(&self) -> Option<&'static str> {
        let flushed = self.up_buf.is_empty() && !self.records_wait();
        match self.gone {
            Some(Gone::Reader) => return Some("the local reader went away"),
            Some(Gone::Peer) if flushed => {
                return Some("the server finished its direction and closed the connection")
            }
            _ => {}
        }
        if self.up == Flow::Closed && self.down == Flow::Closed {
            return Some("both directions closed cleanly");
        }
        // A person at a terminal has no EOF to give once the server is done.
        if self.down == Flow::Closed && flushed && self.stdin_is_terminal() {
            return Some("the server finished and stdin is a terminal");
        }
        None
    }

    fn stdin_is_terminal(&self) -> bool {
        matches!(&self.local, Local::Stdio { stdin, .. } if stdin.is_terminal())
    }

    /// Does all the work readiness allows.
    pub fn pump(&mut self, registry: &Registry) -> Result<Pump> {
        for _ in 0..ROUNDS_PER_WAIT {
            let mut progress = self.flush_tls()?;
            progress |= self.receive(registry)?;
            progress |= self.send()?;
            progress |= self.finish_upstream();
            if let Some(why) = self.ending() {
                self.sock.close();
                return Ok(Pump::Over(why));
            }
            if !progress {
                return Ok(Pump::Idle);
            }
        }
        Ok(Pump::Busy)
    }

    /// Writes queued TLS records (the edge's, and the transport's own to an
    /// `https://` proxy) to the socket.
    fn flush_tls(&mut self) -> Result<bool> {
        if !self.ready.sock_write || !self.records_wait() {
            return Ok(false);
        }
        match self.sock.send_records(&mut self.tls) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready.sock_write = false,
            Err(e) => return Err(self.socket_error(e)),
        }
        Ok(true)
    }

    /// Whether TLS records wait to be written, in either TLS layer.
    fn records_wait(&self) -> bool {
        self.tls.wants_write() || self.sock.wants_write()
    }

    /// Reads TLS records from the socket and passes the plaintext on.
    fn receive(&mut self, registry: &Registry) -> Result<bool> {
        let mut progress = self.deliver(registry)?;
        while self.ready.sock_read && self.down == Flow::Open && self.tls.wants_read() {
            let read = self.tls.read_tls(&mut self.records.on(&mut self.sock));
            match read {
                Ok(0) => {
                    log::debug!("TCP EOF from the server");
                    self.down = Flow::Draining;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.sock_read = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.socket_error(e)),
            }
            progress = true;
            if !self.records.take_boundary() {
                // Part of a record: nothing for rustls to do with it yet.
                continue;
            }
            self.process()?;
        }
        progress |= self.deliver(registry)?;
        if self.down == Flow::Draining && self.tls.is_handshaking() {
            return Err(self.socket_error(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(progress)
    }

    /// Lets rustls process what it has been given, and takes the plaintext.
    fn process(&mut self) -> Result<()> {
        let was_handshaking = self.tls.is_handshaking();
        if let Err(e) = self.probe.process(&mut self.tls) {
            return Err(self.tls_error(e));
        }
        if was_handshaking && !self.tls.is_handshaking() {
            self.log_established();
        }
        // Gather records while more ciphertext is ready, so the local end
        // gets a few large writes instead of one per record.
        self.gather_plaintext();
        Ok(())
    }

    /// Moves plaintext from rustls into `down_buf`, as much as fits.
    fn gather_plaintext(&mut self) {
        let room = self.down_buf.room();
        if !room.is_empty() {
            // Ok(0) (close_notify) and errors are left for `deliver`, which
            // asks again once `down_buf` is written out.
            if let Ok(n) = self.tls.reader().read(room) {
                self.down_buf.filled(n);
            }
        }
    }

    /// Writes received plaintext to the local end; on the server's
    /// close_notify, once everything before it is written, ends the local
    /// side so its reader sees EOF.
    fn deliver(&mut self, registry: &Registry) -> Result<bool> {
        if self.tls.is_handshaking() {
            // No plaintext before the handshake, and an EOF now is a failed
            // handshake (reported by `receive`), not a truncated session.
            return Ok(false);
        }
        let mut progress = false;
        while self.ready.local_write && self.down != Flow::Closed && self.gone.is_none() {
            if self.down_buf.is_empty() {
                match self.tls.reader().read(self.down_buf.room()) {
                    Ok(0) => {
                        if let Some(no_service) = self.no_service() {
                            return Err(no_service);
                        }
                        log::debug!("close_notify from the server; ending the local side");
                        self.end_local_write(registry);
                        self.down = Flow::Closed;
                        return Ok(true);
                    }
                    Ok(n) => self.down_buf.filled(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.down_buf.idle();
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(self.unclean(UncleanCause::NoCloseNotify));
                    }
                    Err(e) => return Err(self.unclean(UncleanCause::Io(e))),
                }
            }
            let pending = self.down_buf.pending();
            let written = match &mut self.local {
                Local::Stdio { stdout, .. } => stdout.write(pending),
                Local::Socket(s) => s.write(pending),
            };
            match written {
                Ok(n) => {
                    self.down_buf.consume(n);
                    self.received += n as u64;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.local_write = self.local_write_always_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reader_gone(&e) => self.gone = Some(Gone::Reader),
                Err(source) => return Err(self.local_error(LocalSide::Out, source)),
            }
        }
        Ok(progress)
    }

    /// Reads the local end and hands it to rustls, which encrypts it into records.
    fn send(&mut self) -> Result<bool> {
        if self.tls.is_handshaking() || matches!(self.up, Flow::Closing | Flow::Closed) {
            return Ok(false);
        }
        let mut progress = false;
        loop {
            while !self.up_buf.is_empty() {
                match self.tls.writer().write(self.up_buf.pending()) {
                    // rustls holds BUDGET unsent bytes: wait for the socket.
                    Ok(0) => return Ok(progress),
                    Ok(n) => {
                        self.up_buf.consume(n);
                        self.sent += n as u64;
                        progress = true;
                    }
                    Err(e) => return Err(self.socket_error(e)),
                }
            }
            if self.up != Flow::Open || !self.ready.local_read {
                return Ok(progress);
            }
            let room = self.up_buf.room();
            let read = match &mut self.local {
                Local::Stdio { stdin, .. } => stdin.read(room),
                Local::Socket(s) => s.read(room),
            };
            match read {
                Ok(0) => {
                    log::debug!("EOF from the local end; closing our direction");
                    self.up = Flow::Draining;
                    self.up_buf.idle();
                }
                Ok(n) => self.up_buf.filled(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.local_read = self.local_read_always_ready();
                    self.up_buf.idle();
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(self.local_error(LocalSide::In, source)),
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
        match self.up {
            Flow::Draining if self.up_buf.is_empty() && !self.tls.is_handshaking() => {
                self.tls.send_close_notify();
                self.up = Flow::Closing;
                true
            }
            Flow::Closing if !self.records_wait() => {
                log::debug!("close_notify sent; our direction is closed");
                self.up = Flow::Closed;
                true
            }
            _ => false,
        }
    }

    /// The server's direction is done: the local reader must see EOF.
    fn end_local_write(&mut self, registry: &Registry) {
        match &mut self.local {
            Local::Stdio { stdout, .. } => stdout.close(registry),
            Local::Socket(s) => {
                if let Err(e) = s.shutdown(Shutdown::Write) {
                    log::debug!("shutting down the local connection's write side: {e}");
                }
            }
        }
    }

    fn local_read_always_ready(&self) -> bool {
        matches!(&self.local, Local::Stdio { stdin, .. } if stdin.always_ready())
    }

    fn local_write_always_ready(&self) -> bool {
        matches!(&self.local, Local::Stdio { stdout, .. } if stdout.always_ready())
    }

    fn log_established(&self) {
        let version = self
            .tls
            .protocol_version()
            .map_or_else(|| "TLS".into(), |v| format!("{v:?}"));
        let suite = self
            .tls
            .negotiated_cipher_suite()
            .map_or_else(String::new, |s| format!("{:?}", s.suite()));
        let resumed = match self.tls.handshake_kind() {
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

    fn local_error(&self, side: LocalSide, source: io::Error) -> Error {
        let which = match (&self.local, side) {
            (Local::Stdio { stdin, .. }, LocalSide::In) => stdin.name(),
            (Local::Stdio { stdout, .. }, LocalSide::Out) => stdout.name(),
            (Local::Socket(_), _) => "the local connection",
        };
        Error::Stdio { which, source }
    }

    fn socket_error(&self, source: io::Error) -> Error {
        if self.tls.is_handshaking() {
            Error::HandshakeIo {
                hop: self.peer.hop(),
                host: self.peer.host.clone(),
                addr: self.peer.addr,
                source,
            }
        } else {
            self.unclean(UncleanCause::Io(source))
        }
    }

    fn tls_error(&mut self, source: rustls::Error) -> Error {
        // Best effort: tell the server why (rustls queued an alert).
        let _ = self.sock.send_records(&mut self.tls);
        if self.tls.is_handshaking() || self.refused_our_last_flight() {
            Error::Tls {
                hop: self.peer.hop(),
                host: self.peer.host.clone(),
                addr: self.peer.addr,
                source: Box::new(source),
                client_cert_requested: self.probe.was_asked(),
            }
        } else {
            self.unclean(UncleanCause::Tls(source))
        }
    }

    /// In TLS 1.3 the server checks our client certificate (here: none) after
    /// our side of the handshake is done, so its refusal arrives as the first
    /// thing after it: that is a failed handshake, not a broken session.
    fn refused_our_last_flight(&self) -> bool {
        self.probe.was_asked() && self.received == 0
    }

    /// The server ended its direction having sent nothing while ours is still
    /// open: the edge found nothing listening on the VM's port.
    fn no_service(&self) -> Option<Error> {
        let nothing = self.received == 0 && self.down_buf.is_empty() && self.up == Flow::Open;
        nothing.then(|| Error::NoService {
            host: self.peer.host.clone(),
            port: self.peer.port,
        })
    }

    fn unclean(&self, cause: UncleanCause) -> Error {
        if let Some(no_service) = self.no_service() {
            return no_service;
        }
        Error::Unclean {
            host: self.peer.host.clone(),
            received: self.received,
            cause,
        }
    }
}

/// Which of the local end's directions failed.
#[derive(Debug, Clone, Copy)]
enum LocalSide {
    In,
    Out,
}

/// EPIPE on stdout, or a local client that reset or closed: the reader is
/// gone, which ends the session quietly.
fn is_reader_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}
