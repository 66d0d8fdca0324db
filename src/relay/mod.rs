//! The pump: one TLS session with the edge and its local end, moving bytes
//! whenever they can move and deciding when the session is over. The tunnel,
//! every `forward` connection and the doctor run it; the local end is any
//! [`local::Local`] (stdin/stdout, an accepted connection, the doctor's probe).
//!
//! - `session`: the [`Session`] and its loop for the stdio tunnel ([`run`]).
//! - [`channel`]: rustls over the wire, one record at a time ([`records`]);
//!   TLS to an `https://` proxy runs on it too.
//! - [`direction`]: each direction's state, bytes in flight ([`buffer`]) and count.
//! - [`outcome`]: what the end of the server's side means, decided once.
//!
//! Readiness is tracked in flags that events set and `WouldBlock` clears, so
//! each source is registered once (edge-triggered) and never re-registered.
//! Events come in as [`Readiness`] for a [`Source`], so the pump runs as well
//! on a sequence of them as on a poller's.

pub(crate) mod buffer;
pub(crate) mod channel;
pub(crate) mod direction;
pub(crate) mod local;
pub(crate) mod outcome;
mod records;
mod session;

#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::time::Duration;

use mio::event::Event;
use mio::Token;

use crate::error::Hop;
use crate::proxy::transport::Transport;
use crate::target::ShownAddr;

pub(crate) use session::{run, Session};

/// The far end of a session, described once for every message about it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The name the certificate is verified for, as messages show it.
    pub(crate) host: String,
    /// The port on the VM, as the user named it.
    pub(crate) port: u16,
    /// The address the TCP connection reached (the proxy's, through one).
    pub(crate) addr: ShownAddr,
    /// The connect timeout in force.
    pub(crate) connect_timeout: Duration,
}

impl Peer {
    /// `host:port` as the user named it.
    pub(crate) fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The edge, as messages name it.
    pub(crate) fn hop(&self) -> Hop {
        Hop::Edge {
            target: self.target(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Peer {
        Peer {
            host: "x.vm.vers.sh".into(),
            port: 443,
            addr: ShownAddr::new(([192, 0, 2, 1], 443).into(), false),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The byte stream the session's TLS runs over: [`Transport`] (TCP, or TLS
/// to a proxy), or a wire in memory in tests.
pub(crate) trait Wire: Read + Write {
    /// Whether a layer below (TLS to a proxy) holds records not yet out;
    /// `flush` sends them.
    fn wants_write(&self) -> bool;

    /// Ends the layer below, once the session is over both ways.
    fn close(&mut self);
}

impl Wire for Transport {
    fn wants_write(&self) -> bool {
        Transport::wants_write(self)
    }

    fn close(&mut self) {
        Transport::close(self);
    }
}

/// The tokens a session's sources are registered with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens {
    /// The TCP connection to the edge.
    pub(crate) edge: Token,
    /// The local source (stdin, or the accepted socket).
    pub(crate) local_in: Token,
    /// The local sink (stdout, or the accepted socket again).
    pub(crate) local_out: Token,
}

/// Which of a session's sources an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Edge,
    LocalIn,
    LocalOut,
}

/// What an event says of a source.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) read_closed: bool,
    pub(crate) write_closed: bool,
    pub(crate) error: bool,
}

impl From<&Event> for Readiness {
    fn from(event: &Event) -> Self {
        Readiness {
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            write_closed: event.is_write_closed(),
            error: event.is_error(),
        }
    }
}

/// What a call to [`Session::pump`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pump {
    /// Nothing more can move until an event comes.
    Idle,
    /// It stopped with work still possible, to let other events in.
    Busy,
    /// The session is over, cleanly.
    Over(Ending),
}

/// How a session ended cleanly (a failure is an [`Error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Both directions closed with close_notify.
    BothClosed,
    /// The process reading our stdout (or the local client) went away.
    ReaderGone,
    /// The server finished its direction, then closed or reset the connection.
    ServerClosed,
    /// The server finished, and a person at a terminal has no EOF to give.
    TerminalDone,
}

impl Ending {
    /// Why the session is over, in words for `-v`.
    pub(crate) fn words(self) -> &'static str {
        match self {
            Ending::BothClosed => "both directions closed cleanly",
            Ending::ReaderGone => "the local reader went away",
            Ending::ServerClosed => "the server finished its direction and closed the connection",
            Ending::TerminalDone => "the server finished and stdin is a terminal",
        }
    }
}
