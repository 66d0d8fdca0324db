//! The doctor's `tls` and `service` steps: the handshake with the tunnel's
//! config ([`super::trust`]), driven on the poller within the connect
//! deadline, and then a bounded wait for the service's first bytes.
//!
//! Beyond one SSH identification line on port 443 (what ssh itself would send
//! first), nothing is written to the service. An edge may connect to the VM
//! only once the client has spoken (issue 12 measured one that did); a silent
//! probe would never see a dead port there.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Interest;
use rustls::ClientConnection;

use super::json::Value;
use super::report::{duration, Step};
use super::trust::{describe_chain, Trust};
use super::Stop;
use crate::cli::Config;
use crate::error::{describe_io, describe_no_service, exit, Error, Hop, Phase, UncleanCause};
use crate::net::poller::{Poller, SOCKET};
use crate::proxy::transport::Transport;
use crate::target::{ShownAddr, DEFAULT_PORT};
use crate::text;
use crate::tls::ClientCertProbe;

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

/// The established TLS session with the edge.
pub(super) struct Session {
    sock: Transport,
    addr: ShownAddr,
    host: String,
    /// The edge, as messages name it.
    hop: Hop,
    conn: ClientConnection,
    /// Whether the server asked for a client certificate.
    probe: ClientCertProbe,
}

/// What one round of reading the socket found.
enum Got {
    /// Records came and were processed.
    Records,
    /// Nothing more to read now.
    Blocked,
    /// rustls takes no more for now: its plaintext is unread (it keeps at
    /// most 16 KiB), close_notify came, or our handshake flight waits to go
    /// out. The socket may still hold records.
    Paused,
    /// TCP EOF.
    Eof,
}

/// Why reading the socket stopped the session.
enum Broke {
    Io(io::Error),
    Tls(rustls::Error),
}

/// How the edge ended the session.
enum Close {
    Notify,
    TcpEof,
    Reset(io::Error),
}

impl Close {
    fn words(&self) -> String {
        match self {
            Close::Notify => "cleanly (TLS close_notify)".into(),
            Close::TcpEof => "without TLS close_notify".into(),
            Close::Reset(e) => format!("abruptly ({})", describe_io(e)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Close::Notify => "close_notify",
            Close::TcpEof => "tcp_eof",
            Close::Reset(_) => "reset",
        }
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
    let mut session = Session {
        sock,
        addr,
        host: config.host.to_string(),
        hop: Hop::Edge {
            target: config.target(),
        },
        conn,
        probe: ClientCertProbe::default(),
    };
    let outcome = session.complete_handshake(poller, config, deadline);
    let took = started.elapsed();
    let chain = match session.conn.peer_certificates() {
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
    let conn = &session.conn;
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let group = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()));
    let alpn = conn.alpn_protocol().map(text::escape_bytes);
    step.detail = format!(
        "{version}, {}, key exchange {}, ALPN {}; the certificate is trusted for {}",
        suite.as_deref().unwrap_or("unknown cipher suite"),
        group.as_deref().unwrap_or("unknown"),
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
    fn complete_handshake(
        &mut self,
        poller: &mut Poller,
        config: &Config,
        deadline: Instant,
    ) -> Result<(), Error> {
        while self.conn.is_handshaking() {
            self.flush().map_err(|e| self.handshake_io(e))?;
            match self.read() {
                Ok(Got::Records) => continue,
                // Done, with plaintext already held for `listen`.
                Ok(Got::Paused) if !self.conn.is_handshaking() => continue,
                // Our flight waits for room: the socket's writability wakes us.
                Ok(Got::Blocked | Got::Paused) => {}
                Ok(Got::Eof) => return Err(self.handshake_io(io::ErrorKind::UnexpectedEof.into())),
                Err(Broke::Io(e)) => return Err(self.handshake_io(e)),
                Err(Broke::Tls(source)) => return Err(self.tls_error(source)),
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    hop: self.hop.clone(),
                    phase: Phase::Handshake,
                    after: config.connect_timeout,
                });
            }
            poller.wait(Some(deadline))?;
        }
        // Our last flight (Finished); what does not fit now goes with the next write.
        self.flush().map_err(|e| self.handshake_io(e))
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
        if ssh_route {
            // rustls buffers it; it cannot fail for want of room.
            let _ = self.conn.writer().write_all(SSH_IDENT);
        }
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
    fn first_bytes(
        &mut self,
        poller: &mut Poller,
        until: Instant,
    ) -> Result<(Vec<u8>, Option<Close>), Stop> {
        let mut bytes = Vec::new();
        let mut first_at = None;
        loop {
            // A failed write means the edge has gone; the kernel reports a
            // reset once, so a read after it would see only the EOF.
            let write_error = self.flush().err();
            let got = self.read();
            let paused = matches!(got, Ok(Got::Paused));
            let mut closed = match got {
                Ok(Got::Eof) => write_error.map(Close::Reset),
                Ok(Got::Records | Got::Blocked | Got::Paused) => None,
                Err(Broke::Io(e)) => Some(Close::Reset(e)),
                // TLS 1.3 servers refuse a missing client certificate only
                // after the handshake: that is a failed handshake.
                Err(Broke::Tls(source)) if self.probe.was_asked() && bytes.is_empty() => {
                    return Err(Stop::from(self.tls_error(source)));
                }
                // A session that broke at the TLS layer, as the tunnel
                // words and numbers it; counting what was decrypted before
                // the record that broke it.
                Err(Broke::Tls(source)) => {
                    let mut buf = [0; FIRST_BYTES];
                    while let Ok(n @ 1..) = self.conn.reader().read(&mut buf) {
                        let room = FIRST_BYTES - bytes.len().min(FIRST_BYTES);
                        bytes.extend_from_slice(&buf[..n.min(room)]);
                    }
                    return Err(Stop::from(Error::Unclean {
                        host: self.host.clone(),
                        received: bytes.len() as u64,
                        cause: UncleanCause::Tls(source),
                    }));
                }
            };
            let mut buf = [0; FIRST_BYTES];
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => {
                        // A reset after the close_notify is only the edge
                        // dropping what we sent: the close was clean.
                        closed = Some(Close::Notify);
                        break;
                    }
                    Ok(n) => {
                        let room = FIRST_BYTES - bytes.len().min(FIRST_BYTES);
                        bytes.extend_from_slice(&buf[..n.min(room)]);
                        first_at.get_or_insert_with(Instant::now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        closed.get_or_insert(Close::TcpEof);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let enough = bytes.contains(&b'\n') || bytes.len() >= FIRST_BYTES;
            let stop_at = first_at.map_or(until, |t| (t + LINE_WAIT).min(until));
            if closed.is_some() || enough || Instant::now() >= stop_at {
                return Ok((bytes, closed));
            }
            // The plaintext is read now; records left in the socket raise no
            // new readiness event.
            if !paused {
                poller.wait(Some(stop_at))?;
            }
        }
    }

    /// Sends close_notify, waiting at most [`CLOSE_WAIT`], and ends TLS with
    /// a proxy; TCP ends when the session is dropped.
    fn close(&mut self, poller: &mut Poller) {
        self.conn.send_close_notify();
        let until = Instant::now() + CLOSE_WAIT;
        while (self.conn.wants_write() || self.sock.wants_write()) && Instant::now() < until {
            if self.flush().is_err() || poller.wait(Some(until)).is_err() {
                break;
            }
        }
        self.sock.close();
    }

    /// Writes what rustls has queued until the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        match self.sock.send_records(&mut self.conn) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Reads and processes what the socket has, as much as rustls takes:
    /// asked for more while its plaintext is unread, it fails the read.
    fn read(&mut self) -> Result<Got, Broke> {
        let mut got = false;
        loop {
            if !self.conn.wants_read() {
                return Ok(Got::Paused);
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Ok(Got::Eof),
                Ok(_) => {
                    got = true;
                    if let Err(e) = self.probe.process(&mut self.conn) {
                        return Err(Broke::Tls(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(if got { Got::Records } else { Got::Blocked });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Broke::Io(e)),
            }
        }
    }

    fn handshake_io(&self, source: io::Error) -> Error {
        Error::HandshakeIo {
            hop: self.hop.clone(),
            host: self.host.clone(),
            addr: self.addr,
            source,
        }
    }

    fn tls_error(&mut self, source: rustls::Error) -> Error {
        // Best effort: tell the server why (rustls queued an alert).
        let _ = self.sock.send_records(&mut self.conn);
        Error::Tls {
            hop: self.hop.clone(),
            host: self.host.clone(),
            addr: self.addr,
            source: Box::new(source),
            client_cert_requested: self.probe.was_asked(),
        }
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
