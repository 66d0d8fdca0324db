//! Network faults made on loopback: listeners that black-hole SYNs, a port
//! that refuses, raw TCP servers that misbehave before TLS, and private
//! `/etc` files so a test decides what a name resolves to (e.g. both an IPv6
//! and an IPv4 address).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

/// How long the kernel may take to queue the connections that fill a black hole.
const FILL: Duration = Duration::from_secs(10);

/// A listener whose accept queue is full and never drained: the kernel drops
/// further SYNs, so a connection attempt to it hangs like one to a black hole.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: OwnedFd,
    _fillers: Vec<OwnedFd>,
}

impl BlackHole {
    /// A black hole at `addr` (port 0 for any); `None` if the port is taken.
    pub fn bind(addr: SocketAddr) -> Option<BlackHole> {
        let listener = std::net::TcpListener::bind(addr).ok()?;
        let addr = listener.local_addr().unwrap();
        let listener: OwnedFd = listener.into();
        // SAFETY: listen(2) on a socket we own; the smallest backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
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
fn accept_queue(listener: &OwnedFd) -> (u32, u32) {
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

/// A new TCP socket of `addr`'s family, with extra `flags` (e.g.
/// `SOCK_NONBLOCK`). Unlike std's listeners it has no `SO_REUSEADDR`, so no
/// other socket can bind a port it binds.
fn tcp_socket(addr: SocketAddr, flags: libc::c_int) -> OwnedFd {
    let domain = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: a fresh descriptor nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Starts a non-blocking connect to `addr`; the handshake goes on without us.
fn connect_nonblocking(addr: SocketAddr) -> OwnedFd {
    let fd = tcp_socket(addr, libc::SOCK_NONBLOCK);
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINPROGRESS),
            "connect: {err}"
        );
    }
    fd
}

/// A port on 127.0.0.1 bound by a socket that never listens: connecting to it
/// is refused, and while it is held nothing else can bind (and listen on) it.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: OwnedFd,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let socket = tcp_socket(any, 0);
        let (storage, len) = sockaddr(any);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&storage as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut bound: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: getsockname writes at most `len` bytes into `bound`, an
        // AF_INET socket's address.
        let rc = unsafe {
            libc::getsockname(
                socket.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockname: {}", io::Error::last_os_error());
        ClosedPort {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, u16::from_be(bound.sin_port))),
            _socket: socket,
        }
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough for any sockaddr.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Runs `cmd` in its own mount namespace where `/etc/NAME` is `dir/NAME` for
/// each of `names` (bind mounts, for `cmd` alone): e.g. a `hosts` file, so the
/// test decides what a name resolves to (both families, any order), or a
/// `resolv.conf` naming the test's nameserver. Needs root, as CI and the
/// development machines have.
pub fn with_etc(cmd: &mut Command, dir: &Path, names: &[&str]) {
    let mounts: Vec<(CString, CString)> = names
        .iter()
        .map(|name| {
            let file = dir.join(name);
            (
                CString::new(file.as_os_str().as_bytes()).unwrap(),
                CString::new(format!("/etc/{name}")).unwrap(),
            )
        })
        .collect();
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (unshare, mount) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Keep the bind mounts out of the parent's namespace.
            let private = libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if private != 0 {
                return Err(io::Error::last_os_error());
            }
            for (file, target) in &mounts {
                let bind = libc::mount(
                    file.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                );
                if bind != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// What a raw (non-TLS) server does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Raw {
    /// Reads the ClientHello, then closes the connection.
    CloseAfterHello,
    /// Answers with an HTTP response, as a plain-text port would.
    Http,
}

/// A raw TCP server on 127.0.0.1 behaving as `raw` for every connection.
pub fn raw_server(raw: Raw) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut hello = [0; 512];
                let _ = stream.read(&mut hello);
                if let Raw::Http = raw {
                    let _ =
                        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                }
                // Drain, so that closing sends FIN rather than RST.
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = io::copy(&mut stream, &mut io::sink());
            });
        }
    });
    addr
}
