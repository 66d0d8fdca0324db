//! The local end of a session, behind one small interface: stdin and stdout
//! (the ProxyCommand; on Windows, served by a thread each that wakes the
//! loop), a connection `forward` accepted, the doctor's probe. The pump only
//! reads, writes and ends the writing side, and learns readiness from events
//! for the tokens the end registered, or from its threads' wakes.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry};

use crate::error::{Error, Result};
#[cfg(unix)]
use crate::net::stdio::StdFd;
#[cfg(windows)]
use crate::net::stdio_threads::{ThreadReader, ThreadWriter};
use crate::relay::{Readiness, Tokens};

/// Which way through the local end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// What the local end sends (stdin).
    In,
    /// What the local end receives (stdout).
    Out,
}

/// A session's local end: non-blocking reads and writes (`WouldBlock` until
/// an event for its tokens), and the end of writing.
pub(crate) trait Local {
    /// Registers its sources with `registry`: readable with
    /// `tokens.local_in`, writable with `tokens.local_out`.
    fn register(&mut self, registry: &Registry, tokens: &Tokens) -> Result<()>;

    /// Reads what the local side sent; `Ok(0)` at its end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes toward the local side.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Ends our writing, so that the local reader sees EOF; reading goes on.
    fn shutdown_write(&mut self, registry: &Registry);

    /// Whether `side` never makes us wait (a regular file, /dev/null): it
    /// stays ready after a `WouldBlock`, for there will be no event.
    fn never_waits(&self, _side: Side) -> bool {
        false
    }

    /// Whether a person types the input: they have no EOF to give once the
    /// server has finished.
    fn input_is_terminal(&self) -> bool {
        false
    }

    /// Whether the end is one of many (`forward`'s): its idle directions
    /// then give their buffers back.
    fn one_of_many(&self) -> bool {
        false
    }

    /// Whether every byte `write` took has reached the local side (a
    /// thread-fed end still holds some); if not, a wake comes when it has.
    fn drained(&self) -> bool {
        true
    }

    /// What a wake from the thread serving `side` says of it.
    fn woken(&self, side: Side) -> Readiness {
        Readiness {
            readable: side == Side::In,
            writable: side == Side::Out,
            ..Readiness::default()
        }
    }

    /// `side` as an error message names it.
    fn name(&self, side: Side) -> &'static str;
}

/// stdin and stdout: the ProxyCommand's local end.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct Stdio {
    pub(crate) stdin: StdFd,
    pub(crate) stdout: StdFd,
}

#[cfg(unix)]
impl Local for Stdio {
    fn register(&mut self, registry: &Registry, tokens: &Tokens) -> Result<()> {
        let sides = [
            (&mut self.stdin, tokens.local_in, Interest::READABLE),
            (&mut self.stdout, tokens.local_out, Interest::WRITABLE),
        ];
        for (fd, token, interest) in sides {
            fd.register(registry, token, interest)
                .map_err(|source| Error::Stdio {
                    which: fd.name(),
                    source,
                })?;
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stdin.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stdout.write(buf)
    }

    fn shutdown_write(&mut self, registry: &Registry) {
        self.stdout.close(registry);
    }

    fn never_waits(&self, side: Side) -> bool {
        match side {
            Side::In => self.stdin.always_ready(),
            Side::Out => self.stdout.always_ready(),
        }
    }

    fn input_is_terminal(&self) -> bool {
        self.stdin.is_terminal()
    }

    fn name(&self, side: Side) -> &'static str {
        match side {
            Side::In => self.stdin.name(),
            Side::Out => self.stdout.name(),
        }
    }
}

/// stdin and stdout on Windows, where the poller cannot watch them: each
/// served by a thread, which wakes the loop as [`crate::net::poller::Woken`]
/// `Stdin` or `Stdout`.
#[cfg(windows)]
#[derive(Debug)]
pub(crate) struct Stdio {
    pub(crate) stdin: ThreadReader,
    pub(crate) stdout: ThreadWriter,
    /// stdin is a console: a person, who has no EOF to give.
    pub(crate) terminal: bool,
}

#[cfg(windows)]
impl Local for Stdio {
    fn register(&mut self, _registry: &Registry, _tokens: &Tokens) -> Result<()> {
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stdin.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stdout.write(buf)
    }

    fn shutdown_write(&mut self, _registry: &Registry) {
        self.stdout.close();
    }

    fn input_is_terminal(&self) -> bool {
        self.terminal
    }

    fn drained(&self) -> bool {
        self.stdout.drained()
    }

    fn woken(&self, side: Side) -> Readiness {
        Readiness {
            readable: side == Side::In,
            writable: side == Side::Out,
            // Writing failed: the reader has gone, as a poller says of a pipe.
            error: side == Side::Out && self.stdout.failed(),
            ..Readiness::default()
        }
    }

    fn name(&self, side: Side) -> &'static str {
        match side {
            Side::In => "stdin",
            Side::Out => "stdout",
        }
    }
}

/// A connection `forward` accepted.
impl Local for TcpStream {
    fn register(&mut self, registry: &Registry, tokens: &Tokens) -> Result<()> {
        debug_assert_eq!(tokens.local_in, tokens.local_out, "a socket is one source");
        let interest = Interest::READABLE | Interest::WRITABLE;
        registry
            .register(self, tokens.local_in, interest)
            .map_err(|source| Error::Setup {
                what: "registering the local connection",
                source,
            })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    fn shutdown_write(&mut self, _registry: &Registry) {
        if let Err(e) = self.shutdown(Shutdown::Write) {
            log::debug!("shutting down the local connection's write side: {e}");
        }
    }

    fn one_of_many(&self) -> bool {
        true
    }

    fn name(&self, _side: Side) -> &'static str {
        "the local connection"
    }
}
