//! The pump: one struct owning the socket, the TLS session and both stdio ends,
//! moving bytes whenever they can move and deciding when the session is over.
//!
//! Readiness is tracked in flags that events set and `WouldBlock` clears, so
//! each source is registered once (edge-triggered) and never re-registered.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry};
use rustls::ClientConnection;

use crate::error::{Error, Phase, Result, UncleanCause};
use crate::poller::{Poller, SOCKET, STDIN, STDOUT};
use crate::records::Records;
use crate::stdio::StdFd;
use crate::tls::ClientCertProbe;
use crate::transport::Transport;

/// Bytes read from stdin at once, and the most rustls may hold unsent: with the
/// kernel's socket buffers this bounds memory per direction, so a slow reader
/// on one side stops reads on the other instead of growing buffers.
const BUDGET: usize = 64 * 1024;

/// Rounds of work between two looks at signals when data never stops coming.
const ROUNDS_PER_WAIT: usize = 64;

/// Everything the relay needs to know about the connection it was handed.
#[derive(Debug)]
pub struct Session {
    /// The established connection (TCP to the edge, or through a proxy).
    pub sock: Transport,
    /// Its peer address, for messages.
    pub addr: SocketAddr,
    /// The verified host name, for messages.
    pub host: String,
    /// `host:port` as the user named it, for messages.
    pub target: String,
    /// The connect timeout in force, for messages.
    pub connect_timeout: Duration,
    /// A fresh client connection for `host`.
    pub tls: ClientConnection,
    /// Tells whether the server asked for a client certificate.
    pub probe: Arc<ClientCertProbe>,
}

/// One tunnel: the TLS session and both stdio ends.
struct Tunnel {
    sock: Transport,
    addr: SocketAddr,
    host: String,
    target: String,
    connect_timeout: Duration,
    tls: ClientConnection,
    probe: Arc<ClientCertProbe>,
    stdin: StdFd,
    stdout: StdFd,
    /// Bytes read from stdin that rustls has not taken yet: `up[up_start..up_end]`.
    up: Box<[u8]>,
    up_start: usize,
    up_end: usize,
    /// The TLS record framing of what the socket has given rustls.
    records: Records,
    /// Plaintext from rustls not yet written to stdout: `down[down_start..down_end]`.
    down: Box<[u8]>,
    down_start: usize,
    down_end: usize,
    sock_readable: bool,
    sock_writable: bool,
    stdin_readable: bool,
    stdout_writable: bool,
    /// TCP EOF seen from the server.
    server_eof: bool,
    /// The server's direction is finished: close_notify received, stdout closed.
    server_done: bool,
    stdin_eof: bool,
    close_notify_sent: bool,
    /// Our direction is finished: close_notify flushed and TCP write side shut.
    client_done: bool,
    /// The process reading our stdout has gone away (EPIPE): nothing left to do.
    reader_gone: bool,
    /// The server reset or closed the connection after finishing its direction.
    peer_gone: bool,
    sent: u64,
    received: u64,
    started: Instant,
}

/// Runs the TLS handshake (bounded by `deadline`) and then relays until both
/// directions are finished, the reader goes away, or a stop signal arrives.
pub fn run(poller: &mut Poller, session: Session, deadline: Instant) -> Result<()> {
    let Session {
        mut sock,
        addr,
        host,
        target,
        connect_timeout,
        mut tls,
        probe,
    } = session;
    let registry = poller.registry();
    let setup = |what| move |source| Error::Setup { what, source };
    registry
        .register(&mut sock, SOCKET, Interest::READABLE | Interest::WRITABLE)
        .map_err(setup("registering the socket"))?;
    let stdin = StdFd::new(0, "stdin", registry, STDIN, Interest::READABLE).map_err(|source| {
        Error::Stdio {
            which: "stdin",
            source,
        }
    })?;
    let stdout =
        StdFd::new(1, "stdout", registry, STDOUT, Interest::WRITABLE).map_err(|source| {
            Error::Stdio {
                which: "stdout",
                source,
            }
        })?;
    tls.set_buffer_limit(Some(BUDGET));
    let mut tunnel = Tunnel {
        sock,
        addr,
        host,
        target,
        connect_timeout,
        tls,
        probe,
        stdin,
        stdout,
        up: vec![0; BUDGET].into_boxed_slice(),
        up_start: 0,
        up_end: 0,
        records: Records::default(),
        down: vec![0; BUDGET].into_boxed_slice(),
        down_start: 0,
        down_end: 0,
        sock_readable: true,
        sock_writable: true,
        stdin_readable: true,
        stdout_writable: true,
        server_eof: false,
        server_done: false,
        stdin_eof: false,
        close_notify_sent: false,
        client_done: false,
        reader_gone: false,
        peer_gone: false,
        sent: 0,
        received: 0,
        started: Instant::now(),
    };
    let result = tunnel.run(poller, deadline);
    log::info!(
        "sent {} bytes, received {} bytes in {:.1?}",
        tunnel.sent,
        tunnel.received,
        tunnel.started.elapsed()
    );
    result
}

impl Tunnel {
    fn run(&mut self, poller: &mut Poller, deadline: Instant) -> Result<()> {
        loop {
            let busy = self.pump(poller.registry())?;
            if let Some(why) = self.ending() {
                log::info!("session over: {why}");
                return Ok(());
            }
            let handshaking = self.tls.is_handshaking();
            if handshaking && Instant::now() >= deadline {
                return Err(Error::Timeout {
                    target: self.target.clone(),
                    phase: Phase::Handshake,
                    after: self.connect_timeout,
                });
            }
            let wait_until = match (busy, handshaking) {
                (true, _) => Some(Instant::now()),
                (false, true) => Some(deadline),
                (false, false) => None,
            };
            for event in poller.wait(wait_until)? {
                match event.token() {
                    SOCKET => {
                        self.sock_readable |= event.is_readable() || event.is_read_closed();
                        self.sock_writable |= event.is_writable() || event.is_write_closed();
                        if event.is_error() {
                            // Let the next read or write surface the error itself.
                            self.sock_readable = true;
                            self.sock_writable = true;
                        }
                        if self.server_done && (event.is_error() || event.is_write_closed()) {
                            self.peer_gone = true;
                        }
                    }
                    STDIN => self.stdin_readable = true,
                    STDOUT => {
                        self.stdout_writable = true;
                        // A pipe's reader closing shows only as an error on
                        // our end: without it, a silent server would keep us
                        // waiting for an EPIPE that never comes (ssh killed).
                        if event.is_error() || event.is_write_closed() {
                            log::debug!("stdout's reader has gone away");
                            self.reader_gone = true;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Why the session is over, once it is.
    fn ending(&self) -> Option<&'static str> {
        if self.reader_gone {
            Some("stdout was closed by its reader")
        } else if self.client_done && self.server_done {
            Some("both directions closed cleanly")
        } else if self.peer_gone && self.up_start == self.up_end && !self.tls.wants_write() {
            Some("the server finished its direction and closed the connection")
        } else {
            None
        }
    }

    /// Does all the work readiness allows; `Ok(true)` if it stopped with work
    /// still possible (to look at signals), `Ok(false)` when it must wait.
    fn pump(&mut self, registry: &Registry) -> Result<bool> {
        for _ in 0..ROUNDS_PER_WAIT {
            let mut progress = self.flush_tls()?;
            progress |= self.receive(registry)?;
            progress |= self.send()?;
            progress |= self.finish_upstream();
            if !progress || self.ending().is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes queued TLS records to the socket.
    fn flush_tls(&mut self) -> Result<bool> {
        let mut progress = false;
        while self.sock_writable && self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock_writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.socket_error(e)),
            }
        }
        Ok(progress)
    }

    /// Reads TLS records from the socket and passes the plaintext to stdout.
    fn receive(&mut self, registry: &Registry) -> Result<bool> {
        let mut progress = self.deliver(registry)?;
        while self.sock_readable && !self.server_eof && self.tls.wants_read() {
            let read = self.tls.read_tls(&mut self.records.on(&mut self.sock));
            match read {
                Ok(0) => {
                    log::debug!("TCP EOF from the server");
                    self.server_eof = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.sock_readable = false;
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
            let was_handshaking = self.tls.is_handshaking();
            if let Err(e) = self.tls.process_new_packets() {
                return Err(self.tls_error(e));
            }
            if was_handshaking && !self.tls.is_handshaking() {
                self.log_established();
            }
            // Gather records while more ciphertext is ready, so stdout gets a
            // few large writes instead of one per record.
            self.gather_plaintext();
        }
        progress |= self.deliver(registry)?;
        if self.server_eof && self.tls.is_handshaking() {
            return Err(self.socket_error(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(progress)
    }

    /// Moves plaintext from rustls into `down`, as much as fits.
    fn gather_plaintext(&mut self) {
        if self.down_start == self.down_end {
            (self.down_start, self.down_end) = (0, 0);
        }
        if self.down_end < self.down.len() {
            // Ok(0) (close_notify) and errors are left for `deliver`, which
            // asks again once `down` is written out.
            if let Ok(n) = self.tls.reader().read(&mut self.down[self.down_end..]) {
                self.down_end += n;
            }
        }
    }

    /// Writes received plaintext to stdout; on the server's close_notify,
    /// once everything before it is written, closes stdout so our reader sees EOF.
    fn deliver(&mut self, registry: &Registry) -> Result<bool> {
        if self.tls.is_handshaking() {
            // No plaintext before the handshake, and an EOF now is a failed
            // handshake (reported by `receive`), not a truncated session.
            return Ok(false);
        }
        let mut progress = false;
        while self.stdout_writable && !self.server_done && !self.reader_gone {
            if self.down_start == self.down_end {
                (self.down_start, self.down_end) = (0, 0);
                match self.tls.reader().read(&mut self.down) {
                    Ok(0) => {
                        log::debug!("close_notify from the server; closing stdout");
                        self.stdout.close(registry);
                        self.server_done = true;
                        return Ok(true);
                    }
                    Ok(n) => self.down_end = n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(self.unclean(UncleanCause::NoCloseNotify));
                    }
                    Err(e) => return Err(self.unclean(UncleanCause::Io(e))),
                }
            }
            match self
                .stdout
                .write(&self.down[self.down_start..self.down_end])
            {
                Ok(n) => {
                    self.down_start += n;
                    self.received += n as u64;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stdout_writable = self.stdout.always_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.reader_gone = true,
                Err(source) => {
                    return Err(Error::Stdio {
                        which: "stdout",
                        source,
                    })
                }
            }
        }
        Ok(progress)
    }

    /// Reads stdin and hands it to rustls, which encrypts it into records.
    fn send(&mut self) -> Result<bool> {
        if self.tls.is_handshaking() || self.close_notify_sent {
            return Ok(false);
        }
        let mut progress = false;
        loop {
            while self.up_start < self.up_end {
                match self
                    .tls
                    .writer()
                    .write(&self.up[self.up_start..self.up_end])
                {
                    // rustls holds BUDGET unsent bytes: wait for the socket.
                    Ok(0) => return Ok(progress),
                    Ok(n) => {
                        self.up_start += n;
                        self.sent += n as u64;
                        progress = true;
                    }
                    Err(e) => return Err(self.socket_error(e)),
                }
            }
            if self.stdin_eof || !self.stdin_readable {
                return Ok(progress);
            }
            match self.stdin.read(&mut self.up) {
                Ok(0) => {
                    log::debug!("EOF on stdin; closing our direction");
                    self.stdin_eof = true;
                }
                Ok(n) => (self.up_start, self.up_end) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stdin_readable = self.stdin.always_ready();
                    return Ok(progress);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Stdio {
                        which: "stdin",
                        source,
                    })
                }
            }
            progress = true;
        }
    }

    /// After stdin EOF: close_notify once everything read is queued, then shut
    /// the TCP write side once it is flushed, and keep receiving.
    fn finish_upstream(&mut self) -> bool {
        if !self.stdin_eof || self.up_start < self.up_end || self.tls.is_handshaking() {
            return false;
        }
        if !self.close_notify_sent {
            self.tls.send_close_notify();
            self.close_notify_sent = true;
            return true;
        }
        if !self.client_done && !self.tls.wants_write() {
            if let Err(e) = self.sock.shutdown_write() {
                log::debug!("shutting down the TCP write side: {e}");
            }
            self.client_done = true;
            return true;
        }
        false
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
        log::info!(
            "{version} established with {} ({}) using {suite} in {:.1?}",
            self.host,
            self.addr,
            self.started.elapsed()
        );
    }

    fn socket_error(&self, source: io::Error) -> Error {
        if self.tls.is_handshaking() {
            Error::HandshakeIo {
                host: self.host.clone(),
                addr: self.addr,
                source,
            }
        } else {
            self.unclean(UncleanCause::Io(source))
        }
    }

    fn tls_error(&mut self, source: rustls::Error) -> Error {
        // Best effort: tell the server why (rustls queued an alert).
        let _ = self.tls.write_tls(&mut self.sock);
        if self.tls.is_handshaking() || self.refused_our_last_flight() {
            Error::Tls {
                host: self.host.clone(),
                addr: self.addr,
                source,
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

    fn unclean(&self, cause: UncleanCause) -> Error {
        Error::Unclean {
            host: self.host.clone(),
            received: self.received,
            cause,
        }
    }
}
