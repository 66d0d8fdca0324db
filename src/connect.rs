//! Getting a connection to the edge: resolving the name off-thread, racing the
//! addresses Happy-Eyeballs style (RFC 8305), and through a proxy, the CONNECT
//! exchange with it; all within one deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token, Waker};
use rustls::ClientConnection;

use crate::cli::{Config, Family};
use crate::error::{Error, Phase, ProxyPhase, ProxyProblem, Result};
use crate::poller::{Poller, ATTEMPT_BASE, RESOLVER, SOCKET};
use crate::proxy::{self, Progress, Proxy, Route, Scheme};
use crate::target::Host;
use crate::tls;
use crate::transport::Transport;

/// RFC 8305's recommended delay before trying the next address.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Idle time before the first TCP keepalive probe, and between probes (curl's
/// default): a VM or edge that vanishes without a reset is noticed in minutes,
/// not after Linux's default two hours.
const KEEPALIVE_SECS: libc::c_int = 60;

/// Connects to the config's connect host and port before `deadline`: straight
/// there, or, when a proxy applies, to the proxy and through its tunnel.
pub fn connect(poller: &mut Poller, config: &Config, deadline: Instant) -> Result<Transport> {
    let peer = Peer::of(config);
    match &config.route {
        Route::Proxy(proxy) => log::info!("using proxy {proxy}"),
        Route::Exempt { proxy, by } => {
            log::info!("not using proxy {proxy}: {} is in {by}", config.host)
        }
        Route::Direct => {}
    }
    let started = Instant::now();
    let addrs = resolve(poller, config, &peer, deadline)?;
    if let Host::Name(name) = peer.host {
        log::debug!(
            "resolved {name} to {} in {:.1?}",
            join(&addrs),
            started.elapsed()
        );
    }
    let (stream, addr) = race(poller, config, &peer, interleave(addrs), deadline)?;
    log::info!("connected to {addr} in {:.1?}", started.elapsed());
    // Neither option is needed for correctness: a failure is only logged.
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("could not set TCP_NODELAY: {e}");
    }
    if let Err(e) = set_keepalive(&stream) {
        log::debug!("could not turn TCP keepalive on: {e}");
    }
    match peer.proxy {
        None => Ok(Transport::tcp(stream)),
        Some(proxy) => proxy_handshake(poller, stream, proxy, config, deadline),
    }
}

/// Where TCP goes: the edge (after `--connect-to`), or the proxy in front of
/// it; and the words for failing to get there.
struct Peer<'a> {
    host: &'a Host,
    port: u16,
    proxy: Option<&'a Proxy>,
}

impl<'a> Peer<'a> {
    fn of(config: &'a Config) -> Peer<'a> {
        match config.route.proxy() {
            Some(proxy) => Peer {
                host: &proxy.url.host,
                port: proxy.url.port,
                proxy: Some(proxy),
            },
            None => Peer {
                host: &config.connect_host,
                port: config.connect_port,
                proxy: None,
            },
        }
    }

    fn resolve_failed(&self, config: &Config, source: io::Error) -> Error {
        match self.proxy {
            Some(proxy) => proxy_error(config, proxy, ProxyProblem::Resolve(source)),
            None => Error::Resolve {
                host: self.host.to_string(),
                source,
            },
        }
    }

    fn no_address(&self, config: &Config, family: &'static str) -> Error {
        match self.proxy {
            Some(proxy) => proxy_error(config, proxy, ProxyProblem::NoAddress { family }),
            None => Error::NoAddress {
                host: self.host.to_string(),
                family,
            },
        }
    }

    fn unreachable(&self, config: &Config, attempts: Vec<(SocketAddr, io::Error)>) -> Error {
        match self.proxy {
            Some(proxy) => proxy_error(config, proxy, ProxyProblem::Connect(attempts)),
            None => Error::Connect {
                target: config.target(),
                attempts,
            },
        }
    }

    fn timed_out(&self, config: &Config, phase: Phase) -> Error {
        let Some(proxy) = self.proxy else {
            return timeout(config, phase);
        };
        let phase = match phase {
            Phase::Resolve => ProxyPhase::Resolve,
            Phase::Connect => ProxyPhase::Connect,
            Phase::Handshake => ProxyPhase::Handshake,
        };
        let after = config.connect_timeout;
        proxy_error(config, proxy, ProxyProblem::Timeout { phase, after })
    }
}

/// Asks `proxy`, connected on `stream`, for a tunnel to the connect host and
/// port before `deadline`: for an `https://` proxy TLS with it first, then
/// CONNECT and its answer. The exchange is [`proxy::Connect`]'s; this only
/// moves its bytes, waiting on the poller in between.
pub fn proxy_handshake(
    poller: &mut Poller,
    stream: TcpStream,
    proxy: &Proxy,
    config: &Config,
    deadline: Instant,
) -> Result<Transport> {
    let started = Instant::now();
    let setup = |what| move |source| Error::Setup { what, source };
    let addr = stream
        .peer_addr()
        .map_err(setup("reading the proxy's address"))?;
    let mut transport = match proxy.url.scheme {
        Scheme::Http => Transport::tcp(stream),
        Scheme::Https => {
            let tls_config = tls::proxy_client_config(&config.cacerts, &config.proxy_cacerts)?;
            let conn = ClientConnection::new(tls_config, proxy.url.host.server_name())
                .map_err(|source| Error::TlsSetup { source })?;
            Transport::tls(stream, conn)
        }
    };
    poller
        .registry()
        .register(
            &mut transport,
            SOCKET,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(setup("registering the socket"))?;
    let answer = exchange(poller, &mut transport, proxy, config, addr, deadline);
    // The relay registers the transport again, as its own.
    let _ = poller.registry().deregister(&mut transport);
    let leftover = answer?;
    log::info!(
        "proxy opened a tunnel to {} in {:.1?}",
        connect_target(config),
        started.elapsed()
    );
    if !leftover.is_empty() {
        log::debug!(
            "{} tunnel bytes came with the proxy's answer",
            leftover.len()
        );
        transport.unread(leftover);
    }
    Ok(transport)
}

/// Writes the CONNECT request and reads the answer until the tunnel is open;
/// the bytes that came after the answer's header.
fn exchange(
    poller: &mut Poller,
    transport: &mut Transport,
    proxy: &Proxy,
    config: &Config,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<Vec<u8>> {
    let fail = |problem| proxy_error(config, proxy, problem);
    let io_failed = |transport: &Transport, source: io::Error| {
        let tls_error = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        fail(match tls_error {
            Some(tls_error) => ProxyProblem::Tls {
                host: proxy.url.host.to_string(),
                addr,
                source: tls_error.clone(),
            },
            None if transport.is_handshaking() => ProxyProblem::TlsIo { addr, source },
            None => ProxyProblem::Io(source),
        })
    };
    let mut connect = proxy::Connect::new(&proxy.url, &config.connect_host, config.connect_port);
    let mut sent = 0;
    let mut handshaking = transport.is_handshaking();
    let mut buf = [0; 4096];
    loop {
        // Over TLS, rustls keeps the request until its handshake is done.
        while sent < connect.request().len() {
            match transport.write(&connect.request()[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failed(transport, e)),
            }
        }
        match transport.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                return Err(io_failed(transport, e));
            }
            _ => {}
        }
        loop {
            match transport.read(&mut buf) {
                Ok(0) if transport.is_handshaking() => {
                    let closed = io::ErrorKind::UnexpectedEof.into();
                    return Err(fail(ProxyProblem::TlsIo {
                        addr,
                        source: closed,
                    }));
                }
                Ok(0) => return Err(fail(connect.closed())),
                Ok(n) => match connect.receive(&buf[..n]).map_err(fail)? {
                    Progress::NeedMore => {}
                    Progress::Established { leftover } => return Ok(leftover),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failed(transport, e)),
            }
        }
        if handshaking && !transport.is_handshaking() {
            handshaking = false;
            if let Some(session) = transport.proxy_session() {
                log::debug!(
                    "{:?} established with proxy {}",
                    session.protocol_version(),
                    proxy.url.host
                );
            }
        }
        if Instant::now() >= deadline {
            let phase = match transport.is_handshaking() {
                true => ProxyPhase::Handshake,
                false => ProxyPhase::Answer,
            };
            let after = config.connect_timeout;
            return Err(fail(ProxyProblem::Timeout { phase, after }));
        }
        poller.wait(Some(deadline))?;
    }
}

/// The error for `problem` with `proxy`, naming the tunnel's target.
fn proxy_error(config: &Config, proxy: &Proxy, problem: ProxyProblem) -> Error {
    Error::Proxy {
        proxy: proxy.url.to_string(),
        from: proxy.source.name(),
        target: connect_target(config),
        problem: Box::new(problem),
    }
}

/// Where the CONNECT request asks the proxy to connect: `--connect-to`'s
/// target when one applies, as in curl.
fn connect_target(config: &Config) -> String {
    format!("{}:{}", config.connect_host, config.connect_port)
}

/// Turns keepalive on, probing after `KEEPALIVE_SECS` of silence.
fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    for (level, name, value) in [
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_SECS),
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, KEEPALIVE_SECS),
    ] {
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` is a live c_int and `len` is its size; setsockopt
        // only reads it, on a socket this process owns.
        let rc = unsafe { libc::setsockopt(fd, level, name, (&raw const value).cast(), len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Every address of the peer of the allowed family; IP literals skip the resolver.
fn resolve(
    poller: &mut Poller,
    config: &Config,
    peer: &Peer,
    deadline: Instant,
) -> Result<Vec<SocketAddr>> {
    let port = peer.port;
    let addrs = match peer.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => lookup(poller, config, peer, name, deadline)?,
    };
    let wanted = |addr: &SocketAddr| match config.family {
        Family::Any => true,
        Family::V4 => addr.is_ipv4(),
        Family::V6 => addr.is_ipv6(),
    };
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(wanted).collect();
    if addrs.is_empty() {
        let family = match config.family {
            Family::Any => "",
            Family::V4 => "IPv4 ",
            Family::V6 => "IPv6 ",
        };
        return Err(peer.no_address(config, family));
    }
    Ok(addrs)
}

/// getaddrinfo blocks, so it runs on a thread that wakes the loop when done;
/// the loop keeps honouring the deadline and stop signals meanwhile. A thread
/// left behind by a timeout ends with the process.
fn lookup(
    poller: &mut Poller,
    config: &Config,
    peer: &Peer,
    name: &str,
    deadline: Instant,
) -> Result<Vec<SocketAddr>> {
    let waker =
        Arc::new(
            Waker::new(poller.registry(), RESOLVER).map_err(|source| Error::Setup {
                what: "starting the resolver",
                source,
            })?,
        );
    // The thread gets its own handle: if it held the only one, dropping it
    // would close the eventfd and could take the pending wakeup with it.
    let thread_waker = Arc::clone(&waker);
    let (tx, rx) = mpsc::channel();
    let query = (name.to_string(), peer.port);
    thread::Builder::new()
        .name("resolver".into())
        .spawn(move || {
            let answer = query.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
            // The receiver is gone only if the main thread gave up; nothing to do then.
            let _ = tx.send(answer);
            let _ = thread_waker.wake();
        })
        .map_err(|source| Error::Setup {
            what: "starting the resolver",
            source,
        })?;
    loop {
        match rx.try_recv() {
            Ok(answer) => return answer.map_err(|source| peer.resolve_failed(config, source)),
            Err(mpsc::TryRecvError::Disconnected) => {
                let source = io::Error::other("the resolver thread failed");
                return Err(peer.resolve_failed(config, source));
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if Instant::now() >= deadline {
            return Err(peer.timed_out(config, Phase::Resolve));
        }
        poller.wait(Some(deadline))?;
    }
}

/// Orders addresses for the race: families alternate, starting with IPv6 (RFC 8305 §4).
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let (v6, v4): (Vec<_>, Vec<_>) = addrs.into_iter().partition(SocketAddr::is_ipv6);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// Starts a connection to each address in turn, the next one after
/// `ATTEMPT_DELAY` or as soon as one fails; the first to connect wins.
fn race(
    poller: &mut Poller,
    config: &Config,
    peer: &Peer,
    addrs: Vec<SocketAddr>,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr)> {
    let mut pending: Vec<(usize, TcpStream)> = Vec::new();
    let mut failed: Vec<(SocketAddr, io::Error)> = Vec::new();
    let mut next = 0;
    let mut next_start = Instant::now();
    loop {
        let now = Instant::now();
        if next < addrs.len() && (now >= next_start || pending.is_empty()) {
            let addr = addrs[next];
            log::debug!("connecting to {addr}");
            match start_attempt(poller, addr, Token(ATTEMPT_BASE + next)) {
                Ok(stream) => pending.push((next, stream)),
                Err(e) => failed.push((addr, e)),
            }
            next += 1;
            next_start = now + ATTEMPT_DELAY;
            continue;
        }
        if pending.is_empty() {
            return Err(peer.unreachable(config, failed));
        }
        if now >= deadline {
            return Err(peer.timed_out(config, Phase::Connect));
        }
        let wake = if next < addrs.len() {
            next_start.min(deadline)
        } else {
            deadline
        };
        let ready: Vec<usize> = poller
            .wait(Some(wake))?
            .iter()
            .filter_map(|e| e.token().0.checked_sub(ATTEMPT_BASE))
            .collect();
        for index in ready {
            let Some(pos) = pending.iter().position(|(i, _)| *i == index) else {
                continue;
            };
            match attempt_state(&pending[pos].1) {
                Ok(false) => {}
                Ok(true) => {
                    let (_, mut stream) = pending.swap_remove(pos);
                    // Losers are dropped (closed) here; their registrations go with them.
                    deregister(poller, &mut stream);
                    return Ok((stream, addrs[index]));
                }
                Err(e) => {
                    let (_, mut stream) = pending.swap_remove(pos);
                    deregister(poller, &mut stream);
                    log::debug!("{}: {e}", addrs[index]);
                    failed.push((addrs[index], e));
                    next_start = Instant::now();
                }
            }
        }
    }
}

fn start_attempt(poller: &Poller, addr: SocketAddr, token: Token) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    poller
        .registry()
        .register(&mut stream, token, Interest::WRITABLE)?;
    Ok(stream)
}

/// `Ok(true)` once connected, `Ok(false)` on a spurious wakeup, the error if it failed.
fn attempt_state(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn deregister(poller: &Poller, stream: &mut TcpStream) {
    // A failed deregister leaves a registration that dies with the socket.
    let _ = poller.registry().deregister(stream);
}

fn timeout(config: &Config, phase: Phase) -> Error {
    Error::Timeout {
        target: config.target(),
        phase,
        after: config.connect_timeout,
    }
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.ip())
        .map(|ip: IpAddr| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_starts_with_ipv6_and_alternates() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let got = interleave(vec![
            a("1.1.1.1:1"),
            a("2.2.2.2:1"),
            a("[::1]:1"),
            a("3.3.3.3:1"),
        ]);
        assert_eq!(
            got,
            vec![a("[::1]:1"), a("1.1.1.1:1"), a("2.2.2.2:1"), a("3.3.3.3:1")]
        );
    }
}
