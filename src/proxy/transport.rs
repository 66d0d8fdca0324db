//! The byte stream the edge's TLS runs over: a TCP connection, straight to the
//! edge or through a proxy, in clear or inside TLS to an `https://` proxy; and
//! the tunnel's first bytes when they arrived with the proxy's answer.
//!
//! It reads and writes like a non-blocking socket, so the relay drives it as
//! it drove the `TcpStream` it replaces, and registers it with the poller the
//! same way. TLS to a proxy runs on the pump's `relay::channel`. One difference
//! from a socket, with TLS to a proxy: a write counts what that TLS session
//! took (up to rustls's buffer limit) even when its records cannot all reach
//! the socket yet; [`Transport::wants_write`] says records wait, and
//! [`Transport::flush`] sends them as the socket makes room.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ClientConnection;

use crate::relay::channel::{Channel, Intake, Plain};
use crate::relay::outcome::End;

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

/// TLS to the proxy, over a socket it is given at each call: the pump's
/// [`Channel`], read and written like a socket.
#[derive(Debug)]
struct ProxyTls {
    channel: Channel,
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
            proxy_tls: Some(Box::new(ProxyTls {
                channel: Channel::new(conn),
            })),
            ..Transport::tcp(stream)
        }
    }

    /// The TLS session with an `https://` proxy, for logging what was negotiated.
    pub fn proxy_session(&self) -> Option<&ClientConnection> {
        self.proxy_tls.as_ref().map(|tls| tls.channel.conn())
    }

    /// Whether the TLS handshake with the proxy is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.proxy_tls
            .as_ref()
            .is_some_and(|tls| tls.channel.is_handshaking())
    }

    /// Whether records to an `https://` proxy wait for room in the socket:
    /// bytes a write has taken are not out until this is false.
    pub fn wants_write(&self) -> bool {
        self.proxy_tls
            .as_ref()
            .is_some_and(|tls| tls.channel.wants_write())
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

    /// Ends TLS with an `https://` proxy (close_notify, best effort: the
    /// edge's own close_notify, inside, is what tells the end of the data),
    /// once the session is over both ways. Never on our half-close: a proxy
    /// may take the end of its TLS for the end of both directions, as squid
    /// and tinyproxy take a TCP FIN. TCP itself ends when the transport is dropped.
    pub fn close(&mut self) {
        if let Some(tls) = &mut self.proxy_tls {
            tls.channel.close();
            if let Err(e) = tls.flush(&mut self.stream) {
                log::debug!("sending close_notify to the proxy: {e}");
            }
        }
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
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// rustls hands its queued records over as one vector: on plain TCP they
    /// go out in one `writev`, as they did before the transport existed.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.proxy_tls {
            None => self.stream.write_vectored(bufs),
            Some(tls) => tls.write(&mut self.stream, bufs),
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
    fn read(&mut self, stream: &mut (impl Read + Write), out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.channel.plaintext() {
                Plain::Data(plain) => {
                    let n = plain.len().min(out.len());
                    out[..n].copy_from_slice(&plain[..n]);
                    self.channel.consume(n);
                    return Ok(n);
                }
                // The proxy closed TLS or TCP. The edge's TLS, inside, tells
                // a truncated session from a finished one.
                Plain::End(End::CloseNotify | End::TcpEof) => return Ok(0),
                Plain::End(End::Io(e)) => return Err(e),
                Plain::End(End::Tls(e)) => {
                    // Best effort: tell the proxy why (rustls queued an alert).
                    let _ = self.flush(stream);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Plain::Empty => {}
            }
            // Nothing decrypted is waiting. Records that must go first (the
            // handshake's first flight) go now.
            self.flush_unless_full(stream)?;
            if !self.channel.wants_read() {
                // Our flight waits for room in the socket.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if self.channel.take(stream) == Intake::Blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // Handshake messages, key updates: sent now if there is room, else
            // by the next write, read or flush.
            self.flush_unless_full(stream)?;
        }
    }

    /// Takes what rustls takes of `bufs` and says so, whether or not its
    /// records reach the socket now (`wants_write` says they wait).
    /// `WouldBlock` only when it took nothing: rustls holds its limit unsent
    /// because the socket is full (or, before the handshake, the handshake's
    /// reads must make room first).
    fn write(
        &mut self,
        stream: &mut (impl Read + Write),
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        // Records already queued go first, to make room.
        self.flush_unless_full(stream)?;
        let taken = self.channel.write_vectored(bufs)?;
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Taken is taken: a broken socket is reported by the next flush, which
        // finds these records still queued, not as a failure of this write.
        if let Err(e) = self.flush_unless_full(stream) {
            log::debug!("sending to the proxy: {e}");
        }
        Ok(taken)
    }

    /// [`ProxyTls::flush`], where a full socket is not an error.
    fn flush_unless_full(&mut self, stream: &mut impl Write) -> io::Result<()> {
        match self.flush(stream) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }

    fn flush(&mut self, stream: &mut impl Write) -> io::Result<()> {
        self.channel.send(stream)
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
    use std::net::{Shutdown, TcpListener};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use rustls::{ClientConfig, ServerConfig};

    use crate::relay::memory::{self, Duplex, MemWire, Server as Proxy};

    fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        memory::configs(rustls::DEFAULT_VERSIONS)
    }

    fn client(config: Arc<ClientConfig>) -> ClientConnection {
        memory::client(&config)
    }

    /// A client session with the proxy, past its handshake over `wire`.
    fn handshaken() -> (ProxyTls, Proxy, MemWire) {
        let (client_config, server_config) = configs();
        let mut tls = ProxyTls {
            channel: Channel::new(client(client_config)),
        };
        let mut proxy = Proxy::new(&server_config);
        let mut wire = MemWire(Duplex::new());
        for _ in 0..10 {
            match tls.read(&mut wire, &mut [0; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("during the handshake: {other:?}"),
            }
            proxy.serve(&wire.0);
            if !tls.channel.is_handshaking() && !proxy.conn.is_handshaking() {
                return (tls, proxy, wire);
            }
        }
        panic!("no handshake in 10 rounds");
    }

    /// Bytes rustls took are reported taken even when the socket breaks as
    /// their records go out: the next flush reports the break, and the caller
    /// never offers those bytes again.
    #[test]
    fn a_write_taken_before_the_socket_breaks_is_reported_taken() {
        let (mut tls, _proxy, mut wire) = handshaken();
        wire.0.up.borrow_mut().error = Some(io::ErrorKind::BrokenPipe);
        let n = tls.write(&mut wire, &[IoSlice::new(b"hello")]).unwrap();
        assert_eq!(n, 5);
        assert!(matches!(tls.flush(&mut wire), Err(e) if e.kind() == io::ErrorKind::BrokenPipe));
    }

    /// A write into a full socket is taken, and says so: the records wait,
    /// and nothing asks the caller to offer the same bytes again.
    #[test]
    fn a_write_rustls_takes_is_reported_taken_even_when_the_socket_is_full() {
        let (mut tls, mut proxy, mut wire) = handshaken();
        wire.0.up.borrow_mut().room = 0;
        let n = tls.write(&mut wire, &[IoSlice::new(b"hello")]).unwrap();
        assert_eq!(n, 5);
        assert!(tls.channel.wants_write(), "the records should wait");
        assert!(matches!(tls.flush(&mut wire), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        wire.0.up.borrow_mut().room = usize::MAX;
        tls.flush(&mut wire).unwrap();
        assert!(!tls.channel.wants_write());
        proxy.serve(&wire.0);
        assert_eq!(proxy.got, b"hello");
    }

    /// Writes offered in pieces of every size against a socket that takes a
    /// few bytes, or none, at each call: `Ok(n)` counts exactly what reaches
    /// the proxy, `WouldBlock` comes only when the socket is full (so an event
    /// will come) and takes nothing; every byte arrives once, in order.
    #[test]
    fn partial_writes_and_would_block_at_every_step_deliver_each_byte_once() {
        let (mut tls, mut proxy, mut wire) = handshaken();
        let data: Vec<u8> = (0..2 * 1024 * 1024u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut at = 0;
        let mut refusals = 0;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        while at < data.len() {
            wire.0.up.borrow_mut().room = [0, 0, 1, 5, 300, 17_000, 70_000][next(7)];
            let len = 1 + next(40_000);
            let end = (at + len).min(data.len());
            let split = at + next(end - at + 1);
            let bufs = [
                IoSlice::new(&data[at..split]),
                IoSlice::new(&data[split..end]),
            ];
            match tls.write(&mut wire, &bufs) {
                Ok(n) => {
                    assert!(n > 0 && n <= end - at, "took {n} of {}", end - at);
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert_eq!(
                        wire.0.up.borrow().room,
                        0,
                        "WouldBlock with room in the socket"
                    );
                    refusals += 1;
                }
                Err(e) => panic!("{e}"),
            }
            if next(3) == 0 {
                match tls.flush(&mut wire) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        assert_eq!(wire.0.up.borrow().room, 0)
                    }
                    other => other.unwrap(),
                }
            }
            if next(4) == 0 {
                proxy.serve(&wire.0);
                assert_eq!(proxy.got[..], data[..proxy.got.len()], "out of order");
            }
        }
        assert!(refusals > 0, "rustls never filled: the test proves nothing");
        wire.0.up.borrow_mut().room = usize::MAX;
        tls.flush(&mut wire).unwrap();
        proxy.serve(&wire.0);
        assert_eq!(proxy.got.len(), data.len());
        assert!(proxy.got == data, "the proxy received other bytes");
        assert!(!proxy.closed);
    }

    /// A connected pair: the transport's mio stream and the peer's std stream.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nonblocking(true).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (TcpStream::from_std(client), peer)
    }

    /// Over a real socket: writes are taken while the socket is full, go out
    /// as it drains, and `close` ends TLS with the proxy with close_notify.
    #[test]
    fn over_a_full_socket_every_byte_arrives_then_close_notify() {
        let (client_config, server_config) = configs();
        let (stream, peer) = pair();
        let (filled, full) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let mut peer = peer;
            let mut proxy = Proxy::new(&server_config);
            while proxy.conn.is_handshaking() {
                proxy.conn.complete_io(&mut peer).unwrap();
            }
            // Read nothing until the client's socket is full.
            let _ = full.recv();
            // A missing close_notify fails the read below instead of hanging.
            peer.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = vec![0; 64 * 1024];
            loop {
                let eof = proxy.conn.read_tls(&mut peer).unwrap() == 0;
                proxy.conn.process_new_packets().unwrap();
                loop {
                    match proxy.conn.reader().read(&mut buf) {
                        Ok(0) => return proxy.got,
                        Ok(n) => proxy.got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert!(!eof, "TCP EOF without close_notify");
            }
        });
        let mut t = Transport::tls(stream, client(client_config));
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.is_handshaking() {
            assert!(Instant::now() < deadline, "no handshake in 10 s");
            match t.read(&mut [0; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => panic!("during the handshake: {other:?}"),
            }
        }
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut sent = Vec::new();
        let mut round = 0u8;
        let mut refused = false;
        while sent.len() < 16 * 1024 * 1024 {
            let mut piece = chunk.clone();
            piece[0] = round;
            match t.write(&piece) {
                Ok(n) => sent.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(t.wants_write());
                    // The first refusal lets the proxy start reading.
                    let _ = filled.send(());
                    refused = true;
                    std::thread::yield_now();
                }
                Err(e) => panic!("{e}"),
            }
            round = round.wrapping_add(1);
            assert!(
                Instant::now() < deadline,
                "sent only {} bytes in 10 s",
                sent.len()
            );
        }
        while t.wants_write() {
            assert!(Instant::now() < deadline, "records still queued after 10 s");
            match t.flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => other.unwrap(),
            }
        }
        drop(filled);
        assert!(refused, "the socket never filled: the test proves nothing");
        t.close();
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
