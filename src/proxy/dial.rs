//! Through a proxy: the CONNECT exchange over a live connection to it (TLS
//! with an `https://` proxy first), driven by readiness, so that the stdio
//! tunnel (which waits for it on the poller) and `forward` (which runs one per
//! connection on its loop) share one implementation. The exchange's bytes
//! are [`proxy::Connect`]'s; this only moves them.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ClientConfig, ClientConnection, HandshakeKind};

use crate::cli::Config;
use crate::error::{self, Error, Phase, ProxyName, ProxyProblem, Result};
use crate::net::poller::{Poller, SOCKET};
use crate::proxy::transport::Transport;
use crate::proxy::{self, Progress, Proxy, Scheme};
use crate::target::ShownAddr;
use crate::tls;

/// Asks `proxy`, connected on `stream`, for a tunnel to the connect host and
/// port before `deadline`, waiting on the poller; the transport, unregistered.
pub fn open(
    poller: &mut Poller,
    stream: TcpStream,
    proxy: &Proxy,
    config: &Config,
    deadline: Instant,
) -> Result<Transport> {
    let link = ProxyLink::new(proxy, config)?;
    let mut dial = ProxyDial::new(poller.registry(), stream, SOCKET, &link, config)?;
    let answer = loop {
        match dial.step(proxy, config) {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
        if Instant::now() >= deadline {
            break Err(dial.timed_out(proxy, config));
        }
        if let Err(e) = poller.wait(Some(deadline)) {
            break Err(e);
        }
    };
    let mut transport = dial.into_transport();
    // The relay registers the transport again, as its own.
    let _ = poller.registry().deregister(&mut transport);
    answer.map(|()| transport)
}

/// A proxy and how to reach it: in clear, or over TLS with a config made
/// once, as the edge's is, so that connections after the first resume their
/// TLS session with the proxy, and the CA files are read at start only.
#[derive(Debug, Clone)]
pub struct ProxyLink<'a> {
    proxy: &'a Proxy,
    /// For an `https://` proxy.
    tls: Option<Arc<ClientConfig>>,
}

impl<'a> ProxyLink<'a> {
    /// Reads the CA files an `https://` proxy needs (`--cacert`,
    /// `--proxy-cacert`) and builds its TLS config.
    pub fn new(proxy: &'a Proxy, config: &Config) -> Result<ProxyLink<'a>> {
        let tls = match proxy.url.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(tls::proxy_client_config(
                &config.cacerts,
                &config.proxy_cacerts,
            )?),
        };
        Ok(ProxyLink { proxy, tls })
    }
}

/// A CONNECT exchange under way on a connection to the proxy, registered
/// for reading and writing.
#[derive(Debug)]
pub struct ProxyDial {
    transport: Transport,
    exchange: proxy::Connect,
    /// Bytes of the request written so far.
    sent: usize,
    /// The proxy's address, as messages show it.
    addr: ShownAddr,
    started: Instant,
}

impl ProxyDial {
    /// Starts the exchange over `stream` (connected to the proxy), registering
    /// it with `token`: TLS first for an `https://` proxy.
    pub fn new(
        registry: &Registry,
        stream: TcpStream,
        token: Token,
        link: &ProxyLink<'_>,
        config: &Config,
    ) -> Result<ProxyDial> {
        let proxy = link.proxy;
        let setup = |what| move |source| Error::Setup { what, source };
        let addr = stream
            .peer_addr()
            .map_err(setup("reading the proxy's address"))?;
        let addr = proxy.show(addr);
        let mut transport = match &link.tls {
            None => Transport::tcp(stream),
            Some(tls_config) => {
                let conn =
                    ClientConnection::new(Arc::clone(tls_config), proxy.url.host.server_name())
                        .map_err(|source| Error::TlsSetup { source })?;
                Transport::tls(stream, conn)
            }
        };
        registry
            .register(
                &mut transport,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(setup("registering the socket"))?;
        Ok(ProxyDial {
            transport,
            exchange: proxy::Connect::new(&proxy.url, &config.connect_host, config.connect_port),
            sent: 0,
            addr,
            started: Instant::now(),
        })
    }

    /// Moves what can move; `Ok(true)` once the tunnel is open (bytes that
    /// came after the proxy's answer are the transport's first).
    pub fn step(&mut self, proxy: &Proxy, config: &Config) -> Result<bool> {
        let was_handshaking = self.transport.is_handshaking();
        // Over TLS, rustls keeps the request until its handshake is done.
        while self.sent < self.exchange.request().len() {
            match self.transport.write(&self.exchange.request()[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(proxy, config, e)),
            }
        }
        match self.transport.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                return Err(self.io_failed(proxy, config, e));
            }
            _ => {}
        }
        let mut buf = [0; 4096];
        loop {
            match self.transport.read(&mut buf) {
                Ok(0) if self.transport.is_handshaking() => {
                    let source = io::ErrorKind::UnexpectedEof.into();
                    return Err(self.handshake_io(proxy, config, source));
                }
                Ok(0) => return Err(error(config, proxy, self.exchange.closed())),
                Ok(n) => match self.exchange.receive(&buf[..n]) {
                    Ok(Progress::NeedMore) => {}
                    Ok(Progress::Established { leftover }) => {
                        log::info!(
                            "proxy opened a tunnel to {} in {:.1?}",
                            connect_target(config),
                            self.started.elapsed()
                        );
                        if !leftover.is_empty() {
                            log::debug!(
                                "{} tunnel bytes came with the proxy's answer",
                                leftover.len()
                            );
                            self.transport.unread(leftover);
                        }
                        return Ok(true);
                    }
                    Err(problem) => return Err(error(config, proxy, problem)),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(proxy, config, e)),
            }
        }
        if was_handshaking && !self.transport.is_handshaking() {
            if let Some(session) = self.transport.proxy_session() {
                let resumed = match session.handshake_kind() {
                    Some(HandshakeKind::Resumed) => ", resumed",
                    _ => "",
                };
                log::debug!(
                    "{:?} established with proxy {}{resumed}",
                    session.protocol_version(),
                    proxy.url.host
                );
            }
            // The handshake's end may have let the request out: go again.
            return self.step(proxy, config);
        }
        Ok(false)
    }

    /// The error for running out of time where the exchange stands.
    pub fn timed_out(&self, proxy: &Proxy, config: &Config) -> Error {
        let phase = match self.transport.is_handshaking() {
            true => Phase::Handshake,
            false => Phase::Answer,
        };
        Error::Timeout {
            hop: name(config, proxy),
            phase,
            after: config.connect_timeout,
        }
    }

    /// The connection, still registered, to carry the edge's TLS.
    pub fn into_transport(self) -> Transport {
        self.transport
    }

    fn io_failed(&self, proxy: &Proxy, config: &Config, source: io::Error) -> Error {
        let tls_error = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls_error {
            Some(tls_error) => Error::Tls {
                hop: name(config, proxy),
                host: proxy.url.host.to_string(),
                addr: self.addr,
                source: Box::new(tls_error.clone()),
                client_cert_requested: false,
            },
            None if self.transport.is_handshaking() => self.handshake_io(proxy, config, source),
            None => error(config, proxy, ProxyProblem::Io(source)),
        }
    }

    fn handshake_io(&self, proxy: &Proxy, config: &Config, source: io::Error) -> Error {
        Error::HandshakeIo {
            hop: name(config, proxy),
            host: proxy.url.host.to_string(),
            addr: self.addr,
            source,
        }
    }
}

/// How messages name `proxy`, on the way to the tunnel's target.
pub fn name(config: &Config, proxy: &Proxy) -> error::Hop {
    error::Hop::Proxy(Box::new(proxy_name(config, proxy)))
}

fn proxy_name(config: &Config, proxy: &Proxy) -> ProxyName {
    ProxyName {
        url: proxy.url.to_string(),
        from: proxy.source.name(),
        target: connect_target(config),
        cut_userinfo: proxy.url.cut_userinfo,
    }
}

/// The error for `problem` with `proxy`, reached, naming the tunnel's target.
pub fn error(config: &Config, proxy: &Proxy, problem: ProxyProblem) -> Error {
    Error::Proxy {
        proxy: Box::new(proxy_name(config, proxy)),
        problem: Box::new(problem),
    }
}

/// Where the CONNECT request asks the proxy to connect: `--connect-to`'s
/// target when one applies, as in curl.
fn connect_target(config: &Config) -> String {
    format!("{}:{}", config.connect_host, config.connect_port)
}
