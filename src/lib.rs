//! vers-tunnel: an OpenSSH `ProxyCommand` that opens verified TLS to a Vers VM's
//! edge (`{vmId}.vm.vers.sh:443`, SNI = the host) and relays stdin/stdout over it.
//!
//! The path of a byte: [`cli`] turns arguments into a [`cli::Mode`] (for the
//! tunnel, a [`cli::Config`]) that `main` runs; [`tls`]
//! builds the trust store; [`net`] resolves and races addresses (of the
//! proxy, when [`proxy`] says one applies, and then asks it for a tunnel) and
//! hands over a [`proxy::transport::Transport`]; `relay`, the one pump, runs
//! the handshake and pumps stdin → TLS → socket and socket → TLS → stdout on
//! the one [`net::poller::Poller`], with [`net::stdio`] for the local ends and
//! [`net::signals`] to stop cleanly. [`error`] says what went wrong and which
//! exit status it gets. [`forward`] runs one such session per accepted
//! connection, on the same loop, and [`doctor`] one with a probe for its local end.
//!
//! Around the tunnel: [`doctor`] checks each of those steps on its own and
//! says which fails, [`ssh`] prints the ssh_config block that uses it (or
//! keeps it in the user's ssh config) and makes its control socket's
//! directory when ssh starts the tunnel,
//! [`version`] says what a build is made of, and [`alloc`] is the global
//! allocator's one adjustment (large blocks on a cache line). Whatever came
//! from the network passes through [`text`] before it is printed.

// The docs are a map of the internals, which are crate-private: read them with
// `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod alloc;
pub mod cli;
pub mod doctor;
pub mod error;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod net;
pub mod proxy;
mod relay;
pub mod ssh;
pub mod target;
pub mod text;
pub mod tls;
mod version;

use std::io::Write;
use std::time::Instant;

use mio::Interest;
use rustls::ClientConnection;

use crate::cli::Config;
use crate::error::{Error, Result};
use crate::relay::local::{Local, Stdio};
use crate::relay::{Peer, Session, Tokens};

/// Opens the tunnel described by `config` and relays until it is over.
pub fn run(config: &Config) -> Result<()> {
    // Before the first byte reaches ssh: ssh binds its control socket in
    // there once it has logged in, which it cannot do before we relay.
    if config.make_ssh_dir {
        ssh::dir::ensure()?;
    }
    // No socket can land on fd 0, 1 or 2: Rust's runtime reopens closed ones
    // on /dev/null before main, and `StdFd::close` never frees them (Unix).
    let tls_config = tls::client_config(&config.cacerts)?;
    let mut poller = net::poller::Poller::new()?;
    let deadline = Instant::now() + config.connect_timeout;
    let sock = net::connect::connect(&mut poller, config, deadline)?;
    let addr = sock.peer_addr().map_err(|source| Error::Setup {
        what: "reading the peer address",
        source,
    })?;
    let tls = ClientConnection::new(tls_config, config.host.server_name())
        .map_err(|source| Error::TlsSetup { source })?;
    let mut sock = sock;
    let registry = poller.registry();
    registry
        .register(
            &mut sock,
            net::poller::SOCKET,
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|source| Error::Setup {
            what: "registering the socket",
            source,
        })?;
    let mut local = stdio(&poller)?;
    let tokens = Tokens {
        edge: net::poller::SOCKET,
        local_in: net::poller::STDIN,
        local_out: net::poller::STDOUT,
    };
    local.register(registry, &tokens)?;
    let peer = Peer {
        host: config.host.to_string(),
        port: config.port,
        addr: net::connect::Hop::of(config).show(addr),
        connect_timeout: config.connect_timeout,
    };
    let session = Session::new(peer, sock, tls, local, tokens, deadline);
    relay::run(&mut poller, session)
}

/// stdin and stdout, polled or used directly.
#[cfg(unix)]
fn stdio(_poller: &net::poller::Poller) -> Result<Stdio> {
    let stdio = |fd, name| {
        net::stdio::StdFd::new(fd, name).map_err(|source| Error::Stdio {
            which: name,
            source,
        })
    };
    Ok(Stdio {
        stdin: stdio(0, "stdin")?,
        stdout: stdio(1, "stdout")?,
    })
}

/// stdin and stdout, each served by a thread that wakes the loop.
#[cfg(windows)]
fn stdio(poller: &net::poller::Poller) -> Result<Stdio> {
    let (stdin, stdout, terminal) =
        net::stdio_threads::standard(&poller.waker()).map_err(|source| Error::Setup {
            what: "starting the stdin and stdout threads",
            source,
        })?;
    Ok(Stdio {
        stdin,
        stdout,
        terminal,
    })
}

/// Sends log records to stderr as `vers-tunnel: ...` lines. `-v` shows info,
/// `-vv` debug, `-vvv` trace; `RUST_LOG`, when set, decides instead.
pub fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let started = Instant::now();
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder
        .format(move |out, record| match record.level() {
            log::Level::Error | log::Level::Warn => writeln!(out, "vers-tunnel: {}", record.args()),
            _ => writeln!(
                out,
                "vers-tunnel: [{:>8.3}s {}] {}",
                started.elapsed().as_secs_f64(),
                record.target(),
                record.args()
            ),
        })
        .target(env_logger::Target::Stderr)
        .init();
}
