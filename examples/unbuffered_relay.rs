//! A prototype of the stdio tunnel's pump on rustls 0.23's unbuffered API
//! (`UnbufferedClientConnection`), to measure it against `relay::Session`
//! (issue 18, item 6; results and the decision in benches/README.md).
//!
//! It takes the tunnel's arguments and runs only the stdio tunnel, straight
//! to the edge or through a proxy (the transport is the crate's);
//! `forward`, the doctor and the client-certificate hint stay on the buffered
//! path. Build and compare:
//!
//! ```text
//! cargo build --release --example unbuffered_relay
//! benches/compare.sh --runs 5 --variant unbuffered=target/release/examples/unbuffered_relay
//! VERS_TUNNEL_TEST_BIN=target/debug/examples/unbuffered_relay cargo test --test tunnel relay::
//! ```
//!
//! The session owns the two buffers rustls's buffered API keeps inside
//! itself: `incoming` (records read from the socket, deframed and decrypted
//! where they lie) and `outgoing` (records encrypted by rustls, waiting for
//! the socket). Plaintext still leaves rustls 0.23.46 as a fresh `Vec` per
//! record (`CommonState::take_received_plaintext`), which is copied into
//! `down_buf` to be written to stdout in large writes, as the buffered pump
//! does.
//!
//! Reads of the socket end at the next record header (what `records.rs` does
//! for the buffered pump): each record then starts at the front of
//! `incoming`, which is on a cache line, so rustls's copy of its plaintext is
//! 59 bytes apart from it, outside the slow band `src/alloc.rs` describes.
//! `VERS_TUNNEL_UNBUFFERED_READS=big` reads as much as fits instead (records
//! at any alignment, fewer reads), for comparison.

// The crate's own `Error`, returned by value as `vers_tunnel::run` does.
#![allow(clippy::result_large_err)]

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use mio::event::Event;
use mio::Interest;
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::unbuffered::{
    AppDataRecord, ConnectionState, EncryptError, UnbufferedStatus, WriteTraffic,
};
use rustls::ClientConfig;
use vers_tunnel::alloc::LineAligned;
use vers_tunnel::cli::{self, Config};
use vers_tunnel::error::{exit, Error, Hop, Phase, Result, UncleanCause};
use vers_tunnel::net::poller::{self, Poller};
use vers_tunnel::net::stdio::StdFd;
use vers_tunnel::proxy::transport::Transport;
use vers_tunnel::proxy::ProxyEnv;

// As in main.rs: records' plaintext copies start on a cache line.
#[global_allocator]
static ALLOCATOR: LineAligned<std::alloc::System> = LineAligned(std::alloc::System);

/// Bytes read from stdin at once, and the most `down_buf` holds (as
/// `buffer::BUDGET` in the crate).
const BUDGET: usize = 64 * 1024;
/// A TLS record header.
const HEADER: usize = 5;
/// The largest record a peer may send (TLS 1.2's ciphertext bound; TLS 1.3's
/// is smaller), with its header.
const MAX_RECORD: usize = HEADER + 16384 + 2048;
/// Room in `down_buf` beyond [`BUDGET`] for the framing of the four 16 KiB
/// records that fill it, which reads count against it.
const DOWN_FRAMING: usize = 1024;
/// Room kept for one record's framing and tag when encrypting a full 16 KiB.
const SEAL_OVERHEAD: usize = 256;
/// Plaintext encrypted per `WriteTraffic::encrypt` call: one record.
const SEAL_CHUNK: usize = 16384;
/// Rounds of work between two looks at events when data never stops coming.
const ROUNDS_PER_WAIT: usize = 64;

fn main() -> ExitCode {
    vers_tunnel::net::stdio::restore_flags_on_panic();
    let args: Vec<OsString> = std::env::args_os().collect();
    let proxy_env = ProxyEnv::from_lookup(|name| std::env::var_os(name));
    let config = match cli::parse(args, std::env::var_os("SSL_CERT_FILE"), &proxy_env) {
        Ok(cli::Mode::Tunnel(config)) => config,
        Ok(_) => {
            eprintln!("vers-tunnel: this prototype only tunnels (see --help)");
            return ExitCode::from(exit::USAGE);
        }
        Err(err) => {
            if !err.use_stderr() {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("vers-tunnel: {} (see --help)", cli::one_line(&err));
            return ExitCode::from(exit::USAGE);
        }
    };
    vers_tunnel::init_logging(config.verbosity);
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if err.is_quiet() {
                log::info!("{err}");
            } else {
                log::error!("{err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Connects as `vers_tunnel::run` does, then pumps with [`Session`].
fn run(config: &Config) -> Result<()> {
    let tls_config: Arc<ClientConfig> = vers_tunnel::tls::client_config(&config.cacerts)?;
    let mut poller = Poller::new()?;
    let deadline = Instant::now() + config.connect_timeout;
    let mut sock = vers_tunnel::net::connect::connect(&mut poller, config, deadline)?;
    let addr = sock.peer_addr().map_err(|source| Error::Setup {
        what: "reading the peer address",
        source,
    })?;
    let conn = UnbufferedClientConnection::new(tls_config, config.host.server_name())
        .map_err(|source| Error::TlsSetup { source })?;
    let registry = poller.registry();
    registry
        .register(
            &mut sock,
            poller::SOCKET,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|source| Error::Setup {
            what: "registering the socket",
            source,
        })?;
    let stdio = |fd, name, token, interest| {
        StdFd::new(fd, name, registry, token, interest).map_err(|source| Error::Stdio {
            which: name,
            source,
        })
    };
    let stdin = stdio(0, "stdin", poller::STDIN, Interest::READABLE)?;
    let stdout = stdio(1, "stdout", poller::STDOUT, Interest::WRITABLE)?;
    let big_reads = std::env::var_os("VERS_TUNNEL_UNBUFFERED_READS").is_some_and(|v| v == "big");
    let mut session = Session {
        host: config.host.to_string(),
        port: config.port,
        addr: vers_tunnel::net::connect::Hop::of(config).show(addr),
        connect_timeout: config.connect_timeout,
        deadline,
        conn,
        sock,
        stdin,
        stdout,
        incoming: vec![0; BUDGET + MAX_RECORD].into_boxed_slice(),
        in_len: 0,
        big_reads,
        outgoing: Bytes::new(BUDGET + SEAL_OVERHEAD * 4),
        up_buf: Bytes::new(BUDGET),
        down_buf: Bytes::new(BUDGET + DOWN_FRAMING),
        up: Up::Open,
        down: Down::Open,
        ready: Ready::default(),
        gone: None,
        tcp_eof: false,
        sent: 0,
        received: 0,
        started: Instant::now(),
    };
    let result = session.run(&mut poller);
    log::info!(
        "sent {} bytes, received {} bytes in {:.1?}",
        session.sent,
        session.received,
        session.started.elapsed()
    );
    result
}

/// Our direction: stdin -> server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    Open,
    /// stdin ended; what was read is still being encrypted.
    Draining,
    /// close_notify is encrypted into `outgoing`, which is being flushed.
    Closing,
    /// close_notify is out (no TCP FIN: as `relay::Session::finish_upstream`).
    Closed,
}

/// The server's direction: server -> stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    Open,
    /// `PeerClosed` came: what was received is still being written out.
    Draining,
    /// Written out, and stdout closed.
    Closed,
}

/// Which sources may have work; events set these, `WouldBlock` clears them.
#[derive(Debug, Clone, Copy)]
struct Ready {
    sock_read: bool,
    sock_write: bool,
    stdin: bool,
    stdout: bool,
}

impl Default for Ready {
    fn default() -> Self {
        Ready {
            sock_read: true,
            sock_write: true,
            stdin: true,
            stdout: true,
        }
    }
}

/// What a call to [`Session::pump`] came to (as `relay::Pump`).
enum Pump {
    Idle,
    /// It stopped with work still possible, to let other events in.
    Busy,
    Over(&'static str),
}

/// How a session ended without a clean close of both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Reader,
    Peer,
}

struct Session {
    host: String,
    port: u16,
    addr: vers_tunnel::target::ShownAddr,
    connect_timeout: std::time::Duration,
    deadline: Instant,
    conn: UnbufferedClientConnection,
    sock: Transport,
    stdin: StdFd,
    stdout: StdFd,
    /// Records read from the socket, `incoming[..in_len]`, always starting at
    /// a record's first byte.
    incoming: Box<[u8]>,
    in_len: usize,
    big_reads: bool,
    /// Records to send.
    outgoing: Bytes,
    /// Read from stdin, not yet encrypted.
    up_buf: Bytes,
    /// Plaintext received, not yet written to stdout.
    down_buf: Bytes,
    up: Up,
    down: Down,
    ready: Ready,
    gone: Option<Gone>,
    /// The server closed TCP without close_notify.
    tcp_eof: bool,
    sent: u64,
    received: u64,
    started: Instant,
}

impl Session {
    fn run(&mut self, poller: &mut Poller) -> Result<()> {
        loop {
            let busy = match self.pump(poller)? {
                Pump::Over(why) => {
                    log::info!("session over: {why}");
                    return Ok(());
                }
                Pump::Busy => true,
                Pump::Idle => false,
            };
            let handshaking = self.conn.is_handshaking();
            if handshaking && Instant::now() >= self.deadline {
                return Err(Error::Timeout {
                    hop: self.hop(),
                    phase: Phase::Handshake,
                    after: self.connect_timeout,
                });
            }
            let wait_until = if busy {
                Some(Instant::now())
            } else {
                handshaking.then_some(self.deadline)
            };
            let events = poller.wait(wait_until)?;
            for event in events.iter() {
                self.on_event(event);
            }
        }
    }

    fn on_event(&mut self, event: &Event) {
        let token = event.token();
        if token == poller::SOCKET {
            self.ready.sock_read |= event.is_readable() || event.is_read_closed();
            self.ready.sock_write |= event.is_writable() || event.is_write_closed();
            if event.is_error() {
                self.ready.sock_read = true;
                self.ready.sock_write = true;
            }
            if self.down == Down::Closed && (event.is_error() || event.is_write_closed()) {
                self.gone = Some(Gone::Peer);
            }
        }
        if token == poller::STDIN {
            self.ready.stdin |= event.is_readable() || event.is_read_closed();
        }
        if token == poller::STDOUT {
            self.ready.stdout |= event.is_writable() || event.is_write_closed();
            if (event.is_error() || event.is_write_closed()) && self.down != Down::Closed {
                self.gone = Some(Gone::Reader);
            }
        }
    }

    /// Does the work readiness allows.
    fn pump(&mut self, poller: &Poller) -> Result<Pump> {
        for _ in 0..ROUNDS_PER_WAIT {
            let mut progress = self.flush()?;
            progress |= self.read_stdin()?;
            progress |= self.drive()?;
            progress |= self.flush()?;
            // Gather records while more ciphertext is ready, so stdout gets
            // a few large writes instead of one per record.
            while self.read_socket()? {
                progress = true;
                self.drive()?;
            }
            progress |= self.write_stdout(poller)?;
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

    fn ending(&self) -> Option<&'static str> {
        let flushed = self.up_buf.is_empty() && self.outgoing.is_empty();
        match self.gone {
            Some(Gone::Reader) => return Some("the local reader went away"),
            Some(Gone::Peer) if flushed => {
                return Some("the server finished its direction and closed the connection")
            }
            _ => {}
        }
        if self.up == Up::Closed && self.down == Down::Closed {
            return Some("both directions closed cleanly");
        }
        if self.down == Down::Closed && flushed && self.stdin.is_terminal() {
            return Some("the server finished and stdin is a terminal");
        }
        None
    }

    /// Runs rustls's state machine over `incoming` until it needs I/O: takes
    /// plaintext into `down_buf`, encrypts `up_buf` and close_notify into
    /// `outgoing`.
    fn drive(&mut self) -> Result<bool> {
        let mut progress = false;
        loop {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.in_len]);
            let state = match state {
                Ok(state) => state,
                Err(e) => return Err(self.tls_error(e)),
            };
            let mut done = false;
            match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let AppDataRecord {
                            discard: more,
                            payload,
                        } = match record {
                            Ok(record) => record,
                            Err(e) => {
                                return Err(unclean_tls(&self.host, self.received, e));
                            }
                        };
                        discard += more;
                        // Room is kept for everything `incoming` holds (`read_socket`).
                        self.down_buf.room()[..payload.len()].copy_from_slice(payload);
                        self.down_buf.filled(payload.len());
                    }
                }
                ConnectionState::PeerClosed => {
                    log::debug!("close_notify from the server");
                    self.down = Down::Draining;
                }
                ConnectionState::Closed => {
                    log::debug!("both close_notify alerts exchanged");
                    if self.down == Down::Open {
                        self.down = Down::Draining;
                    }
                    done = true;
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    self.outgoing.compact();
                    let written = encode
                        .encode(self.outgoing.room())
                        .map_err(|e| setup_error(e.to_string()))?;
                    self.outgoing.filled(written);
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // Queued in `outgoing`, which `flush` sends in order.
                    transmit.done();
                }
                ConnectionState::BlockedHandshake => done = true,
                ConnectionState::WriteTraffic(mut write) => {
                    progress |= seal(
                        &mut write,
                        &mut self.up_buf,
                        &mut self.outgoing,
                        &mut self.up,
                        &mut self.sent,
                    )
                    .map_err(setup_error)?;
                    done = true;
                }
                other => {
                    return Err(setup_error(format!("unexpected TLS state {other:?}")));
                }
            }
            if discard > 0 {
                self.incoming.copy_within(discard..self.in_len, 0);
                self.in_len -= discard;
                progress = true;
            }
            if done {
                return Ok(progress);
            }
            progress = true;
        }
    }

    /// Writes `outgoing` to the socket (and, to an `https://` proxy, the
    /// records its TLS layer holds).
    fn flush(&mut self) -> Result<bool> {
        let mut progress = false;
        loop {
            if self.outgoing.is_empty() && self.ready.sock_write && self.sock.wants_write() {
                match self.sock.flush() {
                    Ok(()) => progress = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.ready.sock_write = false;
                    }
                    Err(e) => return Err(self.socket_error(e)),
                }
            }
            if self.outgoing.is_empty() {
                if self.up == Up::Closing && !self.sock.wants_write() {
                    log::debug!("close_notify sent; our direction is closed");
                    self.up = Up::Closed;
                    progress = true;
                }
                return Ok(progress);
            }
            if !self.ready.sock_write {
                return Ok(progress);
            }
            match self.sock.write(self.outgoing.pending()) {
                Ok(n) => {
                    self.outgoing.consume(n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.sock_write = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.socket_error(e)),
            }
        }
    }

    /// Reads records from the socket into `incoming`, no more than
    /// `down_buf` can take as plaintext.
    fn read_socket(&mut self) -> Result<bool> {
        if !self.ready.sock_read || self.down != Down::Open || self.tcp_eof {
            return Ok(false);
        }
        // Plaintext is never longer than its record: whatever `incoming`
        // holds fits in `down_buf` when it is decrypted.
        let down_room = self.down_buf.room().len().saturating_sub(self.in_len);
        let mut want = (self.incoming.len() - self.in_len).min(down_room);
        if !self.big_reads {
            // The rest of the record in one read, or none until stdout
            // has taken what waits: a split record costs a read more.
            let record = self.to_next_header();
            want = if record <= want { record } else { 0 };
        }
        if want == 0 {
            return Ok(false);
        }
        let read = self
            .sock
            .read(&mut self.incoming[self.in_len..self.in_len + want]);
        match read {
            Ok(0) => {
                log::debug!("TCP EOF from the server");
                if self.conn.is_handshaking() {
                    return Err(self.socket_error(io::ErrorKind::UnexpectedEof.into()));
                }
                // Unclean, once what came before it is written out.
                self.tcp_eof = true;
                return Ok(false);
            }
            Ok(n) => self.in_len += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.ready.sock_read = false;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(self.socket_error(e)),
        }
        Ok(true)
    }

    /// Bytes to read so that `incoming` ends with the next record's header.
    fn to_next_header(&self) -> usize {
        let mut at = 0;
        loop {
            if self.in_len < at + HEADER {
                return at + HEADER - self.in_len;
            }
            let len = usize::from(u16::from_be_bytes([
                self.incoming[at + 3],
                self.incoming[at + 4],
            ]));
            at += HEADER + len;
        }
    }

    fn read_stdin(&mut self) -> Result<bool> {
        if self.conn.is_handshaking() || self.up != Up::Open || !self.ready.stdin {
            return Ok(false);
        }
        if !self.up_buf.is_empty() {
            return Ok(false);
        }
        match self.stdin.read(self.up_buf.room()) {
            Ok(0) => {
                log::debug!("EOF from stdin; closing our direction");
                self.up = Up::Draining;
            }
            Ok(n) => self.up_buf.filled(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.ready.stdin = self.stdin.always_ready();
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::Stdio {
                    which: "stdin",
                    source,
                })
            }
        }
        Ok(true)
    }

    fn write_stdout(&mut self, poller: &Poller) -> Result<bool> {
        let mut progress = false;
        while !self.down_buf.is_empty() && self.ready.stdout && self.gone.is_none() {
            match self.stdout.write(self.down_buf.pending()) {
                Ok(n) => {
                    self.down_buf.consume(n);
                    self.received += n as u64;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.stdout = self.stdout.always_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    self.gone = Some(Gone::Reader);
                }
                Err(source) => {
                    return Err(Error::Stdio {
                        which: "stdout",
                        source,
                    })
                }
            }
        }
        if self.tcp_eof && self.down == Down::Open && self.down_buf.is_empty() {
            if self.no_service() {
                return Err(self.no_service_error());
            }
            return Err(Error::Unclean {
                host: self.host.clone(),
                received: self.received,
                cause: UncleanCause::NoCloseNotify,
            });
        }
        if self.down == Down::Draining && self.down_buf.is_empty() {
            if self.no_service() {
                return Err(self.no_service_error());
            }
            log::debug!("close_notify from the server; ending the local side");
            self.stdout.close(poller.registry());
            self.down = Down::Closed;
            progress = true;
        }
        Ok(progress)
    }

    /// The server ended its direction having sent nothing while ours is
    /// still open: nothing listens on the VM's port.
    fn no_service(&self) -> bool {
        self.received == 0 && self.down_buf.is_empty() && self.up == Up::Open
    }

    fn no_service_error(&self) -> Error {
        Error::NoService {
            host: self.host.clone(),
            port: self.port,
        }
    }

    /// The edge, as messages name it.
    fn hop(&self) -> Hop {
        Hop::Edge {
            target: format!("{}:{}", self.host, self.port),
        }
    }

    fn socket_error(&self, source: io::Error) -> Error {
        if self.conn.is_handshaking() {
            Error::HandshakeIo {
                hop: self.hop(),
                host: self.host.clone(),
                addr: self.addr,
                source,
            }
        } else if self.no_service() {
            self.no_service_error()
        } else {
            Error::Unclean {
                host: self.host.clone(),
                received: self.received,
                cause: UncleanCause::Io(source),
            }
        }
    }

    fn tls_error(&self, source: rustls::Error) -> Error {
        if self.conn.is_handshaking() {
            Error::Tls {
                hop: self.hop(),
                host: self.host.clone(),
                addr: self.addr,
                source: Box::new(source),
                client_cert_requested: false,
            }
        } else {
            unclean_tls(&self.host, self.received, source)
        }
    }
}

fn setup_error(what: String) -> Error {
    Error::Setup {
        what: "running the unbuffered TLS session",
        source: io::Error::other(what),
    }
}

/// Encrypts what stdin gave into `outgoing`, and close_notify once stdin
/// has ended and everything before it is encrypted.
fn seal(
    write: &mut WriteTraffic<'_, ClientConnectionData>,
    up_buf: &mut Bytes,
    outgoing: &mut Bytes,
    up: &mut Up,
    sent: &mut u64,
) -> std::result::Result<bool, String> {
    let mut progress = false;
    while !up_buf.is_empty() {
        let room = outgoing.room();
        if room.len() < SEAL_CHUNK + SEAL_OVERHEAD {
            break;
        }
        let plain = &up_buf.pending()[..up_buf.pending().len().min(SEAL_CHUNK)];
        let n = plain.len();
        let written = write.encrypt(plain, room).map_err(encrypt_error)?;
        outgoing.filled(written);
        up_buf.consume(n);
        *sent += n as u64;
        progress = true;
    }
    if *up == Up::Draining && up_buf.is_empty() {
        outgoing.compact();
        let written = write
            .queue_close_notify(outgoing.room())
            .map_err(encrypt_error)?;
        outgoing.filled(written);
        log::debug!("EOF from stdin; close_notify queued");
        *up = Up::Closing;
        progress = true;
    }
    Ok(progress)
}

fn unclean_tls(host: &str, received: u64, source: rustls::Error) -> Error {
    Error::Unclean {
        host: host.to_string(),
        received,
        cause: UncleanCause::Tls(source),
    }
}

fn encrypt_error(e: EncryptError) -> String {
    e.to_string()
}

/// Bytes on their way, `data[start..end]` (as the crate's `buffer::Buffer`).
struct Bytes {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Bytes {
    fn new(len: usize) -> Bytes {
        Bytes {
            data: vec![0; len].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The free space after the pending bytes (all of it once they are gone).
    fn room(&mut self) -> &mut [u8] {
        if self.is_empty() {
            (self.start, self.end) = (0, 0);
        }
        &mut self.data[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Moves the pending bytes to the front.
    fn compact(&mut self) {
        self.data.copy_within(self.start..self.end, 0);
        (self.start, self.end) = (0, self.end - self.start);
    }
}

/// rustls's unbuffered client state machine, in memory against a buffered
/// rustls server: the half-close both ways, which the pump relies on.
#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::client::UnbufferedClientConnection;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::unbuffered::{AppDataRecord, ConnectionState, UnbufferedStatus};
    use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};

    const HOST: &str = "x.vm.vers.sh";

    /// A client and a server with the bytes between them.
    struct Pair {
        client: UnbufferedClientConnection,
        server: ServerConnection,
        /// Records from the server, not yet processed by the client.
        incoming: Vec<u8>,
        /// Plaintext the client received.
        received: Vec<u8>,
    }

    /// What the client does in its next `WriteTraffic` state.
    #[derive(Default)]
    struct Send<'a> {
        data: Option<&'a [u8]>,
        close_notify: bool,
    }

    impl Pair {
        fn new(versions: &[&'static rustls::SupportedProtocolVersion]) -> Pair {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca_key = KeyPair::generate().unwrap();
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = Issuer::new(ca_params, ca_key);
            let leaf_key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(vec![HOST.to_string()])
                .unwrap()
                .signed_by(&leaf_key, &issuer)
                .unwrap();
            let server_config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
                )
                .unwrap();
            let mut roots = RootCertStore::empty();
            roots.add(ca.der().clone()).unwrap();
            let client_config = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let mut pair = Pair {
                client: UnbufferedClientConnection::new(
                    Arc::new(client_config),
                    ServerName::try_from(HOST).unwrap(),
                )
                .unwrap(),
                server: ServerConnection::new(Arc::new(server_config)).unwrap(),
                incoming: Vec::new(),
                received: Vec::new(),
            };
            for _ in 0..10 {
                pair.client_turn(Send::default());
                pair.server_turn();
                if !pair.client.is_handshaking() && !pair.server.is_handshaking() {
                    return pair;
                }
            }
            panic!("the handshake did not finish in 10 turns");
        }

        /// Runs the client's state machine until it waits for the server;
        /// returns the states it went through, by name.
        fn client_turn(&mut self, mut send: Send) -> Vec<String> {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            loop {
                let UnbufferedStatus { mut discard, state } =
                    self.client.process_tls_records(&mut self.incoming);
                let state = state.expect("the client's TLS state");
                seen.push(format!("{state:?}"));
                let mut waits = false;
                match state {
                    ConnectionState::ReadTraffic(mut traffic) => {
                        while let Some(record) = traffic.next_record() {
                            let AppDataRecord {
                                discard: more,
                                payload,
                            } = record.unwrap();
                            discard += more;
                            self.received.extend_from_slice(payload);
                        }
                    }
                    ConnectionState::EncodeTlsData(mut encode) => {
                        let mut buf = vec![0; 64 * 1024];
                        let n = encode.encode(&mut buf).unwrap();
                        out.extend_from_slice(&buf[..n]);
                    }
                    ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                    ConnectionState::WriteTraffic(mut write) => {
                        let mut buf = vec![0; 64 * 1024];
                        if let Some(data) = send.data.take() {
                            let n = write.encrypt(data, &mut buf).unwrap();
                            out.extend_from_slice(&buf[..n]);
                        }
                        if std::mem::take(&mut send.close_notify) {
                            let n = write.queue_close_notify(&mut buf).unwrap();
                            out.extend_from_slice(&buf[..n]);
                        }
                        waits = true;
                    }
                    ConnectionState::PeerClosed => {}
                    ConnectionState::BlockedHandshake | ConnectionState::Closed => waits = true,
                    other => panic!("unexpected state {other:?}"),
                }
                self.incoming.drain(..discard);
                if waits {
                    break;
                }
            }
            self.server.read_tls(&mut &out[..]).unwrap();
            seen
        }

        /// The server processes what the client sent and sends what it has.
        fn server_turn(&mut self) {
            self.server.process_new_packets().unwrap();
            while self.server.wants_write() {
                self.server.write_tls(&mut self.incoming).unwrap();
            }
        }

        /// What the server has received, and whether the client's
        /// close_notify ended it.
        fn server_received(&mut self) -> (Vec<u8>, bool) {
            self.server_turn();
            let mut got = Vec::new();
            let mut buf = [0; 4096];
            loop {
                match self.server.reader().read(&mut buf) {
                    Ok(0) => return (got, true),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return (got, false),
                    Err(e) => panic!("the server's read: {e}"),
                }
            }
        }
    }

    const BOTH: [&[&rustls::SupportedProtocolVersion]; 2] =
        [&[&rustls::version::TLS13], &[&rustls::version::TLS12]];

    /// The server finishes first (ssh's server ending its output while the
    /// client still uploads): after `PeerClosed`, `WriteTraffic` still comes,
    /// and what the client then sends reaches the server.
    #[test]
    fn after_the_servers_close_notify_the_client_still_sends() {
        for versions in BOTH {
            let mut pair = Pair::new(versions);
            pair.server
                .writer()
                .write_all(b"the server's last words")
                .unwrap();
            pair.server.send_close_notify();
            pair.server_turn();
            let seen = pair.client_turn(Send::default());
            assert_eq!(pair.received, b"the server's last words");
            assert!(
                seen.ends_with(&["PeerClosed".into(), "WriteTraffic".into()]),
                "{versions:?}: {seen:?}"
            );
            let seen = pair.client_turn(Send {
                data: Some(b"an upload after it"),
                close_notify: true,
            });
            assert_eq!(seen.last().map(String::as_str), Some("WriteTraffic"));
            assert_eq!(
                pair.server_received(),
                (b"an upload after it".to_vec(), true)
            );
            let seen = pair.client_turn(Send::default());
            assert_eq!(seen, ["Closed"], "{versions:?}");
        }
    }

    /// The client finishes first (stdin's EOF): after its close_notify it
    /// still receives everything the server sends, then the server's own.
    #[test]
    fn after_the_clients_close_notify_it_still_receives() {
        for versions in BOTH {
            let mut pair = Pair::new(versions);
            pair.client_turn(Send {
                data: Some(b"a request"),
                close_notify: true,
            });
            assert_eq!(pair.server_received(), (b"a request".to_vec(), true));
            pair.server.writer().write_all(b"the answer").unwrap();
            pair.server.send_close_notify();
            pair.server_turn();
            let seen = pair.client_turn(Send::default());
            assert_eq!(pair.received, b"the answer");
            assert!(
                seen.ends_with(&["ReadTraffic".into(), "PeerClosed".into(), "Closed".into()]),
                "{versions:?}: {seen:?}"
            );
        }
    }
}
