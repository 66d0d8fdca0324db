//! One direction of a session: where it stands, its bytes on the way, and how
//! many it has passed on. Each direction has its own states: ours ends with
//! close_notify, the server's with its end reaching the local reader. Ours
//! holds what the local end sent in a [`Buffer`] until rustls takes it; the
//! server's plaintext stays in rustls's buffer until the local end takes it
//! from there (`Channel::plaintext`), which saves copying each byte once more.

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

/// A direction: its state, its bytes in flight (`B`: a [`Buffer`] for ours,
/// nothing for the server's, whose bytes rustls holds) and its count.
#[derive(Debug)]
pub(crate) struct Direction<S, B = ()> {
    pub(crate) state: S,
    /// Read from the source, not yet taken by the sink.
    pub(crate) buf: B,
    /// Bytes the sink has taken.
    pub(crate) moved: u64,
}

impl<S, B> Direction<S, B> {
    /// A direction in `state` whose bytes in flight wait in `buf`.
    pub(crate) fn new(state: S, buf: B) -> Self {
        Direction {
            state,
            buf,
            moved: 0,
        }
    }
}

impl<S> Direction<S, Buffer> {
    /// The sink took the first `n` pending bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.consume(n);
        self.moved += n as u64;
    }
}
