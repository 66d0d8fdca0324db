//! The process's one `mio::Poll`: waiting with a deadline, with stop signals
//! turned into [`Error::Interrupted`] wherever the wait happens; its one
//! waker, which every thread that has news for the loop shares; and every
//! token of the process, in one map, so that no two ranges overlap.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::event::{Event, Events, Iter};
use mio::{Poll, Registry, Token, Waker};

use crate::error::{Error, Result};
use crate::net::connect::MAX_ATTEMPTS;
#[cfg(windows)]
use crate::net::console::Signals;
#[cfg(unix)]
use crate::net::signals::Signals;

/// Token of the stop signals' pipe (Unix; Windows' console events come
/// through the waker).
#[cfg_attr(windows, allow(dead_code))]
pub(crate) const SIGNAL: Token = Token(0);
/// Token of the loop's one waker ([`Wake`]).
pub(crate) const WAKER: Token = Token(1);
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

/// Who woke the loop through the shared [`Wake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A resolver thread has its answer.
    Resolver = 1,
    /// stdin's thread has bytes, its end or its error (Windows).
    Stdin = 2,
    /// stdout's thread has room again, or failed (Windows).
    Stdout = 4,
    /// A console control event asks us to stop (Windows).
    #[cfg_attr(unix, allow(dead_code))]
    Stop = 8,
}

/// The poll's one waker (mio allows one per poll), shared by every thread
/// that wakes the loop: each sets its [`Woken`] flag first, so the loop
/// knows whom the wake is for.
#[derive(Debug)]
pub(crate) struct Wake {
    waker: Waker,
    woken: AtomicU8,
}

impl Wake {
    /// Wakes the loop on behalf of `who`.
    pub(crate) fn wake(&self, who: Woken) -> io::Result<()> {
        self.woken.fetch_or(who as u8, Ordering::SeqCst);
        self.waker.wake()
    }

    #[cfg(all(test, unix))]
    pub(crate) fn for_tests(waker: Waker) -> Wake {
        Wake {
            waker,
            woken: AtomicU8::new(0),
        }
    }
}

/// What one wait brought: the poll's events, and who woke it through the [`Wake`].
#[derive(Debug)]
pub struct Wakeup<'a> {
    events: &'a Events,
    woken: u8,
}

impl<'a> Wakeup<'a> {
    /// The events, for the sources registered with the poll.
    pub fn iter(&self) -> Iter<'a> {
        self.events.iter()
    }

    /// Whether `who` woke the loop.
    pub(crate) fn woke(&self, who: Woken) -> bool {
        self.woken & who as u8 != 0
    }
}

impl<'a> IntoIterator for Wakeup<'a> {
    type Item = &'a Event;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.events.iter()
    }
}

/// The poll, its event buffer, its waker and the stop signals.
#[derive(Debug)]
pub struct Poller {
    poll: Poll,
    events: Events,
    signals: Signals,
    wake: Arc<Wake>,
}

impl Poller {
    /// Creates the poll and starts taking the stop signals: one `Poller` at a
    /// time in a process, as signal handlers are the process's (a second one
    /// fails while the first lives).
    pub fn new() -> Result<Self> {
        let setup = |what| move |source| Error::Setup { what, source };
        let mut signals = Signals::new().map_err(setup("signal handling"))?;
        let poll = Poll::new().map_err(setup("creating the event loop"))?;
        let wake = Arc::new(Wake {
            waker: Waker::new(poll.registry(), WAKER).map_err(setup("creating the waker"))?,
            woken: AtomicU8::new(0),
        });
        #[cfg(unix)]
        let registered = signals.register(poll.registry(), SIGNAL);
        #[cfg(windows)]
        let registered = signals.register(&wake);
        registered.map_err(setup("registering signals"))?;
        Ok(Poller {
            poll,
            events: Events::with_capacity(EVENT_CAPACITY),
            signals,
            wake,
        })
    }

    /// The waker, for a thread that has news for the loop.
    pub(crate) fn waker(&self) -> Arc<Wake> {
        Arc::clone(&self.wake)
    }

    /// The registry, for adding sources.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Waits for events until `deadline` (forever when `None`; not at all when
    /// `deadline` has passed). A stop signal ends the wait with `Interrupted`.
    pub fn wait(&mut self, deadline: Option<Instant>) -> Result<Wakeup<'_>> {
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
        // Flags are set before the wake, so an event finds every flag that
        // it is for (and perhaps one whose own event is still to come).
        let woken = match self.events.iter().any(|e| e.token() == WAKER) {
            true => self.wake.woken.swap(0, Ordering::SeqCst),
            false => 0,
        };
        let wakeup = Wakeup {
            events: &self.events,
            woken,
        };
        #[cfg(unix)]
        let stop = wakeup.iter().any(|e| e.token() == SIGNAL);
        #[cfg(windows)]
        let stop = wakeup.woke(Woken::Stop);
        if stop {
            if let Some(signal) = self.signals.pending() {
                log::info!("received signal {signal}, stopping");
                return Err(Error::Interrupted { signal });
            }
        }
        Ok(wakeup)
    }
}
