//! The doctor's `tls` and `service` steps: the handshake with the tunnel's
//! config ([`super::trust`]) within the connect deadline, and then a bounded
//! wait for the service's first bytes. The tunnel's pump ([`crate::relay`])
//! drives both, with a probe as its local end, so a session ends with the
//! tunnel's status and words.
//!
//! Beyond one SSH identification line on port 443 (what ssh itself would send
//! first), nothing is written to the service. An edge may connect to the VM
//! only once the client has spoken (issue 12 measured one that did); a silent
//! probe would never see a dead port there.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use rustls::ClientConnection;

use super::json::Value;
use super::report::{duration, Step};
use super::trust::{describe_chain, Trust};
use super::Stop;
use crate::cli::Config;
use crate::error::{describe_no_service, exit, Error, UncleanCause};
use crate::net::poller::{Poller, SOCKET};
use crate::proxy::transport::Transport;
use crate::relay::channel::Negotiated;
use crate::relay::local::{Local, Side};
use crate::relay::outcome::Close;
use crate::relay::{self, Peer, Pump, Tokens};
use crate::target::{ShownAddr, DEFAULT_PORT};
use crate::text;

/// What the doctor sends on port 443, the edge's SSH route, exactly as an ssh
/// client starts: an edge that connects to the VM only once the client has
/// spoken then shows a dead port by closing.
const SSH_IDENT: &[u8] = b"SSH-2.0-vers-tunnel-doctor\r\n";

/// Once the service's first bytes arrive, how long to wait for the rest of
/// its first line.
const LINE_WAIT: Duration = Duration::from_millis(300);

/// The most of the service's first bytes kept for the report.
const FIRST_BYTES: usize = 256;

/// Bytes of a non-SSH greeting shown in the report.
const EXCERPT_BYTES: usize = 60;

/// How long closing cleanly (close_notify) may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The established TLS session with the edge: the pump, with the probe as
/// its local end.
pub(super) struct Session {
    pump: relay::Session<Probe>,
    host: String,
}

/// The doctor's local end: it sends the SSH identification line (on port
/// 443) and nothing else, keeps the service's first bytes, and ends our
/// direction once the doctor has heard enough. It has no descriptor: it is
/// always ready, and no event is ever for it.
#[derive(Debug)]
struct Probe {
    /// What is left to send.
    ident: &'static [u8],
    /// The first [`FIRST_BYTES`] the service sent.
    heard: Vec<u8>,
    /// When they began.
    first_at: Option<Instant>,
    /// The doctor has heard enough: our direction ends.
    done: bool,
}

impl Local for Probe {
    fn register(&mut self, _registry: &Registry, _tokens: &Tokens) -> Result<(), Error> {
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ident.is_empty() {
            return match self.done {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = buf.len().min(self.ident.len());
        buf[..n].copy_from_slice(&self.ident[..n]);
        self.ident = &self.ident[n..];
        Ok(n)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = FIRST_BYTES - self.heard.len().min(FIRST_BYTES);
        self.heard.extend_from_slice(&buf[..buf.len().min(room)]);
        self.first_at.get_or_insert_with(Instant::now);
        Ok(buf.len())
    }

    fn shutdown_write(&mut self, _registry: &Registry) {}

    fn never_waits(&self, _side: Side) -> bool {
        true
    }

    fn name(&self, _side: Side) -> &'static str {
        "the doctor's probe"
    }
}

/// `tls`: the handshake on the fastest address, and what it negotiated and was shown.
pub(super) fn handshake(
    poller: &mut Poller,
    config: &Config,
    trust: Trust,
    mut sock: Transport,
    addr: ShownAddr,
    deadline: Instant,
    steps: &mut Vec<Step>,
) -> Result<Session, Stop> {
    let started = Instant::now();
    poller
        .registry()
        .register(&mut sock, SOCKET, Interest::READABLE | Interest::WRITABLE)
        .map_err(|source| Error::Setup {
            what: "registering the socket",
            source,
        })?;
    let conn = ClientConnection::new(Arc::clone(&trust.config), config.host.server_name())
        .map_err(|source| Error::TlsSetup { source })?;
    let peer = Peer {
        host: config.host.to_string(),
        port: config.port,
        addr,
        connect_timeout: config.connect_timeout,
    };
    let probe = Probe {
        ident: if config.port == DEFAULT_PORT {
            SSH_IDENT
        } else {
            b""
        },
        heard: Vec::new(),
        first_at: None,
        done: false,
    };
    // The probe has no sources: no event is ever for its tokens.
    let tokens = Tokens {
        edge: SOCKET,
        local_in: Token(usize::MAX),
        local_out: Token(usize::MAX),
    };
    let mut session = Session {
        pump: relay::Session::new(peer, sock, conn, probe, tokens, deadline),
        host: config.host.to_string(),
    };
    let outcome = session.complete_handshake(poller);
    let took = started.elapsed();
    let chain = match session.pump.tls().peer_certificates() {
        Some(chain) => chain.to_vec(),
        None => trust.presented_chain(),
    };
    let mut step = Step::new("tls", took, String::new()).field("address", addr.to_string());
    let (lines, certs, warning) = describe_chain(&chain, &session.host);
    step.lines = lines;
    step = step.field("certificates", Value::Array(certs));
    if let Err(err) = outcome {
        let stop = Stop::from(err);
        step.detail = stop.verdict.clone();
        steps.push(step.field("trusted", false).failed());
        return Err(stop);
    }
    let conn = session.pump.tls();
    let Negotiated {
        version,
        suite,
        group,
    } = Negotiated::of(conn);
    let alpn = conn.alpn_protocol().map(text::escape_bytes);
    step.detail = format!(
        "{version}, {}, key exchange {}, ALPN {}; the certificate is trusted for {}",
        suite.unwrap_or("unknown cipher suite"),
        group.unwrap_or("unknown"),
        alpn.as_deref().unwrap_or("none"),
        session.host
    );
    step.warnings.extend(warning);
    steps.push(
        step.field("trusted", true)
            .field("version", version)
            .field("cipher_suite", suite)
            .field("key_exchange", group)
            .field("alpn", alpn),
    );
    Ok(session)
}

impl Session {
    /// Pumps until the handshake is done (the SSH identification line, on
    /// port 443, goes with our first flight after it).
    fn complete_handshake(&mut self, poller: &mut Poller) -> Result<(), Error> {
        while self.pump.is_handshaking() {
            let wait_until = match self.pump.pump(poller.registry())? {
                Pump::Busy => Some(Instant::now()),
                Pump::Idle | Pump::Over(_) => self.pump.wake_at(),
            };
            if !self.pump.is_handshaking() {
                break;
            }
            self.pump.check_deadline(Instant::now())?;
            self.wait(poller, wait_until)?;
        }
        Ok(())
    }

    fn wait(&mut self, poller: &mut Poller, until: Option<Instant>) -> Result<(), Error> {
        for event in poller.wait(until)? {
            self.pump.on_event(event);
        }
        Ok(())
    }

    /// `service`: waits up to `wait` for the service's first bytes (after the
    /// SSH identification line on port 443), then closes cleanly.
    pub(super) fn listen(
        &mut self,
        poller: &mut Poller,
        config: &Config,
        wait: Duration,
        steps: &mut Vec<Step>,
    ) -> Result<String, Stop> {
        let started = Instant::now();
        let ssh_route = config.port == DEFAULT_PORT;
        let heard = self.first_bytes(poller, started + wait);
        let took = started.elapsed();
        let (bytes, closed) = match heard {
            Ok(heard) => heard,
            Err(stop) => {
                steps.push(Step::new("service", took, stop.verdict.clone()).failed());
                return Err(stop);
            }
        };
        if closed.is_none() {
            self.close(poller);
        }
        let sent = ssh_route.then(|| String::from_utf8_lossy(SSH_IDENT).trim_end().to_string());
        let mut step = Step::new("service", took, String::new())
            .field("sent", sent.clone())
            .field("closed", closed.as_ref().map(Close::name));
        if let Some(sent) = &sent {
            step.lines.push(format!(
                "sent {sent} first, as ssh does (port 443 is the SSH route)"
            ));
        }
        let target = config.target();
        let banner = text_lines(&bytes).find(|l| l.starts_with("SSH-"));
        let verdict = match (&banner, bytes.is_empty(), &closed) {
            (Some(banner), _, _) => {
                step.detail = format!("SSH banner: {banner}");
                step = step.field("banner", banner.clone());
                format!(
                    "{target} works: TLS to the edge, and the VM's SSH server answers ({banner})"
                )
            }
            (None, false, _) => {
                let excerpt = excerpt(&bytes);
                step.detail = format!("the service spoke first: \"{excerpt}\"");
                step = step.field("first_bytes", excerpt);
                format!("{target} works: TLS to the edge, and the service on the VM answers")
            }
            (None, true, Some(close)) => {
                step.detail = format!(
                    "the edge closed the connection {} {} after the handshake, before the service sent anything",
                    close.words(),
                    duration(took)
                );
                step.lines.push(describe_no_service(config.port));
                steps.push(step.failed());
                return Err(Stop {
                    exit: exit::NO_SERVICE,
                    verdict: format!(
                        "TLS to the edge works, but {}",
                        describe_no_service(config.port)
                    ),
                });
            }
            (None, true, None) => {
                step.detail = format!(
                    "connected; the service waits for the client (no bytes in {})",
                    duration(wait)
                );
                if ssh_route {
                    step.lines.push(
                        "an SSH server would have answered the identification line: is this port's service SSH?"
                            .into(),
                    );
                    format!("{target}: TLS to the edge works; the service accepted the connection but does not speak SSH")
                } else {
                    step.lines.push(
                        "normal for protocols where the client speaks first (HTTP); an edge that connects to the VM only once the client speaks looks the same"
                            .into(),
                    );
                    format!("{target}: TLS to the edge works; the service accepted the connection and waits for the client")
                }
            }
        };
        if let Some(close) = &closed {
            step.lines.push(format!(
                "then the edge closed the connection {}",
                close.words()
            ));
        }
        steps.push(step);
        Ok(verdict)
    }

    /// The service's first bytes: until its first line (or [`FIRST_BYTES`])
    /// is in, [`LINE_WAIT`] after they began, the edge closes, or `until`.
    /// The session's end is the tunnel's: a failure that is not a close
    /// (a TLS error) stops the doctor with the tunnel's status and words.
    fn first_bytes(
        &mut self,
        poller: &mut Poller,
        until: Instant,
    ) -> Result<(Vec<u8>, Option<Close>), Stop> {
        loop {
            let wait_until = match self.pump.pump(poller.registry()) {
                Ok(Pump::Busy) => Some(Instant::now()),
                Ok(Pump::Idle | Pump::Over(_)) => None,
                // A close before the service spoke (no service: the report
                // says so), or after it (only a note).
                Err(Error::NoService { .. })
                | Err(Error::Unclean {
                    cause: UncleanCause::NoCloseNotify | UncleanCause::Io(_),
                    ..
                }) => None,
                Err(err) => return Err(Stop::from(err)),
            };
            let probe = self.pump.local();
            let closed = self.pump.server_close().cloned();
            let enough = probe.heard.contains(&b'\n') || probe.heard.len() >= FIRST_BYTES;
            let stop_at = probe.first_at.map_or(until, |t| (t + LINE_WAIT).min(until));
            if closed.is_some() || enough || Instant::now() >= stop_at {
                return Ok((probe.heard.clone(), closed));
            }
            self.wait(poller, Some(wait_until.unwrap_or(stop_at)))?;
        }
    }

    /// Sends close_notify, waiting at most [`CLOSE_WAIT`], and ends TLS with
    /// a proxy; TCP ends when the session is dropped.
    fn close(&mut self, poller: &mut Poller) {
        self.pump.local_mut().done = true;
        let until = Instant::now() + CLOSE_WAIT;
        while !self.pump.upstream_closed() && Instant::now() < until {
            match self.pump.pump(poller.registry()) {
                Ok(Pump::Idle | Pump::Busy) => {}
                Ok(Pump::Over(_)) | Err(_) => break,
            }
            if self.pump.upstream_closed() || self.wait(poller, Some(until)).is_err() {
                break;
            }
        }
        self.pump.close_wire();
    }
}

/// The complete lines in `bytes`, without their line ends.
fn text_lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[..complete]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| excerpt(l.strip_suffix(b"\r").unwrap_or(l)))
}

/// Up to [`EXCERPT_BYTES`] of `bytes`, escaped ([`text`]) so that no byte
/// from the network can move a terminal's cursor.
fn excerpt(bytes: &[u8]) -> String {
    if bytes.len() <= EXCERPT_BYTES {
        return text::escape_bytes(bytes);
    }
    format!(
        "{}... ({} bytes)",
        text::escape_bytes(&bytes[..EXCERPT_BYTES]),
        bytes.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_escape_what_a_terminal_would_act_on() {
        assert_eq!(excerpt(b"HTTP/1.1 200 OK\r\n"), "HTTP/1.1 200 OK\\r\\n");
        assert_eq!(
            excerpt(b"\x1b[2J\x00\xff\"q\"\xc2\x9b"),
            "\\u{1b}[2J\\u{0}\\xff\"q\"\\u{9b}"
        );
        let long = excerpt(&[b'a'; 100]);
        assert!(long.starts_with(&"a".repeat(EXCERPT_BYTES)), "{long}");
        assert!(long.ends_with("... (100 bytes)"), "{long}");
    }

    #[test]
    fn banner_lines_are_complete_lines_only() {
        let lines: Vec<String> =
            text_lines(b"hello\r\nSSH-2.0-OpenSSH_9.6\r\nSSH-partial").collect();
        assert_eq!(lines, ["hello", "SSH-2.0-OpenSSH_9.6"]);
    }
}
