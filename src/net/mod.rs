//! The process's plumbing below TLS: the one poller, its tokens and waker,
//! stop signals (on Windows, console control events), stdin/stdout as
//! non-blocking ends (on Windows, served by threads), name resolution, and
//! the Happy-Eyeballs race that turns a host into a connected socket.

pub mod connect;
#[cfg(windows)]
pub(crate) mod console;
pub mod poller;
pub(crate) mod resolve;
#[cfg(unix)]
pub(crate) mod signals;
#[cfg(unix)]
pub mod stdio;
#[cfg(any(windows, test))]
pub(crate) mod stdio_threads;
