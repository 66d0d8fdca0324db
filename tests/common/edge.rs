//! The test edge: a real rustls server on loopback (port 0) that terminates TLS,
//! records the SNI it saw, and forwards plaintext to a TCP backend chosen by
//! SNI, like the Vers edge. Misbehaviours that live at the TLS layer (no
//! close_notify, reset, silence) are edge modes; data behaviours are backends.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use socket2::SockRef;

use super::pki::{Ca, Leaf};

/// How the edge ends or disturbs a session at the TLS layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward faithfully; the backend's EOF becomes close_notify.
    Normal,
    /// On the backend's EOF, close TCP without sending close_notify.
    NoCloseNotify,
    /// After this many plaintext bytes to the client, reset the connection.
    ResetAfter(u64),
    /// Accept TCP and never answer the handshake.
    Silent,
    /// After this many plaintext bytes to the client, send a record no key
    /// decrypts (the client's TLS fails), then wait for the client to close.
    CorruptAfter(u64),
}

/// An application-data record of 32 zero bytes: no session key decrypts it.
const UNDECRYPTABLE: [u8; 37] = {
    let mut record = [0; 37];
    record[0] = 0x17;
    record[1] = 0x03;
    record[2] = 0x03;
    record[4] = 32;
    record
};

/// Builder for an [`Edge`].
pub struct EdgeBuilder {
    leaf: Leaf,
    routes: HashMap<String, SocketAddr>,
    default_backend: Option<SocketAddr>,
    mode: Mode,
    client_auth: Option<RootCertStore>,
    ipv6: bool,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
}

impl EdgeBuilder {
    /// An edge serving `leaf`.
    pub fn new(leaf: Leaf) -> Self {
        EdgeBuilder {
            leaf,
            routes: HashMap::new(),
            default_backend: None,
            mode: Mode::Normal,
            client_auth: None,
            ipv6: false,
            versions: rustls::ALL_VERSIONS,
        }
    }

    /// Sends sessions whose SNI is `name` to `backend`.
    pub fn route(mut self, name: &str, backend: SocketAddr) -> Self {
        self.routes.insert(name.to_string(), backend);
        self
    }

    /// Sends sessions with any other (or no) SNI to `backend`.
    pub fn backend(mut self, backend: SocketAddr) -> Self {
        self.default_backend = Some(backend);
        self
    }

    /// Sets the TLS-layer behaviour.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Requires a client certificate signed by `ca`.
    pub fn require_client_cert(mut self, ca: &Ca) -> Self {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.clone()).unwrap();
        self.client_auth = Some(roots);
        self
    }

    /// Only TLS 1.2.
    pub fn tls12_only(mut self) -> Self {
        static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        self.versions = &TLS12;
        self
    }

    /// Also listens on [::1].
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Starts listening on 127.0.0.1 (and [::1]) on OS-chosen ports.
    pub fn start(self) -> Edge {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .unwrap();
        let builder = match self.client_auth {
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap(),
            ),
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(
            builder
                .with_single_cert(self.leaf.chain, self.leaf.key)
                .unwrap(),
        );
        let shared = Arc::new(Shared {
            config,
            routes: self.routes,
            default_backend: self.default_backend,
            mode: self.mode,
            sni_seen: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let mut listeners = vec![TcpListener::bind("127.0.0.1:0").unwrap()];
        if self.ipv6 {
            listeners.push(TcpListener::bind("[::1]:0").unwrap());
        }
        let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        for listener in listeners {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(listener, shared));
        }
        Edge { addrs, shared }
    }
}

struct Shared {
    config: Arc<ServerConfig>,
    routes: HashMap<String, SocketAddr>,
    default_backend: Option<SocketAddr>,
    mode: Mode,
    sni_seen: Mutex<Vec<Option<String>>>,
    accepted: AtomicUsize,
    stopping: AtomicBool,
}

/// A running edge; it stops accepting when dropped.
pub struct Edge {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
}

impl Edge {
    /// The IPv4 listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The IPv6 listening address (after [`EdgeBuilder::ipv6`]).
    pub fn addr6(&self) -> SocketAddr {
        self.addrs[1]
    }

    /// The SNI of every completed handshake so far (`None`: no SNI sent).
    pub fn sni_seen(&self) -> Vec<Option<String>> {
        self.shared.sni_seen.lock().unwrap().clone()
    }

    /// TCP connections accepted so far (a handshake may still be under way).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for addr in &self.addrs {
            // Wake the accept loop so it sees `stopping`.
            let _ = TcpStream::connect(addr);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(&shared);
        thread::spawn(move || serve(stream, &shared));
    }
}

fn serve(mut sock: TcpStream, shared: &Shared) {
    if shared.mode == Mode::Silent {
        // Hold the connection open, unanswered, until the client gives up.
        let _ = sock.read_to_end(&mut Vec::new());
        return;
    }
    let mut conn = ServerConnection::new(Arc::clone(&shared.config)).unwrap();
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            // The client rejected us (or we it): deliver any alert and stop.
            let _ = conn.write_tls(&mut sock);
            return;
        }
    }
    let sni = conn.server_name().map(str::to_string);
    shared.sni_seen.lock().unwrap().push(sni.clone());
    let backend = sni
        .as_deref()
        .and_then(|name| shared.routes.get(name))
        .or(shared.default_backend.as_ref());
    let Some(backend) = backend.copied() else {
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        return;
    };
    let Ok(backend) = TcpStream::connect(backend) else {
        // What haproxy does when the VM's port has no listener: close
        // cleanly, having sent nothing; draining, so that the close is a
        // FIN and not a reset that could overtake the close_notify.
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);
        let _ = sock.shutdown(Shutdown::Write);
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = io::copy(&mut sock, &mut io::sink());
        return;
    };
    // Like a real edge: an ssh keystroke must not wait for Nagle on our hops.
    sock.set_nodelay(true).unwrap();
    backend.set_nodelay(true).unwrap();
    sock.set_nonblocking(true).unwrap();
    backend.set_nonblocking(true).unwrap();
    let _ = Forwarder::new(conn, sock, backend, shared.mode).run();
}

const CLIENT: Token = Token(0);
const BACKEND: Token = Token(1);

/// Relays one session between the TLS client and the plaintext backend.
struct Forwarder {
    conn: ServerConnection,
    client: MioStream,
    backend: MioStream,
    mode: Mode,
    to_backend: Vec<u8>,
    to_client_bytes: u64,
    client_closed: bool,
    backend_shut: bool,
    backend_eof: bool,
    client_shut: bool,
}

impl Forwarder {
    fn new(conn: ServerConnection, client: TcpStream, backend: TcpStream, mode: Mode) -> Self {
        Forwarder {
            conn,
            client: MioStream::from_std(client),
            backend: MioStream::from_std(backend),
            mode,
            to_backend: Vec::new(),
            to_client_bytes: 0,
            client_closed: false,
            backend_shut: false,
            backend_eof: false,
            client_shut: false,
        }
    }

    fn run(mut self) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let both = Interest::READABLE | Interest::WRITABLE;
        poll.registry().register(&mut self.client, CLIENT, both)?;
        poll.registry().register(&mut self.backend, BACKEND, both)?;
        let mut events = Events::with_capacity(8);
        let mut buf = vec![0; 64 * 1024];
        loop {
            let mut progress = true;
            while progress {
                progress = false;
                // Client -> backend.
                if self.to_backend.is_empty() && !self.client_closed {
                    match self.conn.read_tls(&mut self.client) {
                        Ok(0) => {
                            self.client_closed = true;
                            progress = true;
                        }
                        Ok(_) => {
                            self.conn.process_new_packets().map_err(io::Error::other)?;
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                    loop {
                        match self.conn.reader().read(&mut buf) {
                            Ok(0) => {
                                self.client_closed = true;
                                break;
                            }
                            Ok(n) => self.to_backend.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                self.client_closed = true;
                                break;
                            }
                        }
                    }
                }
                if !self.to_backend.is_empty() {
                    match self.backend.write(&self.to_backend) {
                        Ok(n) => {
                            self.to_backend.drain(..n);
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                if self.client_closed && self.to_backend.is_empty() && !self.backend_shut {
                    let _ = self.backend.shutdown(Shutdown::Write);
                    self.backend_shut = true;
                    progress = true;
                }
                // Backend -> client.
                if !self.backend_eof && !self.conn.wants_write() {
                    match self.backend.read(&mut buf) {
                        Ok(0) => {
                            self.backend_eof = true;
                            if self.mode != Mode::NoCloseNotify {
                                self.conn.send_close_notify();
                            }
                            progress = true;
                        }
                        Ok(n) => {
                            let n = match self.mode {
                                Mode::ResetAfter(limit) | Mode::CorruptAfter(limit) => {
                                    let left = limit.saturating_sub(self.to_client_bytes);
                                    n.min(usize::try_from(left).unwrap_or(usize::MAX))
                                }
                                _ => n,
                            };
                            self.conn.writer().write_all(&buf[..n])?;
                            self.to_client_bytes += n as u64;
                            progress = true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                while self.conn.wants_write() {
                    match self.conn.write_tls(&mut self.client) {
                        Ok(_) => progress = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                if let Mode::ResetAfter(limit) = self.mode {
                    if self.to_client_bytes >= limit && !self.conn.wants_write() {
                        reset(&self.client);
                        return Ok(()); // dropping the socket sends the RST
                    }
                }
                if let Mode::CorruptAfter(limit) = self.mode {
                    if self.to_client_bytes >= limit && !self.conn.wants_write() {
                        self.client.write_all(&UNDECRYPTABLE)?;
                        return self.wait_for_close(&mut poll, &mut events);
                    }
                }
                if self.backend_eof && !self.conn.wants_write() && !self.client_shut {
                    let _ = self.client.shutdown(Shutdown::Write);
                    self.client_shut = true;
                }
                if self.client_shut && self.backend_shut {
                    return Ok(());
                }
            }
            poll.poll(&mut events, Some(Duration::from_secs(60)))?;
            if events.is_empty() {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}

impl Forwarder {
    /// Reads the client until it closes, so that closing ours is a FIN and
    /// not a reset that could overtake what was sent last.
    fn wait_for_close(&mut self, poll: &mut Poll, events: &mut Events) -> io::Result<()> {
        let mut buf = [0; 4096];
        loop {
            loop {
                match self.client.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Ok(()),
                }
            }
            poll.poll(events, Some(Duration::from_secs(60)))?;
            if events.is_empty() {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }
}

/// Sets SO_LINGER 0, so that closing the socket sends a TCP RST.
fn reset(sock: &impl AsFd) {
    SockRef::from(sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}
