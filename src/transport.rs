//! The byte stream the edge's TLS runs over: a TCP connection, straight to the
//! edge or through a proxy, in clear or inside TLS to an `https://` proxy; and
//! the tunnel's first bytes when they arrived with the proxy's answer.
//!
//! It reads and writes like a non-blocking socket (`WouldBlock` when the TCP
//! socket has nothing, or no room), so the relay drives it as it drove the
//! `TcpStream` it replaces, and registers it with the poller the same way.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ClientConnection;

/// A connection to the edge, possibly through a proxy.
#[derive(Debug)]
pub struct Transport {
    stream: TcpStream,
    /// TLS to an `https://` proxy, when there is one.
    proxy_tls: Option<Box<ProxyTls>>,
    /// Tunnel bytes that came with the proxy's answer: `early[early_at..]`
    /// is read before anything else.
    early: Vec<u8>,
    early_at: usize,
}

/// TLS to the proxy: the session, and the write that is still going out.
#[derive(Debug)]
struct ProxyTls {
    conn: ClientConnection,
    /// Plaintext of the last `write` that was taken into `conn` but whose
    /// records did not all reach the socket: the caller was told
    /// `WouldBlock`, and its retry (which starts with these same bytes, as
    /// after a `WouldBlock` from any socket) is answered with this count once
    /// they are out. Nothing is left queued that no later call would flush.
    taken: usize,
}

impl Transport {
    /// TCP to the edge, or to an `http://` proxy.
    pub fn tcp(stream: TcpStream) -> Transport {
        Transport {
            stream,
            proxy_tls: None,
            early: Vec::new(),
            early_at: 0,
        }
    }

    /// TLS to an `https://` proxy over `stream`, with `conn` a fresh client
    /// session for the proxy's name; the handshake runs as it is read and written.
    pub fn tls(stream: TcpStream, conn: ClientConnection) -> Transport {
        Transport {
            proxy_tls: Some(Box::new(ProxyTls { conn, taken: 0 })),
            ..Transport::tcp(stream)
        }
    }

    /// The TLS session with an `https://` proxy, for logging what was negotiated.
    pub fn proxy_session(&self) -> Option<&ClientConnection> {
        self.proxy_tls.as_ref().map(|tls| &tls.conn)
    }

    /// Whether the TLS handshake with the proxy is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.proxy_tls
            .as_ref()
            .is_some_and(|tls| tls.conn.is_handshaking())
    }

    /// Hands back bytes read past the proxy's answer: they are the tunnel's
    /// first, and the next reads return them before anything else.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.early_at == self.early.len(), "unread twice");
        self.early = bytes;
        self.early_at = 0;
    }

    /// The address of the TCP peer: the edge, or the proxy.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Ends our direction: close_notify to an `https://` proxy (best effort:
    /// the edge's own close_notify, inside, is what tells the end of the
    /// data), then the TCP write side.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.proxy_tls {
            tls.conn.send_close_notify();
            if let Err(e) = tls.flush(&mut self.stream) {
                log::debug!("sending close_notify to the proxy: {e}");
            }
        }
        self.stream.shutdown(Shutdown::Write)
    }
}

impl Read for Transport {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.early_at < self.early.len() {
            let n = out.len().min(self.early.len() - self.early_at);
            out[..n].copy_from_slice(&self.early[self.early_at..self.early_at + n]);
            self.early_at += n;
            if self.early_at == self.early.len() {
                self.early = Vec::new();
                self.early_at = 0;
            }
            return Ok(n);
        }
        match &mut self.proxy_tls {
            None => self.stream.read(out),
            Some(tls) => tls.read(&mut self.stream, out),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.proxy_tls {
            None => self.stream.write(buf),
            Some(tls) => tls.write(&mut self.stream, buf),
        }
    }

    /// rustls hands its queued records over as one vector: on plain TCP they
    /// go out in one `writev`, as they did before the transport existed.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.proxy_tls {
            None => self.stream.write_vectored(bufs),
            Some(tls) => {
                let first = bufs.iter().find(|b| !b.is_empty());
                tls.write(&mut self.stream, first.map_or(&[][..], |b| &b[..]))
            }
        }
    }

    /// Sends what TLS to the proxy has queued; `WouldBlock` if the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.proxy_tls {
            None => Ok(()),
            Some(tls) => tls.flush(&mut self.stream),
        }
    }
}

impl ProxyTls {
    fn read(&mut self, stream: &mut TcpStream, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The proxy closed TCP without close_notify. The edge's TLS,
                // inside, tells a truncated session from a finished one.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            // Nothing decrypted is waiting (`reader` said so). Records that
            // must go first (the handshake's first flight) go now.
            self.flush_unless_full(stream)?;
            let eof = self.conn.read_tls(stream)? == 0;
            if let Err(e) = self.conn.process_new_packets() {
                // Best effort: tell the proxy why (rustls queued an alert).
                let _ = self.flush(stream);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages, key updates: sent now if there is room, else
            // by the next write or read.
            self.flush_unless_full(stream)?;
            if eof && self.conn.is_handshaking() {
                return Ok(0);
            }
        }
    }

    fn write(&mut self, stream: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        if self.taken == 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            // Records queued by a read go first, so `taken` counts only ours.
            self.flush(stream)?;
            self.taken = self.conn.writer().write(buf)?;
            if self.taken == 0 {
                // rustls is full: only before the handshake, which the
                // relay's writes never are; the handshake's reads make room.
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        self.flush(stream)?;
        Ok(std::mem::take(&mut self.taken))
    }

    /// [`ProxyTls::flush`], where a full socket is not an error.
    fn flush_unless_full(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        match self.flush(stream) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }

    fn flush(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};

    /// A connected pair: the transport's mio stream and the peer's std stream.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (TcpStream::from_std(client), peer)
    }

    /// Client and server TLS configs for `proxy.test`, from a fresh self-signed certificate.
    fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["proxy.test".to_string()]).unwrap();
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
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        (Arc::new(client), Arc::new(server))
    }

    /// Retries `step` until it stops saying `WouldBlock`, for at most 10 s.
    fn until_ready<T>(mut step: impl FnMut() -> io::Result<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match step() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "still blocked after 10 s");
                    std::thread::yield_now();
                }
                other => return other.unwrap(),
            }
        }
    }

    /// A write whose records do not all fit in the socket is answered
    /// `WouldBlock`, and its retry (the same bytes) with their count once they
    /// are out: every byte reaches the proxy once, none twice, none lost.
    #[test]
    fn writes_over_proxy_tls_survive_a_full_socket_exactly_once() {
        let (client_config, server_config) = configs();
        let (stream, mut peer) = pair();
        let (go, started) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let mut conn = ServerConnection::new(server_config).unwrap();
            while conn.is_handshaking() {
                conn.complete_io(&mut peer).unwrap();
            }
            // Read nothing until the client's socket is full.
            started.recv().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0; 64 * 1024];
            loop {
                let eof = conn.read_tls(&mut peer).unwrap() == 0;
                conn.process_new_packets().unwrap();
                loop {
                    match conn.reader().read(&mut buf) {
                        Ok(0) => return got,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert!(!eof, "TCP EOF without close_notify");
            }
        });
        let name = ServerName::try_from("proxy.test").unwrap();
        let conn = ClientConnection::new(client_config, name).unwrap();
        let mut t = Transport::tls(stream, conn);
        while t.is_handshaking() {
            let mut nothing = [0; 1];
            match t.read(&mut nothing) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => panic!("during the handshake: {other:?}"),
            }
        }
        // Fill the socket: write until a write is refused.
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut sent = Vec::new();
        let mut round = 0u8;
        let refused = loop {
            let mut piece = chunk.clone();
            piece[0] = round;
            match t.write(&piece) {
                Ok(n) => sent.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break piece,
                Err(e) => panic!("{e}"),
            }
            round = round.wrapping_add(1);
            assert!(sent.len() < 256 * 1024 * 1024, "the socket never filled");
        };
        assert!(
            t.proxy_tls.as_ref().unwrap().taken > 0,
            "no write was cut short"
        );
        go.send(()).unwrap();
        let n = until_ready(|| t.write(&refused));
        sent.extend_from_slice(&refused[..n]);
        until_ready(|| t.flush());
        t.shutdown_write().unwrap();
        let got = server.join().unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(
            got == sent,
            "the proxy received other bytes than were written"
        );
    }

    #[test]
    fn early_bytes_come_first_then_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut t = Transport::tcp(TcpStream::from_std(std_stream));
        t.unread(b"early".to_vec());
        peer.write_all(b" later").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let mut buf = [0; 3];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            assert!(std::time::Instant::now() < deadline, "got only {got:?}");
            match t.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"early later");
    }
}
