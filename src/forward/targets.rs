//! The mappings as `forward` serves them: each one's target (its config, its
//! proxy, its addresses) and listening sockets, all resolved and bound before
//! any mapping says it listens, so that a bad one stops the start with one
//! line naming it.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use super::addresses::Addresses;
use super::listen;
use super::mapping::Mapping;
use crate::cli::{Config, ForwardConfig, ForwardMapping};
use crate::error::{Error, Result};
use crate::net::connect::{self, MAX_ATTEMPTS};
use crate::net::poller::{Poller, LISTENER_BASE};
use crate::proxy::dial::ProxyLink;
use crate::target::Listen;

/// Every mapping ready to serve.
pub(crate) struct Prepared<'a> {
    /// Each mapping's target, in the order given.
    pub(crate) targets: Vec<Target<'a>>,
    /// Every mapping's listeners, registered: listener `i` with token `LISTENER_BASE + i`.
    pub(crate) listeners: Vec<Listener>,
    /// The most connection attempts a race of any mapping starts with.
    pub(crate) attempts: usize,
}

/// Resolves every mapping's target, then binds and registers every
/// mapping's listeners; the first failure, naming its mapping.
pub(crate) fn prepare<'a>(
    poller: &mut Poller,
    registry: &Registry,
    forward: &'a ForwardConfig,
) -> Result<Prepared<'a>> {
    let mut targets = Vec::with_capacity(forward.mappings.len());
    // A connection holds its local socket and, while it dials, an attempt per
    // address under way (then the one that won). The budget counts at least
    // two attempts, so Happy Eyeballs can move on from an address that does
    // not answer; a race is never capped below MAX_ATTEMPTS (a later lookup
    // may find more addresses), and one that finds no descriptor waits for one.
    let mut attempts = 2;
    for mapping in &forward.mappings {
        let target = Target::resolve(poller, mapping).map_err(|e| in_mapping(mapping, e))?;
        attempts = attempts.max(target.addrs.len().min(MAX_ATTEMPTS));
        targets.push(target);
    }
    let mut listeners = Vec::new();
    for (index, mapping) in forward.mappings.iter().enumerate() {
        let bound = listen::listen(&mapping.mapping.listen).map_err(|e| in_mapping(mapping, e))?;
        let addrs: Vec<SocketAddr> = bound.iter().filter_map(|l| l.local_addr().ok()).collect();
        targets[index].name = shown_with_port(&mapping.mapping, &addrs);
        targets[index].listening = addrs;
        listeners.extend(bound.into_iter().map(|socket| Listener {
            socket,
            mapping: index,
            ready: true,
        }));
    }
    for (i, listener) in listeners.iter_mut().enumerate() {
        registry
            .register(
                &mut listener.socket,
                Token(LISTENER_BASE + i),
                Interest::READABLE,
            )
            .map_err(|source| Error::Setup {
                what: "registering the listener",
                source,
            })?;
    }
    Ok(Prepared {
        targets,
        listeners,
        attempts,
    })
}

/// `err`, naming the mapping it happened to.
fn in_mapping(mapping: &ForwardMapping, err: Error) -> Error {
    Error::Mapping {
        mapping: mapping.mapping.to_string(),
        source: Box::new(err),
    }
}

/// `mapping` as log lines name it: with the port it listens on (the one
/// the system picked, for 0).
fn shown_with_port(mapping: &Mapping, listening: &[SocketAddr]) -> String {
    let port = listening
        .first()
        .map_or(mapping.listen.port, SocketAddr::port);
    let listen = Listen {
        port,
        ..mapping.listen.clone()
    };
    Mapping {
        listen,
        ..mapping.clone()
    }
    .to_string()
}

/// One mapping while it serves: where its connections go and how they get there.
pub(crate) struct Target<'a> {
    /// `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`, with the port it listens on.
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) listening: Vec<SocketAddr>,
    pub(crate) config: &'a Config,
    /// The proxy every connection goes through, when one applies.
    pub(crate) proxy: Option<ProxyLink<'a>>,
    pub(crate) addrs: Addresses,
}

impl<'a> Target<'a> {
    /// The target of `mapping`, its addresses looked up.
    fn resolve(poller: &mut Poller, mapping: &'a ForwardMapping) -> Result<Target<'a>> {
        let config = &mapping.connect;
        let proxy = config
            .route
            .proxy()
            .map(|proxy| ProxyLink::new(proxy, config))
            .transpose()?;
        let deadline = Instant::now() + config.connect_timeout;
        connect::log_route(config);
        let addrs = connect::resolve(poller, config, deadline)?;
        Ok(Target {
            name: mapping.mapping.to_string(),
            listening: Vec::new(),
            config,
            proxy,
            addrs: Addresses::new(addrs, Instant::now()),
        })
    }

    /// The one line `forward` promises for each mapping at every log level:
    /// scripts read the port from it. Written as log lines are, ignoring a
    /// stderr that is closed or full: serving matters more than saying.
    pub(crate) fn say_listening(&self) {
        let addrs: Vec<String> = self.listening.iter().map(ToString::to_string).collect();
        let line = format!(
            "vers-tunnel: listening on {}, forwarding to {}\n",
            addrs.join(" and "),
            self.config.target()
        );
        let _ = io::stderr().write_all(line.as_bytes());
    }
}

/// A listening socket, the mapping whose it is, and whether it may have
/// clients waiting (set by its events, cleared when accepting would block).
pub(crate) struct Listener {
    pub(crate) socket: TcpListener,
    pub(crate) mapping: usize,
    pub(crate) ready: bool,
}
