//! Network faults made on loopback: listeners that black-hole SYNs, a port
//! that refuses, raw TCP servers that misbehave before TLS, and a relay that
//! sends each connection somewhere else.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// How long the kernel may take to queue the connections that fill a black hole.
const FILL: Duration = Duration::from_secs(10);

/// A listener whose accept queue is full and never drained: the kernel drops
/// further SYNs, so a connection attempt to it hangs like one to a black hole.
#[cfg(target_os = "linux")]
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<Socket>,
}

#[cfg(target_os = "linux")]
impl BlackHole {
    /// A black hole at `addr` (port 0 for any); `None` if the port is taken.
    pub fn bind(addr: SocketAddr) -> Option<BlackHole> {
        let listener = Socket::from(std::net::TcpListener::bind(addr).ok()?);
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // The smallest backlog.
        listener.listen(0).unwrap();
        // The kernel drops SYNs once the queue holds more than the backlog.
        let (_, backlog) = accept_queue(&listener);
        let fillers = (0..=backlog).map(|_| connect_nonblocking(addr)).collect();
        super::wait_until(FILL, &format!("the accept queue of {addr} to fill"), || {
            let (queued, backlog) = accept_queue(&listener);
            queued > backlog
        });
        Some(BlackHole {
            addr,
            _listener: listener,
            _fillers: fillers,
        })
    }
}

/// A listening socket's accept queue: (connections waiting to be accepted,
/// the backlog), which Linux reports in `TCP_INFO` for listeners (as
/// `tcpi_unacked` and `tcpi_sacked`; `ss -l` shows them as Recv-Q and Send-Q).
/// socket2 has no `TCP_INFO`, hence the one raw getsockopt.
#[cfg(target_os = "linux")]
fn accept_queue(listener: &Socket) -> (u32, u32) {
    // SAFETY: all-zero is a valid tcp_info.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
    const TCP_LISTEN: u8 = 10; // include/net/tcp_states.h
    assert_eq!(info.tcpi_state, TCP_LISTEN, "not a listener");
    (info.tcpi_unacked, info.tcpi_sacked)
}

/// A new TCP socket of `addr`'s family (close-on-exec). Unlike std's
/// listeners it has no `SO_REUSEADDR`, so no other socket can bind a port it
/// binds.
fn tcp_socket(addr: SocketAddr) -> Socket {
    Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).unwrap()
}

/// Starts a non-blocking connect to `addr`; the handshake goes on without us.
fn connect_nonblocking(addr: SocketAddr) -> Socket {
    let socket = tcp_socket(addr);
    socket.set_nonblocking(true).unwrap();
    if let Err(err) = socket.connect(&addr.into()) {
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINPROGRESS),
            "connect: {err}"
        );
    }
    socket
}

/// A port on 127.0.0.1 bound by a socket that never listens: connecting to it
/// is refused, and while it is held nothing else can bind (and listen on) it.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: Socket,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let socket = tcp_socket(any);
        socket.bind(&any.into()).unwrap();
        ClosedPort {
            addr: socket.local_addr().unwrap().as_socket().unwrap(),
            _socket: socket,
        }
    }
}

/// What a raw (non-TLS) server does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Raw {
    /// Reads the ClientHello, then closes the connection.
    CloseAfterHello,
    /// Answers with an HTTP response, as a plain-text port would.
    Http,
    /// Answers the ClientHello with a fatal `handshake_failure` alert, as a
    /// TLS server with nothing in common with the client does.
    HandshakeFailure,
}

/// A TLS 1.2 record: a fatal (2) `handshake_failure` (40) alert.
const HANDSHAKE_FAILURE: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// A raw TCP server on 127.0.0.1 behaving as `raw` for every connection.
pub fn raw_server(raw: Raw) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut hello = [0; 512];
                let _ = stream.read(&mut hello);
                let answer: &[u8] = match raw {
                    Raw::CloseAfterHello => b"",
                    Raw::Http => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                    Raw::HandshakeFailure => &HANDSHAKE_FAILURE,
                };
                let _ = stream.write_all(answer);
                // Drain, so that closing sends FIN rather than RST.
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = io::copy(&mut stream, &mut io::sink());
            });
        }
    });
    addr
}

/// A relay on 127.0.0.1 whose n-th connection goes to `to[n]` (later ones
/// to the last), byte for byte both ways, half-closes passed on: one
/// address behind which each connection meets a different server.
pub fn turns(to: Vec<SocketAddr>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            if let Ok(client) = client {
                splice(client, to[n.min(to.len() - 1)]);
            }
        }
    });
    addr
}

/// Connects to `to` and relays between it and `client`, byte for byte both
/// ways, half-closes passed on, on threads of their own.
pub fn splice(client: TcpStream, to: SocketAddr) {
    let Ok(server) = TcpStream::connect(to) else {
        return;
    };
    for (from, into) in [(&client, &server), (&server, &client)] {
        let (mut from, mut into) = (from.try_clone().unwrap(), into.try_clone().unwrap());
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut into);
            let _ = into.shutdown(Shutdown::Write);
        });
    }
}
