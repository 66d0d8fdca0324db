//! One direction of a session: where it stands, its bytes on the way, and how
//! many it has passed on. Each direction has its own states: ours ends with
//! close_notify, the server's with its end reaching the local reader.

use crate::relay::buffer::Buffer;

/// Local end -> server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Up {
    /// The local end may still send.
    Open,
    /// The local end has ended; what it sent is still being handed to rustls.
    Draining,
    /// All handed over and close_notify queued; it is being written out.
    Closing,
    /// close_notify is out: our direction is over (TCP stays open, see
    /// `Session::finish_upstream`).
    Closed,
}

/// Server -> local end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Down {
    /// The server may still send.
    Open,
    /// The socket is read no more (TCP EOF, a failure, a rejected record);
    /// what came before is still being written to the local end.
    Draining,
    /// close_notify passed on: the local reader has seen EOF.
    Closed,
}

/// A direction: its state, its bytes in flight and its count.
#[derive(Debug)]
pub(crate) struct Direction<S> {
    pub(crate) state: S,
    /// Read from the source, not yet taken by the sink.
    pub(crate) buf: Buffer,
    /// Bytes the sink has taken.
    pub(crate) moved: u64,
}

impl<S> Direction<S> {
    /// A direction in `state` whose buffer, when `release_when_idle`, is
    /// given back whenever it is idle.
    pub(crate) fn new(state: S, release_when_idle: bool) -> Self {
        Direction {
            state,
            buf: Buffer::new(release_when_idle),
            moved: 0,
        }
    }

    /// The sink took the first `n` pending bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.consume(n);
        self.moved += n as u64;
    }
}
