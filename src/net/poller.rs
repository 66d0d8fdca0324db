//! The process's one `mio::Poll`: waiting with a deadline, with stop signals
//! turned into [`Error::Interrupted`] wherever the wait happens; and every
//! token of the process, in one map, so that no two ranges overlap.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::{Events, Poll, Registry, Token, Waker};

use crate::error::{Error, Result};
use crate::net::connect::MAX_ATTEMPTS;
use crate::net::signals::Signals;

/// Token of the stop signals' pipe.
pub(crate) const SIGNAL: Token = Token(0);
/// Token of the resolver thread's waker.
pub(crate) const RESOLVER: Token = Token(1);
/// Token of the TLS socket once connected.
pub const SOCKET: Token = Token(2);
/// Token of stdin.
pub const STDIN: Token = Token(3);
/// Token of stdout.
pub const STDOUT: Token = Token(4);
/// The tunnel's and the doctor's connection attempts take `ATTEMPT_BASE + i`
/// (the doctor's one per address, however many); `forward` never has these.
pub(crate) const ATTEMPT_BASE: usize = 16;
/// The most mappings one `forward` process serves.
pub(crate) const MAX_MAPPINGS: usize = 1024;
/// `forward`'s listeners take `LISTENER_BASE + i`, for `i` below [`LISTENERS`].
pub(crate) const LISTENER_BASE: usize = 64;
/// The most listeners `forward` has: 127.0.0.1 and ::1 for each mapping.
pub(crate) const LISTENERS: usize = 2 * MAX_MAPPINGS;
/// `forward`'s slot `i` takes the [`SESSION_STRIDE`] tokens from
/// `SESSION_BASE + i * SESSION_STRIDE`; the tunnel and the doctor never have these.
pub(crate) const SESSION_BASE: usize = LISTENER_BASE + LISTENERS;
/// A `forward` slot's tokens: the edge socket, the local socket, then its
/// race's attempts.
pub(crate) const SESSION_STRIDE: usize = 2 + MAX_ATTEMPTS;

/// Events per wait: the tunnel has a handful of descriptors; `forward` may
/// have hundreds of connections busy at once (12 bytes an event on Linux).
const EVENT_CAPACITY: usize = 256;

/// The poll, its event buffer and the stop signals.
#[derive(Debug)]
pub struct Poller {
    poll: Poll,
    events: Events,
    signals: Signals,
    /// The resolver threads' one waker (mio allows one per poll), made when
    /// the first name is looked up.
    resolver: Option<Arc<Waker>>,
}

impl Poller {
    /// Creates the poll and starts taking the stop signals: one `Poller` at a
    /// time in a process, as signal handlers are the process's (a second one
    /// fails while the first lives).
    pub fn new() -> Result<Self> {
        let setup = |what| move |source| Error::Setup { what, source };
        let mut signals = Signals::new().map_err(setup("signal handling"))?;
        let poll = Poll::new().map_err(setup("creating the event loop"))?;
        signals
            .register(poll.registry(), SIGNAL)
            .map_err(setup("registering signals"))?;
        Ok(Poller {
            poll,
            events: Events::with_capacity(EVENT_CAPACITY),
            signals,
            resolver: None,
        })
    }

    /// The waker resolver threads use to say an answer is ready ([`RESOLVER`]).
    pub(crate) fn resolver_waker(&mut self) -> io::Result<Arc<Waker>> {
        if let Some(waker) = &self.resolver {
            return Ok(Arc::clone(waker));
        }
        let waker = Arc::new(Waker::new(self.poll.registry(), RESOLVER)?);
        self.resolver = Some(Arc::clone(&waker));
        Ok(waker)
    }

    /// The registry, for adding sources.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits for events until `deadline` (forever when `None`; not at all when
    /// `deadline` has passed). A stop signal ends the wait with `Interrupted`.
    pub fn wait(&mut self, deadline: Option<Instant>) -> Result<&Events> {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(source) => {
                return Err(Error::Setup {
                    what: "waiting for events",
                    source,
                })
            }
        }
        if self.events.iter().any(|e| e.token() == SIGNAL) {
            if let Some(signal) = self.signals.pending() {
                log::info!("received signal {signal}, stopping");
                return Err(Error::Interrupted { signal });
            }
        }
        Ok(&self.events)
    }
}
