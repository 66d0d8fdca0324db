//! Getting a connection to the edge: resolving the name off-thread, racing the
//! addresses Happy-Eyeballs style (RFC 8305), and through a proxy, the CONNECT
//! exchange with it ([`crate::proxy::dial`]); all within one deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::cli::{Config, Family};
use crate::error::{self, Error, Phase, Result};
use crate::net::poller::{Poller, Woken, ATTEMPT_BASE};
use crate::net::resolve;
use crate::proxy::dial;
use crate::proxy::transport::Transport;
use crate::proxy::{Proxy, Route};
use crate::target::{Host, ShownAddr};

/// RFC 8305's recommended delay before trying the next address.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Idle time before the first TCP keepalive probe, and between probes (curl's
/// default): a VM or edge that vanishes without a reset is noticed in minutes,
/// not after Linux's default two hours.
const KEEPALIVE_SECS: libc::c_int = 60;

/// Connects to the config's connect host and port before `deadline`: straight
/// there, or, when a proxy applies, to the proxy and through its tunnel.
pub fn connect(poller: &mut Poller, config: &Config, deadline: Instant) -> Result<Transport> {
    log_route(config);
    let hop = Hop::of(config);
    let started = Instant::now();
    let addrs = resolve(poller, config, deadline)?;
    if let Host::Name(name) = hop.host {
        log::debug!(
            "resolved {name} to {} in {:.1?}",
            join(&addrs),
            started.elapsed()
        );
    }
    let (stream, addr) = race(poller, config, addrs, deadline)?;
    log::info!(
        "connected to {} in {:.1?}",
        hop.show(addr),
        started.elapsed()
    );
    set_socket_options(&stream);
    match hop.proxy {
        None => Ok(Transport::tcp(stream)),
        Some(proxy) => dial::open(poller, stream, proxy, config, deadline),
    }
}

/// Says at `-v` which proxy is used and where it came from (password hidden):
/// the tunnel at each connection, `forward` once at start.
pub(crate) fn log_route(config: &Config) {
    match &config.route {
        Route::Proxy(proxy) => log::info!("using proxy {proxy}"),
        Route::Exempt { proxy, by } => {
            log::info!("not using proxy {proxy}: {} is in {by}", config.host)
        }
        Route::Direct => {}
    }
}

/// Where TCP goes: the edge (after `--connect-to`), or the proxy in front of
/// it; and the words for failing to get there.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The host to resolve and connect to.
    pub(crate) host: &'a Host,
    /// Its port.
    pub(crate) port: u16,
    /// The proxy, when it is one.
    pub(crate) proxy: Option<&'a Proxy>,
}

impl<'a> Hop<'a> {
    /// The first hop of `config`'s route.
    pub fn of(config: &'a Config) -> Hop<'a> {
        match config.route.proxy() {
            Some(proxy) => Hop {
                host: &proxy.url.host,
                port: proxy.url.port,
                proxy: Some(proxy),
            },
            None => Hop {
                host: &config.connect_host,
                port: config.connect_port,
                proxy: None,
            },
        }
    }

    /// `addr` (one of this hop's) as every message shows it: without its
    /// port when the proxy URL's port may be the start of its password.
    pub fn show(&self, addr: SocketAddr) -> ShownAddr {
        match self.proxy {
            Some(proxy) => proxy.show(addr),
            None => ShownAddr::new(addr, false),
        }
    }

    /// How messages name this hop.
    pub(crate) fn name(&self, config: &Config) -> error::Hop {
        match self.proxy {
            Some(proxy) => dial::name(config, proxy),
            None => error::Hop::Edge {
                target: config.target(),
            },
        }
    }

    /// The name did not resolve.
    pub(crate) fn resolve_failed(&self, config: &Config, source: io::Error) -> Error {
        Error::Resolve {
            hop: self.name(config),
            host: self.host.to_string(),
            source,
        }
    }

    fn no_address(&self, config: &Config, family: &'static str) -> Error {
        Error::NoAddress {
            hop: self.name(config),
            host: self.host.to_string(),
            family,
        }
    }

    /// Every address failed.
    pub(crate) fn unreachable(
        &self,
        config: &Config,
        attempts: Vec<(SocketAddr, io::Error)>,
    ) -> Error {
        Error::Connect {
            hop: self.name(config),
            attempts,
        }
    }

    /// The connect phase ran out of time in `phase`.
    pub(crate) fn timed_out(&self, config: &Config, phase: Phase) -> Error {
        Error::Timeout {
            hop: self.name(config),
            phase,
            after: config.connect_timeout,
        }
    }
}

/// TCP_NODELAY (ssh keystrokes must not wait for Nagle) and keepalive, as
/// every connection to the edge has them. Neither is needed for correctness:
/// a failure is only logged.
pub(crate) fn set_socket_options(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("could not set TCP_NODELAY: {e}");
    }
    if let Err(e) = set_keepalive(stream) {
        log::debug!("could not turn TCP keepalive on: {e}");
    }
}

/// The socket options keepalive takes, by their names on each platform.
#[cfg(unix)]
mod sockopt {
    pub(super) use libc::{c_int, IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPINTVL};
    /// The option that sets the idle time before the first probe: Linux
    /// calls it `TCP_KEEPIDLE`, Apple's platforms `TCP_KEEPALIVE`.
    #[cfg(not(target_vendor = "apple"))]
    pub(super) const TCP_KEEPALIVE_IDLE: c_int = libc::TCP_KEEPIDLE;
    #[cfg(target_vendor = "apple")]
    pub(super) const TCP_KEEPALIVE_IDLE: c_int = libc::TCP_KEEPALIVE;
}
#[cfg(windows)]
mod sockopt {
    /// Windows 10 (1709) and later take the idle time and interval as options.
    pub(super) use windows_sys::Win32::Networking::WinSock::{
        IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPIDLE as TCP_KEEPALIVE_IDLE, TCP_KEEPINTVL,
    };
}

/// Turns keepalive on, probing after `KEEPALIVE_SECS` of silence.
fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    use sockopt::{IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPALIVE_IDLE, TCP_KEEPINTVL};
    for (level, name, value) in [
        (SOL_SOCKET, SO_KEEPALIVE, 1),
        (IPPROTO_TCP, TCP_KEEPALIVE_IDLE, KEEPALIVE_SECS),
        (IPPROTO_TCP, TCP_KEEPINTVL, KEEPALIVE_SECS),
    ] {
        set_option(stream, level, name, value)?;
    }
    Ok(())
}

/// `setsockopt` of a plain value: a `c_int` (a DWORD or BOOL to Winsock:
/// the same four bytes), or a `linger`.
pub(crate) fn set_option<T: Copy>(
    stream: &TcpStream,
    level: i32,
    name: i32,
    value: T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>();
    #[cfg(unix)]
    let (socket, setsockopt, len) = (
        std::os::fd::AsRawFd::as_raw_fd(stream),
        libc::setsockopt,
        len as libc::socklen_t,
    );
    #[cfg(windows)]
    let (socket, setsockopt, len) = (
        std::os::windows::io::AsRawSocket::as_raw_socket(stream) as usize,
        windows_sys::Win32::Networking::WinSock::setsockopt,
        len as i32,
    );
    // SAFETY: `value` is a live plain value and `len` its size; setsockopt
    // only reads it, on a socket this process owns.
    if unsafe { setsockopt(socket, level, name, (&raw const value).cast(), len) } != 0 {
        // Winsock's last error is the thread's last error, as std reads it.
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every address of the first hop (the edge, or the proxy) of the allowed
/// family; IP literals skip the resolver.
pub(crate) fn resolve(
    poller: &mut Poller,
    config: &Config,
    deadline: Instant,
) -> Result<Vec<SocketAddr>> {
    let hop = Hop::of(config);
    let addrs = match hop.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, hop.port)],
        Host::Name(name) => lookup(poller, config, &hop, name, deadline)?,
    };
    select(config, &hop, addrs)
}

/// The addresses of the family `-4`/`-6` allows; none is an error naming the host.
pub(crate) fn select(
    config: &Config,
    hop: &Hop,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>> {
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
        return Err(hop.no_address(config, family));
    }
    Ok(addrs)
}

/// A name being looked up on a thread of its own (getaddrinfo blocks), which
/// wakes the loop through the poller's waker when it has the answer.
/// A thread left behind (a timeout, a stop) ends with the process.
#[derive(Debug)]
pub(crate) struct Lookup {
    rx: mpsc::Receiver<io::Result<Vec<SocketAddr>>>,
}

impl Lookup {
    /// Starts looking `name` up, for `port`.
    pub(crate) fn start(poller: &mut Poller, name: &str, port: u16) -> Result<Lookup> {
        let setup = |source| Error::Setup {
            what: "starting the resolver",
            source,
        };
        let wake = poller.waker();
        let (tx, rx) = mpsc::channel();
        let name = name.to_string();
        thread::Builder::new()
            .name("resolver".into())
            .spawn(move || {
                let answer = resolve::lookup(&name, port);
                // The receiver is gone only if the loop gave up; nothing to do then.
                let _ = tx.send(answer);
                let _ = wake.wake(Woken::Resolver);
            })
            .map_err(setup)?;
        Ok(Lookup { rx })
    }

    /// The answer, once it has come.
    pub(crate) fn answer(&self) -> Option<io::Result<Vec<SocketAddr>>> {
        match self.rx.try_recv() {
            Ok(answer) => Some(answer),
            Err(mpsc::TryRecvError::Disconnected) => {
                Some(Err(io::Error::other("the resolver thread failed")))
            }
            Err(mpsc::TryRecvError::Empty) => None,
        }
    }
}

/// Looks `name` up, waiting on the loop so that the deadline and stop
/// signals are honoured meanwhile.
fn lookup(
    poller: &mut Poller,
    config: &Config,
    hop: &Hop,
    name: &str,
    deadline: Instant,
) -> Result<Vec<SocketAddr>> {
    let lookup = Lookup::start(poller, name, hop.port)?;
    loop {
        if let Some(answer) = lookup.answer() {
            return answer.map_err(|source| hop.resolve_failed(config, source));
        }
        if Instant::now() >= deadline {
            return Err(hop.timed_out(config, Phase::Resolve));
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

/// Most connection attempts of one race pending at once; the next address
/// waits until one ends. Attempt `i` takes the race's token `i % MAX_ATTEMPTS`,
/// so two pending attempts may share one: an event on it looks at both.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// A Happy-Eyeballs race over `addrs`, driven by events: each address in
/// turn, the next one after `ATTEMPT_DELAY` or as soon as one fails; the
/// first to connect wins. The stdio tunnel runs one to completion in
/// [`connect`]; `forward` runs one per accepted connection on its loop.
#[derive(Debug)]
pub(crate) struct Race {
    addrs: Vec<SocketAddr>,
    /// `addrs` as messages show them ([`Hop::show`]).
    shown: Vec<ShownAddr>,
    /// Attempts under way: (index into `addrs`, its socket).
    pending: Vec<(usize, TcpStream)>,
    failed: Vec<(SocketAddr, io::Error)>,
    next: usize,
    next_start: Instant,
    /// Attempt `i` is registered as `Token(first_token + i % MAX_ATTEMPTS)`.
    first_token: usize,
    /// The last attempt could not even get a socket (EMFILE/ENFILE): it is
    /// tried again at the next step instead of counting as a failure.
    starved: bool,
}

/// What a step of a [`Race`] came to.
#[derive(Debug)]
pub(crate) enum RaceState {
    /// Still under way.
    Running,
    /// Connected: the socket, deregistered, and the address it reached.
    Won(TcpStream, SocketAddr),
    /// Every address failed; each with its error.
    Lost(Vec<(SocketAddr, io::Error)>),
}

impl Race {
    /// A race over `addrs` (already in the order to try them), the
    /// addresses of `hop`, whose attempts take tokens from `first_token` to
    /// `first_token + MAX_ATTEMPTS - 1`, as many pending at once.
    pub(crate) fn new(hop: &Hop, addrs: Vec<SocketAddr>, first_token: usize) -> Race {
        let addrs = interleave(addrs);
        Race {
            shown: addrs.iter().map(|&addr| hop.show(addr)).collect(),
            addrs,
            pending: Vec::new(),
            failed: Vec::new(),
            next: 0,
            next_start: Instant::now(),
            first_token,
            starved: false,
        }
    }

    /// Whether the race waits for a free descriptor to start its next attempt.
    pub(crate) fn is_starved(&self) -> bool {
        self.starved
    }

    /// Whether `token` belongs to one of this race's attempts.
    fn owns(&self, token: Token) -> bool {
        (self.first_token..self.first_token + MAX_ATTEMPTS).contains(&token.0)
    }

    /// When the race next needs a step though no event came: the next
    /// attempt's start, if one is left to start.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        // A starved race waits for a descriptor to free, not for a time.
        (self.next < self.addrs.len() && self.pending.len() < MAX_ATTEMPTS && !self.starved)
            .then_some(self.next_start)
    }

    /// Starts the attempts that are due and looks at those whose `ready`
    /// tokens fired (any token: others are ignored).
    pub(crate) fn step(&mut self, registry: &Registry, ready: &[Token]) -> RaceState {
        for &token in ready {
            if !self.owns(token) {
                continue;
            }
            let slot = token.0 - self.first_token;
            let mut i = 0;
            while i < self.pending.len() {
                let (index, stream) = &self.pending[i];
                if index % MAX_ATTEMPTS != slot {
                    i += 1;
                    continue;
                }
                let index = *index;
                match attempt_state(stream) {
                    Ok(false) => i += 1,
                    Ok(true) => {
                        let (_, mut stream) = self.pending.swap_remove(i);
                        // The losers close when the race is dropped.
                        deregister(registry, &mut stream);
                        return RaceState::Won(stream, self.addrs[index]);
                    }
                    Err(e) => {
                        let (_, mut stream) = self.pending.swap_remove(i);
                        deregister(registry, &mut stream);
                        log::debug!("{}: {e}", self.shown[index]);
                        self.failed.push((self.addrs[index], e));
                        self.next_start = Instant::now();
                    }
                }
            }
        }
        let now = Instant::now();
        while self.next < self.addrs.len()
            && self.pending.len() < MAX_ATTEMPTS
            && (now >= self.next_start || self.pending.is_empty())
        {
            let index = self.next;
            let addr = self.addrs[index];
            let token = Token(self.first_token + index % MAX_ATTEMPTS);
            log::debug!("connecting to {}", self.shown[index]);
            match start_attempt(registry, addr, token) {
                Ok(stream) => {
                    self.pending.push((index, stream));
                    self.next_start = now + ATTEMPT_DELAY;
                }
                Err(e) if is_out_of_fds(&e) => {
                    // Not this address's fault: it waits for a descriptor.
                    self.starved = true;
                    return RaceState::Running;
                }
                Err(e) => self.failed.push((addr, e)),
            }
            self.starved = false;
            self.next += 1;
        }
        if self.pending.is_empty() && self.next >= self.addrs.len() {
            return RaceState::Lost(std::mem::take(&mut self.failed));
        }
        RaceState::Running
    }
}

/// Runs a [`Race`] over `addrs` on the poller until one connects, all fail or
/// `deadline` passes.
fn race(
    poller: &mut Poller,
    config: &Config,
    addrs: Vec<SocketAddr>,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr)> {
    let mut race = Race::new(&Hop::of(config), addrs, ATTEMPT_BASE);
    let mut ready = Vec::new();
    loop {
        match race.step(poller.registry(), &ready) {
            RaceState::Won(stream, addr) => return Ok((stream, addr)),
            RaceState::Lost(attempts) => return Err(Hop::of(config).unreachable(config, attempts)),
            RaceState::Running => {}
        }
        if Instant::now() >= deadline {
            return Err(Hop::of(config).timed_out(config, Phase::Connect));
        }
        let wake = race.wake_at().map_or(deadline, |at| at.min(deadline));
        ready = poller.wait(Some(wake))?.iter().map(|e| e.token()).collect();
    }
}

/// A non-blocking connection attempt to `addr`, registered for writability.
pub(crate) fn start_attempt(
    registry: &Registry,
    addr: SocketAddr,
    token: Token,
) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    registry.register(&mut stream, token, Interest::WRITABLE)?;
    Ok(stream)
}

/// The process or the system has no descriptor left.
#[cfg(unix)]
pub(crate) fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The process has no socket left (Winsock's EMFILE), or the system no
/// memory for one (its ENOBUFS).
#[cfg(windows)]
pub(crate) fn is_out_of_fds(e: &io::Error) -> bool {
    use windows_sys::Win32::Networking::WinSock::{WSAEMFILE, WSAENOBUFS};
    matches!(e.raw_os_error(), Some(WSAEMFILE | WSAENOBUFS))
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

/// Stops polling `stream`; a failed deregister leaves a registration that
/// dies with the socket.
pub(crate) fn deregister(registry: &Registry, stream: &mut TcpStream) {
    let _ = registry.deregister(stream);
}

/// The addresses' IPs, comma-separated: the port is the hop's, said elsewhere.
pub(crate) fn join(addrs: &[SocketAddr]) -> String {
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
