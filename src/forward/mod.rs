//! `vers-tunnel forward`: local listeners, one or two per mapping, whose
//! every accepted connection gets its own verified TLS connection to its
//! mapping's target, all of them on the one loop.
//!
//! Each connection is a slot (`slots`): first `Dialing` (a [`Race`] over the
//! target's `addresses`), then, through a proxy, `Proxying` (the CONNECT
//! exchange), then `Relaying` (a [`Session`], the same pump as the stdio
//! tunnel's, handshake included). A slot's tokens are its own range, so an
//! event finds its connection by arithmetic; the times connections need the
//! loop without an event are kept in `deadlines`, so a wakeup costs what is
//! due. Whether new clients are accepted is `admission`'s one state; how
//! many fit in the open-files limit is `descriptors`' budget, for all
//! mappings together. A failure ends only that connection, with a reset and
//! one log line (`ending`); the listeners keep serving. Until the handshake
//! is done, a client that leaves ends its connection at once, so it holds no
//! slot and no descriptor. The mappings come from `mapping`, and are
//! resolved and bound in `targets`.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ClientConfig, ClientConnection};

use crate::cli::ForwardConfig;
use crate::error::{Error, Phase, Result};
use crate::net::connect::{self, is_out_of_fds, Hop, Race, RaceState};
use crate::net::poller::{Poller, Woken, LISTENERS, LISTENER_BASE};
use crate::proxy::dial::ProxyDial;
use crate::proxy::transport::Transport;
use crate::relay::{self, Peer, Pump, Session, Tokens};
use crate::tls;

use admission::{Admission, Say};
use deadlines::Deadlines;
use descriptors::{connection_limit, spare_descriptor};
use ending::{Ending, Finished};
use slots::Slab;
use targets::{Listener, Prepared, Target};

mod addresses;
mod admission;
mod deadlines;
mod descriptors;
mod ending;
mod listen;
pub(crate) mod mapping;
mod slots;
mod targets;

/// The first argument that selects this subcommand instead of a tunnel.
pub const SUBCOMMAND: &str = "forward";

/// Listens as `forward` says and serves until a stop signal. Every mapping
/// is resolved and bound before any says it listens.
pub fn run(forward: &ForwardConfig) -> Result<()> {
    let Some(first) = forward.mappings.first() else {
        return Ok(()); // The command line has at least one.
    };
    // The trust options are the command line's, the same for every mapping.
    let tls = tls::client_config(&first.connect.cacerts)?;
    let mut poller = Poller::new()?;
    let registry = poller
        .registry()
        .try_clone()
        .map_err(|source| Error::Setup {
            what: "creating the event loop",
            source,
        })?;
    let Prepared {
        targets,
        listeners,
        attempts,
    } = targets::prepare(&mut poller, &registry, forward)?;
    let max = connection_limit(
        forward.max_connections,
        1 + attempts as u64,
        listeners.len(),
    )?;
    // Made now, so that all the forwarder holds while idle is open once it
    // says it is listening.
    let spare = spare_descriptor().ok();
    for target in &targets {
        target.say_listening();
    }
    log::debug!("at most {max} connections at once");
    let mut forwarder = Forwarder {
        tls,
        targets,
        registry,
        listeners,
        slots: Slab::new(),
        deadlines: Deadlines::default(),
        max,
        admission: Admission::Open,
        starved: Vec::new(),
        busy: Vec::new(),
        spare,
    };
    forwarder.serve(&mut poller)
}

/// Where one accepted connection stands.
#[derive(Debug)]
enum Conn {
    /// Racing for a TCP connection to the edge.
    Dialing {
        local: TcpStream,
        race: Race,
        deadline: Instant,
    },
    /// Connected to the proxy: asking it for a tunnel to the edge.
    Proxying {
        local: TcpStream,
        dial: Box<ProxyDial>,
        /// The proxy's address.
        addr: SocketAddr,
        deadline: Instant,
    },
    /// Handshaking, then relaying.
    Relaying(Box<Session<TcpStream>>),
}

impl Conn {
    /// The local socket while the connection is being set up (the edge's
    /// handshake included), when the client's leaving ends it.
    fn setting_up(&self) -> Option<&TcpStream> {
        match self {
            Conn::Dialing { local, .. } | Conn::Proxying { local, .. } => Some(local),
            Conn::Relaying(session) if session.is_handshaking() => Some(session.local()),
            Conn::Relaying(_) => None,
        }
    }

    /// When the connection next needs the loop without an event.
    fn wake_at(&self) -> Option<Instant> {
        match self {
            Conn::Dialing { race, deadline, .. } => {
                Some(race.wake_at().map_or(*deadline, |at| at.min(*deadline)))
            }
            Conn::Proxying { deadline, .. } => Some(*deadline),
            Conn::Relaying(session) => session.wake_at(),
        }
    }

    /// The accepted socket, to reset (a session's local end is always one here).
    fn into_local(self) -> Option<TcpStream> {
        match self {
            Conn::Dialing { local, .. } | Conn::Proxying { local, .. } => Some(local),
            Conn::Relaying(session) => Some(session.into_local()),
        }
    }
}

/// Whether the client of a connection being set up has gone, as `event` on
/// its socket shows: a reset (an error, a hang-up while our side is not shut,
/// or a peek that fails). An EOF is not leaving: TCP cannot tell a close from
/// a half-close, and a client that shuts its write side having sent nothing
/// may be waiting for a server-first banner (`nc -N HOST PORT </dev/null`).
/// Such a connection is set up as usual, and ends at the first write if the
/// client has really gone; `--connect-timeout` bounds the wait for the edge.
fn client_left(local: &TcpStream, event: &Event) -> bool {
    if event.is_error() || event.is_write_closed() {
        return true;
    }
    if !event.is_read_closed() {
        return false;
    }
    match local.peek(&mut [0]) {
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

/// What a connection keeps from its start to its end, whatever its stage.
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// The mapping it came in on (an index into the forwarder's targets).
    mapping: usize,
    /// The local client.
    from: SocketAddr,
    /// When it was accepted.
    accepted: Instant,
}

#[derive(Debug)]
struct Slot {
    conn: Conn,
    origin: Origin,
    /// The time noted in the forwarder's deadlines for this connection.
    scheduled: Option<Instant>,
}

impl Slot {
    fn new(conn: Conn, origin: Origin) -> Self {
        Slot {
            conn,
            origin,
            scheduled: None,
        }
    }
}

struct Forwarder<'a> {
    tls: Arc<ClientConfig>,
    /// Each mapping's target, in the order given.
    targets: Vec<Target<'a>>,
    /// The poll's registry, owned, so events can be handled while borrowed.
    registry: Registry,
    /// Every mapping's listeners; listener `i` has token `LISTENER_BASE + i`.
    listeners: Vec<Listener>,
    slots: Slab<Slot>,
    /// When connections need the loop without an event.
    deadlines: Deadlines,
    /// Connections at once, for all mappings together.
    max: usize,
    admission: Admission,
    /// Races waiting for a descriptor, retried before new clients are
    /// accepted (they were accepted first).
    starved: Vec<usize>,
    /// Sessions that stopped with work left, to pump again before waiting.
    busy: Vec<usize>,
    /// A descriptor held while accepting and given up to each accepted
    /// connection's edge socket: one accepted with the last free descriptor
    /// would otherwise have none for the edge. Without it, accepting waits,
    /// and the next client waits in the listen queue.
    spare: Option<File>,
}

impl Forwarder<'_> {
    fn serve(&mut self, poller: &mut Poller) -> Result<()> {
        let mut touched: Vec<usize> = Vec::new();
        let mut listener_event = true;
        loop {
            touched.append(&mut self.busy);
            touched.sort_unstable();
            touched.dedup();
            for slot in touched.drain(..) {
                self.pump(slot);
            }
            let now = Instant::now();
            self.expire(now);
            // After the pumps: a connection they ended may make room.
            if listener_event || self.admission.due(now) {
                self.admission = self.admission.retry();
                self.retry_starved();
                if !self.admission.is_paused() {
                    self.accept();
                }
            }
            listener_event = false;
            for target in &mut self.targets {
                target.addrs.refresh(poller, target.config);
            }
            let wait_until = if self.busy.is_empty() {
                self.wake_at()
            } else {
                Some(Instant::now())
            };
            let wakeup = poller.wait(wait_until)?;
            if wakeup.woke(Woken::Resolver) {
                for target in &mut self.targets {
                    target.addrs.take_lookup(target.config);
                }
            }
            for event in wakeup {
                let token = event.token();
                if (LISTENER_BASE..LISTENER_BASE + LISTENERS).contains(&token.0) {
                    if let Some(listener) = self.listeners.get_mut(token.0 - LISTENER_BASE) {
                        listener.ready = true;
                        listener_event = true;
                    }
                } else if let Some(slot) = slots::slot_of(token) {
                    if self.on_event(slot, event) {
                        touched.push(slot);
                    }
                }
            }
        }
    }

    /// Accepts until the listeners are drained, the limit is reached, or
    /// descriptors run out.
    fn accept(&mut self) {
        for i in 0..self.listeners.len() {
            while self.listeners[i].ready {
                if self.slots.live() >= self.max {
                    let (admission, say) = self.admission.full();
                    self.admission = admission;
                    self.say(say);
                    return;
                }
                if self.spare.is_none() {
                    match spare_descriptor() {
                        Ok(file) => self.spare = Some(file),
                        Err(e) if is_out_of_fds(&e) => return self.pause(),
                        // Without a spare, as without this safeguard.
                        Err(e) => log::debug!("keeping a spare descriptor: {e}"),
                    }
                }
                let listener = &self.listeners[i];
                match listener.socket.accept() {
                    Ok((stream, from)) => {
                        // Its edge socket takes the spare's number.
                        self.spare = None;
                        let origin = Origin {
                            mapping: listener.mapping,
                            from,
                            accepted: Instant::now(),
                        };
                        self.start(stream, origin);
                        if self.admission.is_paused() {
                            return; // Its edge connection found no descriptor.
                        }
                        self.admission = self.admission.accepted();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.listeners[i].ready = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if is_out_of_fds(&e) => return self.pause(),
                    // This client gave up while queued; the next may not have.
                    Err(e) if gave_up_while_queued(&e) => {
                        log::debug!("accept: {e}");
                    }
                    // Short of kernel memory: try again in a while, as when
                    // out of descriptors (the listener will not wake us).
                    Err(e) => {
                        log::warn!("accepting connections: {e}; new ones wait");
                        self.admission = self.admission.stalled(Instant::now());
                        return;
                    }
                }
            }
        }
        self.admission = self.admission.drained();
    }

    /// Logs what an admission transition asks to be said.
    fn say(&self, say: Option<Say>) {
        let live = self.slots.live();
        match say {
            Some(Say::AtLimit) => {
                log::warn!("{live} connections open, the --max-connections limit: new ones wait")
            }
            Some(Say::OutOfFds) => {
                log::warn!("out of file descriptors with {live} connections open: new ones wait")
            }
            None => {}
        }
    }

    /// Gives the races that waited for a descriptor another go (they were
    /// accepted first, so they come before new connections).
    fn retry_starved(&mut self) {
        let waiting = std::mem::take(&mut self.starved);
        for (n, &index) in waiting.iter().enumerate() {
            let starved = matches!(
                self.slots.get(index).map(|s| &s.conn),
                Some(Conn::Dialing { race, .. }) if race.is_starved()
            );
            if starved {
                self.step_race(index, &[]);
                if self.admission.is_paused() {
                    self.starved.extend_from_slice(&waiting[n + 1..]);
                    return;
                }
            }
        }
    }

    /// Stops accepting for want of descriptors, saying so once per shortage.
    fn pause(&mut self) {
        let (admission, say) = self.admission.out_of_fds(Instant::now());
        self.admission = admission;
        self.say(say);
    }

    /// Gives an accepted connection a slot and starts its race.
    fn start(&mut self, mut local: TcpStream, origin: Origin) {
        let target = &mut self.targets[origin.mapping];
        log::debug!("connection from {} on {}", origin.from, target.name);
        connect::set_socket_options(&local);
        let index = self.slots.reserve();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(source) = self
            .registry
            .register(&mut local, slots::local_token(index), interest)
        {
            let what = "registering the local connection";
            return self.abort(index, origin, local, Error::Setup { what, source });
        }
        let now = Instant::now();
        let addrs = target.addrs.for_connection(now);
        let hop = Hop::of(target.config);
        let race = Race::new(&hop, addrs, slots::first_attempt_token(index));
        let deadline = now + target.config.connect_timeout;
        let conn = Conn::Dialing {
            local,
            race,
            deadline,
        };
        self.slots.put(index, Slot::new(conn, origin));
        self.step_race(index, &[]);
    }

    /// Routes an event to its slot; whether the slot's session needs a pump.
    fn on_event(&mut self, index: usize, event: &Event) -> bool {
        let Some(slot) = self.slots.get_mut(index) else {
            return false; // An event for a connection that has just ended.
        };
        let local = event.token() == slots::local_token(index);
        if local
            && slot
                .conn
                .setting_up()
                .is_some_and(|s| client_left(s, event))
        {
            self.left(index);
            return false;
        }
        match &mut slot.conn {
            Conn::Dialing { .. } => {
                self.step_race(index, &[event.token()]);
                false
            }
            Conn::Proxying { .. } => {
                self.step_proxy(index);
                false
            }
            Conn::Relaying(session) => {
                session.on_event(event);
                true
            }
        }
    }

    fn step_race(&mut self, index: usize, ready: &[Token]) {
        let Some(Slot {
            conn: Conn::Dialing { race, .. },
            origin,
            ..
        }) = self.slots.get_mut(index)
        else {
            return;
        };
        let target = &mut self.targets[origin.mapping];
        match race.step(&self.registry, ready) {
            RaceState::Won(sock, addr) => self.relay(index, sock, addr),
            RaceState::Running if race.is_starved() => {
                // It waits for a descriptor; accepting more would only add waiters.
                if !self.starved.contains(&index) {
                    self.starved.push(index);
                }
                self.pause();
            }
            RaceState::Running => {}
            RaceState::Lost(attempts) => {
                target.addrs.all_failed();
                let err = Hop::of(target.config).unreachable(target.config, attempts);
                self.fail(index, err);
            }
        }
        self.schedule(index);
    }

    /// The race is won: straight to the edge, the session starts; through a
    /// proxy, the CONNECT exchange comes first.
    fn relay(&mut self, index: usize, mut sock: TcpStream, addr: SocketAddr) {
        connect::set_socket_options(&sock);
        let Some(Slot {
            conn: Conn::Dialing {
                local, deadline, ..
            },
            origin,
            ..
        }) = self.slots.take(index)
        else {
            return;
        };
        let target = &self.targets[origin.mapping];
        let edge = slots::edge_token(index);
        let Some(link) = &target.proxy else {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(source) = self.registry.register(&mut sock, edge, interest) {
                let what = "registering the socket";
                return self.abort(index, origin, local, Error::Setup { what, source });
            }
            let transport = Transport::tcp(sock);
            return self.established(index, origin, local, transport, addr, deadline);
        };
        match ProxyDial::new(&self.registry, sock, edge, link, target.config) {
            Ok(dial) => {
                let conn = Conn::Proxying {
                    local,
                    dial: Box::new(dial),
                    addr,
                    deadline,
                };
                self.slots.put(index, Slot::new(conn, origin));
                self.step_proxy(index);
            }
            Err(e) => self.abort(index, origin, local, e),
        }
    }

    /// Moves the CONNECT exchange on; once the tunnel is open, the slot
    /// becomes a session.
    fn step_proxy(&mut self, index: usize) {
        let Some(Slot {
            conn: Conn::Proxying { dial, .. },
            origin,
            ..
        }) = self.slots.get_mut(index)
        else {
            return;
        };
        let config = self.targets[origin.mapping].config;
        let Some(proxy) = config.route.proxy() else {
            return;
        };
        match dial.step(proxy, config) {
            Ok(true) => {}
            Ok(false) => return self.schedule(index),
            Err(e) => return self.fail(index, e),
        }
        let Some(Slot {
            conn:
                Conn::Proxying {
                    local,
                    dial,
                    addr,
                    deadline,
                },
            origin,
            ..
        }) = self.slots.take(index)
        else {
            return;
        };
        let transport = dial.into_transport();
        self.established(index, origin, local, transport, addr, deadline);
    }

    /// The slot becomes a session over `transport` (registered with the
    /// slot's edge token) and starts its handshake.
    fn established(
        &mut self,
        index: usize,
        origin: Origin,
        local: TcpStream,
        transport: Transport,
        addr: SocketAddr,
        deadline: Instant,
    ) {
        let tokens = Tokens {
            edge: slots::edge_token(index),
            local_in: slots::local_token(index),
            local_out: slots::local_token(index),
        };
        let config = self.targets[origin.mapping].config;
        let server_name = config.host.server_name();
        let tls = match ClientConnection::new(Arc::clone(&self.tls), server_name) {
            Ok(tls) => tls,
            Err(source) => return self.abort(index, origin, local, Error::TlsSetup { source }),
        };
        let peer = Peer {
            host: config.host.to_string(),
            port: config.port,
            addr: Hop::of(config).show(addr),
            connect_timeout: config.connect_timeout,
        };
        let session = Session::new(peer, transport, tls, local, tokens, deadline);
        let conn = Conn::Relaying(Box::new(session));
        self.slots.put(index, Slot::new(conn, origin));
        self.pump(index);
    }

    fn pump(&mut self, index: usize) {
        let Some(Slot {
            conn: Conn::Relaying(session),
            origin,
            ..
        }) = self.slots.get_mut(index)
        else {
            return;
        };
        match session.pump(&self.registry) {
            Ok(Pump::Idle) => {}
            Ok(Pump::Busy) => self.busy.push(index),
            Ok(Pump::Over(why)) => {
                log::debug!("connection from {} over: {}", origin.from, why.words());
                let ending = if why == relay::Ending::ReaderGone {
                    Ending::ResetByClient
                } else {
                    Ending::Clean
                };
                let (origin, totals) = (*origin, (session.sent(), session.received()));
                self.finished(origin, totals, ending);
                self.release(index);
            }
            Err(e) => self.fail(index, e),
        }
        self.schedule(index);
    }

    /// Notes in the deadlines when slot `index` next needs the loop, if
    /// that changed; the time noted before, if any, goes stale.
    fn schedule(&mut self, index: usize) {
        let generation = self.slots.generation(index);
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let at = slot.conn.wake_at();
        if at == slot.scheduled {
            return;
        }
        slot.scheduled = at;
        if let (Some(at), Some(generation)) = (at, generation) {
            self.deadlines.push(at, index, generation);
        }
    }

    /// Whether a time in the deadlines is still slot `index`'s.
    fn is_current(slots: &Slab<Slot>, at: Instant, index: usize, generation: u64) -> bool {
        slots.generation(index) == Some(generation)
            && slots
                .get(index)
                .is_some_and(|slot| slot.scheduled == Some(at))
    }

    /// Handles the connections whose time has come: a connect phase past
    /// its deadline times out, a race's next attempt starts.
    fn expire(&mut self, now: Instant) {
        let slots = &self.slots;
        let due = self.deadlines.due(now, |at, index, generation| {
            Self::is_current(slots, at, index, generation)
        });
        for index in due {
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            slot.scheduled = None;
            let config = self.targets[slot.origin.mapping].config;
            let expired = match &slot.conn {
                Conn::Dialing { deadline, race, .. } => {
                    if now >= *deadline {
                        let hop = Hop::of(config);
                        Some(hop.timed_out(config, Phase::Connect))
                    } else {
                        if race.wake_at().is_some_and(|at| now >= at) {
                            self.step_race(index, &[]);
                        }
                        None
                    }
                }
                Conn::Proxying { dial, deadline, .. } => config
                    .route
                    .proxy()
                    .filter(|_| now >= *deadline)
                    .map(|proxy| dial.timed_out(proxy, config)),
                Conn::Relaying(session) => session.check_deadline(now).err(),
            };
            match expired {
                Some(e) => self.fail(index, e),
                None => self.schedule(index),
            }
        }
    }

    /// The earliest time something must happen without an event.
    fn wake_at(&mut self) -> Option<Instant> {
        let slots = &self.slots;
        let next = self
            .deadlines
            .next(|at, index, generation| Self::is_current(slots, at, index, generation));
        let retry = self.admission.wake_at(Instant::now());
        next.into_iter().chain(retry).min()
    }

    /// Ends a connection that failed: its line, and a reset for the local
    /// client, which must not take a truncated stream for a whole one.
    fn fail(&mut self, index: usize, err: Error) {
        let Some(slot) = self.slots.take(index) else {
            return;
        };
        let (totals, established) = match &slot.conn {
            Conn::Relaying(session) => (
                (session.sent(), session.received()),
                !session.is_handshaking(),
            ),
            _ => ((0, 0), false),
        };
        self.finished(slot.origin, totals, Ending::of_failure(&err, established));
        if let Some(local) = slot.conn.into_local() {
            reset(&local);
        }
        self.release(index);
    }

    /// Ends a connection whose client left while it was being set up. A
    /// client that only half-closed, having sent nothing, gets a reset: it
    /// must not take the end for the service's answer.
    fn left(&mut self, index: usize) {
        let Some(slot) = self.slots.take(index) else {
            return;
        };
        let totals = match &slot.conn {
            Conn::Relaying(session) => (session.sent(), session.received()),
            _ => (0, 0),
        };
        self.finished(slot.origin, totals, Ending::LeftDuringSetup);
        if let Some(local) = slot.conn.into_local() {
            reset(&local);
        }
        self.release(index);
    }

    /// [`Forwarder::fail`] for a connection being set up, out of its slot.
    fn abort(&mut self, index: usize, origin: Origin, local: TcpStream, err: Error) {
        self.finished(origin, (0, 0), Ending::SetupFailed(&err));
        reset(&local);
        drop(local);
        self.release(index);
    }

    /// Says how a connection ended: its one line.
    fn finished(&self, origin: Origin, totals: (u64, u64), ending: Ending) {
        Finished {
            mapping: &self.targets[origin.mapping].name,
            from: origin.from,
            lasted: origin.accepted.elapsed(),
            totals,
            ending,
        }
        .log();
    }

    /// Frees the slot of an ended connection; accepting resumes if it waited
    /// (at the next turn of the loop: a failure while accepting would recurse).
    fn release(&mut self, index: usize) {
        self.slots.release(index);
        self.admission = self.admission.freed(Instant::now());
    }
}

impl Drop for Forwarder<'_> {
    /// A stop signal ends every connection mid-stream: a reset, so that no
    /// client takes what it got for the whole stream.
    fn drop(&mut self) {
        for slot in self.slots.drain() {
            if let Some(local) = slot.conn.into_local() {
                reset(&local);
            }
        }
    }
}

/// Whether `accept` failed for the connection it took, not the listener: its
/// client gave up (or a firewall refused it) while it was queued.
fn gave_up_while_queued(e: &io::Error) -> bool {
    #[cfg(unix)]
    let codes = [libc::ECONNABORTED, libc::EPROTO, libc::EPERM];
    #[cfg(windows)]
    let codes = {
        use windows_sys::Win32::Networking::WinSock as ws;
        [ws::WSAECONNABORTED, ws::WSAECONNRESET, ws::WSAEACCES]
    };
    e.raw_os_error().is_some_and(|code| codes.contains(&code))
}

/// Makes the coming close a reset (SO_LINGER 0) rather than a FIN.
fn reset(stream: &TcpStream) {
    #[cfg(unix)]
    let (level, name, linger) = (
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    #[cfg(windows)]
    let (level, name, linger) = {
        use windows_sys::Win32::Networking::WinSock as ws;
        let linger = ws::LINGER {
            l_onoff: 1,
            l_linger: 0,
        };
        (ws::SOL_SOCKET, ws::SO_LINGER, linger)
    };
    if let Err(e) = connect::set_option(stream, level, name, linger) {
        log::debug!("could not arrange a reset: {e}");
    }
}
