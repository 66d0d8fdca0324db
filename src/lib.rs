//! vers-tunnel: an OpenSSH `ProxyCommand` that opens verified TLS to a Vers VM's
//! edge (`{vmId}.vm.vers.sh:443`, SNI = the host) and relays stdin/stdout over it.
//!
//! The path of a byte: [`cli`] turns arguments into a [`cli::Config`]; [`tls`]
//! builds the trust store; [`connect`] resolves and races addresses (of the
//! proxy, when [`proxy`] and [`noproxy`] say one applies, and then asks it for
//! a tunnel) and hands over a [`transport::Transport`]; [`relay`]
//! runs the handshake and pumps stdin → TLS → socket and socket → TLS → stdout
//! on the one [`poller::Poller`] (reading the socket a TLS record at a time
//! through `records`), using [`stdio`] for the local ends and [`signals`] to
//! stop cleanly. [`error`] says what went wrong and which exit status it gets.
//!
//! Around the tunnel: [`ssh_config`] prints the ssh_config block that uses it,
//! [`version`] says what a build is made of, and [`alloc`] is the global
//! allocator's one adjustment (large blocks on a cache line).

pub mod alloc;
pub mod cli;
pub mod connect;
pub mod error;
pub mod noproxy;
pub mod poller;
pub mod proxy;
mod records;
pub mod relay;
pub mod signals;
pub mod ssh_config;
pub mod stdio;
pub mod target;
pub mod tls;
pub mod transport;
pub mod version;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConnection;

use crate::cli::Config;
use crate::error::{Error, Result};
use crate::tls::ClientCertProbe;

/// Opens the tunnel described by `config` and relays until it is over.
pub fn run(config: &Config) -> Result<()> {
    // Closed standard descriptors need no care here: Rust's runtime reopens
    // them on /dev/null before main, so no socket can land on fd 0, 1 or 2.
    let probe = Arc::new(ClientCertProbe::default());
    let tls_config = tls::client_config(&config.cacerts, Arc::clone(&probe))?;
    let mut poller = poller::Poller::new()?;
    let deadline = Instant::now() + config.connect_timeout;
    let sock = connect::connect(&mut poller, config, deadline)?;
    let addr = sock.peer_addr().map_err(|source| Error::Setup {
        what: "reading the peer address",
        source,
    })?;
    let tls = ClientConnection::new(tls_config, config.host.server_name())
        .map_err(|source| Error::TlsSetup { source })?;
    let session = relay::Session {
        sock,
        addr,
        host: config.host.to_string(),
        target: config.target(),
        connect_timeout: config.connect_timeout,
        tls,
        probe,
    };
    relay::run(&mut poller, session, deadline)
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
