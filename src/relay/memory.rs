//! In-memory ends for the pump's tests, in the style of rustls's own: a wire
//! and a local end whose every read and write takes what the test allows
//! (a few bytes, or none: `WouldBlock`), a TLS server on the far side of the
//! wire, and events only where a real edge-triggered poller would give them
//! (after a `WouldBlock`, once the source can move again).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use mio::Registry;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::error::Result;
use crate::relay::local::{Local, Side};
use crate::relay::{Readiness, Source, Tokens, Wire};

/// The name the test certificate is for.
pub(crate) const HOST: &str = "x.vm.vers.sh";

/// Client and server TLS configs for [`HOST`], from a fresh self-signed
/// certificate; the server speaks only `versions`.
pub(crate) fn configs(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    (Arc::new(client), Arc::new(server))
}

/// A fresh client connection to [`HOST`].
pub(crate) fn client(config: &Arc<ClientConfig>) -> ClientConnection {
    ClientConnection::new(Arc::clone(config), ServerName::try_from(HOST).unwrap()).unwrap()
}

/// One way of a byte stream in memory, with its limits for the next calls.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    /// Bytes written, not yet read.
    pub(crate) bytes: VecDeque<u8>,
    /// The most the next writes may add (0: `WouldBlock`).
    pub(crate) room: usize,
    /// The most one read takes.
    pub(crate) chunk: usize,
    /// The writer has ended: reads give `Ok(0)` once `bytes` are read.
    pub(crate) eof: bool,
    /// Reads fail with this once `bytes` are read, writes at once (a reset,
    /// a reader gone).
    pub(crate) error: Option<io::ErrorKind>,
    /// The local end still holds bytes it took, not yet written on (as
    /// Windows' stdout thread may).
    pub(crate) held: bool,
    /// A read or a write met `WouldBlock`: an event is owed when it can move.
    pub(crate) read_blocked: bool,
    pub(crate) write_blocked: bool,
}

impl Pipe {
    fn open() -> Pipe {
        Pipe {
            room: usize::MAX,
            chunk: usize::MAX,
            ..Pipe::default()
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.bytes.is_empty() {
            if let Some(kind) = self.error {
                return Err(kind.into());
            }
            if self.eof {
                return Ok(0);
            }
            self.read_blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = out.len().min(self.bytes.len()).min(self.chunk);
        for (to, from) in out.iter_mut().zip(self.bytes.drain(..n)) {
            *to = from;
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.error {
            return Err(kind.into());
        }
        if self.room == 0 {
            self.write_blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.room);
        self.bytes.extend(&buf[..n]);
        self.room -= n;
        Ok(n)
    }

    /// Whether a blocked reader may read now (an event is owed).
    fn readable(&mut self) -> bool {
        let ready = !self.bytes.is_empty() || self.eof || self.error.is_some();
        if self.read_blocked && ready {
            self.read_blocked = false;
            return true;
        }
        false
    }

    /// Whether a blocked writer may write now.
    fn writable(&mut self) -> bool {
        if self.write_blocked && self.room > 0 {
            self.write_blocked = false;
            return true;
        }
        false
    }
}

/// Both ways of a connection, shared by the two ends.
#[derive(Debug, Clone)]
pub(crate) struct Duplex {
    /// What the session's side sends.
    pub(crate) up: Rc<RefCell<Pipe>>,
    /// What the session's side receives.
    pub(crate) down: Rc<RefCell<Pipe>>,
}

impl Duplex {
    pub(crate) fn new() -> Duplex {
        Duplex {
            up: Rc::new(RefCell::new(Pipe::open())),
            down: Rc::new(RefCell::new(Pipe::open())),
        }
    }
}

/// The session's wire to the edge.
#[derive(Debug)]
pub(crate) struct MemWire(pub(crate) Duplex);

impl Read for MemWire {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.down.borrow_mut().read(out)
    }
}

impl Write for MemWire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.up.borrow_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Wire for MemWire {
    fn wants_write(&self) -> bool {
        false
    }

    fn close(&mut self) {}
}

/// The session's local end: `up` is what the local client sends, `down`
/// what it receives; `down.eof` once the session has ended its writing.
#[derive(Debug)]
pub(crate) struct MemLocal(pub(crate) Duplex);

impl Local for MemLocal {
    fn register(&mut self, _registry: &Registry, _tokens: &Tokens) -> Result<()> {
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.up.borrow_mut().read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.down.borrow_mut().write(buf)
    }

    fn shutdown_write(&mut self, _registry: &Registry) {
        self.0.down.borrow_mut().eof = true;
    }

    fn drained(&self) -> bool {
        !self.0.down.borrow().held
    }

    fn name(&self, side: Side) -> &'static str {
        match side {
            Side::In => "stdin",
            Side::Out => "stdout",
        }
    }
}

/// The events a real poller owes the session now: for each source that met
/// `WouldBlock` and can move again.
pub(crate) fn owed_events(wire: &Duplex, local: &Duplex) -> Vec<(Source, Readiness)> {
    let mut events = Vec::new();
    let readable = Readiness {
        readable: true,
        ..Readiness::default()
    };
    let writable = Readiness {
        writable: true,
        ..Readiness::default()
    };
    if wire.down.borrow_mut().readable() {
        events.push((Source::Edge, readable));
    }
    if wire.up.borrow_mut().writable() {
        events.push((Source::Edge, writable));
    }
    if local.up.borrow_mut().readable() {
        events.push((Source::LocalIn, readable));
    }
    if local.down.borrow_mut().writable() {
        events.push((Source::LocalOut, writable));
    }
    events
}

/// The edge: a rustls server on the far end of a [`Duplex`].
pub(crate) struct Server {
    pub(crate) conn: ServerConnection,
    /// The plaintext it received.
    pub(crate) got: Vec<u8>,
    /// The client's close_notify came.
    pub(crate) closed: bool,
    /// What it found wrong with the client's records (an alert, here).
    pub(crate) failed: Option<rustls::Error>,
}

impl Server {
    pub(crate) fn new(config: &Arc<ServerConfig>) -> Server {
        Server {
            conn: {
                let mut conn = ServerConnection::new(Arc::clone(config)).unwrap();
                conn.set_buffer_limit(None);
                conn
            },
            got: Vec::new(),
            closed: false,
            failed: None,
        }
    }

    /// Takes what the client sent, and writes what it has queued, as far
    /// as the wire takes it.
    pub(crate) fn serve(&mut self, wire: &Duplex) {
        loop {
            let mut sent = std::mem::take(&mut wire.up.borrow_mut().bytes);
            if sent.is_empty() || self.failed.is_some() {
                break;
            }
            let mut sent = &sent.make_contiguous()[..];
            while !sent.is_empty() {
                self.conn.read_tls(&mut sent).unwrap();
                if let Err(e) = self.conn.process_new_packets() {
                    self.failed = Some(e);
                    return;
                }
                self.take_plaintext();
            }
        }
        let mut out = Vec::new();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut out).unwrap();
        }
        wire.down.borrow_mut().bytes.extend(&out);
    }

    fn take_plaintext(&mut self) {
        let mut buf = [0; 16 * 1024];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Queues `bytes` of plaintext to the client.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.conn.writer().write_all(bytes).unwrap();
    }
}
