//! Getting a TCP connection: resolving the name off-thread, then racing the
//! addresses Happy-Eyeballs style (RFC 8305), all within one deadline.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Token, Waker};

use crate::cli::{Config, Family};
use crate::error::{Error, Phase, Result};
use crate::poller::{Poller, ATTEMPT_BASE, RESOLVER};
use crate::target::Host;

/// RFC 8305's recommended delay before trying the next address.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Idle time before the first TCP keepalive probe, and between probes (curl's
/// default): a VM or edge that vanishes without a reset is noticed in minutes,
/// not after Linux's default two hours.
const KEEPALIVE_SECS: libc::c_int = 60;

/// Resolves and connects to the config's connect host and port before `deadline`.
pub fn connect(poller: &mut Poller, config: &Config, deadline: Instant) -> Result<TcpStream> {
    let started = Instant::now();
    let addrs = resolve(poller, config, deadline)?;
    if let Host::Name(name) = &config.connect_host {
        log::debug!(
            "resolved {name} to {} in {:.1?}",
            join(&addrs),
            started.elapsed()
        );
    }
    let (stream, addr) = race(poller, config, interleave(addrs), deadline)?;
    log::info!("connected to {addr} in {:.1?}", started.elapsed());
    set_socket_options(&stream);
    Ok(stream)
}

/// TCP_NODELAY and keepalive, as every connection to the edge has them.
pub(crate) fn set_socket_options(stream: &TcpStream) {
    // Neither option is needed for correctness: a failure is only logged.
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("could not set TCP_NODELAY: {e}");
    }
    if let Err(e) = set_keepalive(stream) {
        log::debug!("could not turn TCP keepalive on: {e}");
    }
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

/// Every address of the connect host of the allowed family; IP literals skip the resolver.
pub(crate) fn resolve(
    poller: &mut Poller,
    config: &Config,
    deadline: Instant,
) -> Result<Vec<SocketAddr>> {
    let port = config.connect_port;
    let addrs = match &config.connect_host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => lookup(poller, config, name, deadline)?,
    };
    let wanted = |addr: &SocketAddr| match config.family {
        Family::Any => true,
        Family::V4 => addr.is_ipv4(),
        Family::V6 => addr.is_ipv6(),
    };
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(wanted).collect();
    if addrs.is_empty() {
        return Err(Error::NoAddress {
            host: config.connect_host.to_string(),
            family: match config.family {
                Family::Any => "",
                Family::V4 => "IPv4 ",
                Family::V6 => "IPv6 ",
            },
        });
    }
    Ok(addrs)
}

/// getaddrinfo blocks, so it runs on a thread that wakes the loop when done;
/// the loop keeps honouring the deadline and stop signals meanwhile. A thread
/// left behind by a timeout ends with the process.
fn lookup(
    poller: &mut Poller,
    config: &Config,
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
    let query = (name.to_string(), config.connect_port);
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
            Ok(answer) => {
                return answer.map_err(|source| Error::Resolve {
                    host: name.to_string(),
                    source,
                })
            }
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(Error::Resolve {
                    host: name.to_string(),
                    source: io::Error::other("the resolver thread failed"),
                })
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if Instant::now() >= deadline {
            return Err(timeout(config, Phase::Resolve));
        }
        poller.wait(Some(deadline))?;
    }
}

/// Orders addresses for the race: families alternate, starting with IPv6 (RFC 8305 §4).
pub(crate) fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
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
            return Err(Error::Connect {
                target: config.target(),
                attempts: failed,
            });
        }
        if now >= deadline {
            return Err(timeout(config, Phase::Connect));
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

pub(crate) fn start_attempt(
    poller: &Poller,
    addr: SocketAddr,
    token: Token,
) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    poller
        .registry()
        .register(&mut stream, token, Interest::WRITABLE)?;
    Ok(stream)
}

/// `Ok(true)` once connected, `Ok(false)` on a spurious wakeup, the error if it failed.
pub(crate) fn attempt_state(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) fn deregister(poller: &Poller, stream: &mut TcpStream) {
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
