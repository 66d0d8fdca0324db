//! The process's plumbing below TLS: the one poller and its tokens, stop
//! signals, stdin/stdout as non-blocking ends, name resolution, and the
//! Happy-Eyeballs race that turns a host into a connected socket.

pub mod connect;
pub mod poller;
pub(crate) mod resolve;
pub(crate) mod signals;
pub mod stdio;
