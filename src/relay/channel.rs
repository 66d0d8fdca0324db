//! One TLS client session over a byte stream: ciphertext in from the wire one
//! record at a time ([`Records`]), processed with the client-certificate probe,
//! plaintext out, records back to the wire. The one driver of rustls: the
//! edge's session ([`super::Session`]) and TLS to an `https://` proxy
//! ([`crate::proxy::transport`]) both run on it.
//!
//! A failure of the wire or of rustls is kept, not returned at once: the
//! plaintext decrypted before it is still read out first, and then
//! [`Channel::plaintext`] says how the server's side ended.

use std::io::{self, BufRead, Read, Write};

use rustls::ClientConnection;

use crate::relay::buffer::BUDGET;
use crate::relay::outcome::End;
use crate::relay::records::Records;
use crate::tls::ClientCertProbe;

/// A TLS client session and what it knows of its wire.
#[derive(Debug)]
pub(crate) struct Channel {
    conn: ClientConnection,
    probe: ClientCertProbe,
    records: Records,
    /// The wire failed, or rustls rejected a record: told once the plaintext
    /// before it is read.
    failed: Option<End>,
    /// Plaintext rustls holds, decrypted and not yet consumed.
    held: usize,
}

/// What one read of the wire came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    /// Nothing to read now.
    Blocked,
    /// Part of a record: nothing for rustls to do yet.
    Partial,
    /// A record (or a header) was processed: plaintext or handshake progress may follow.
    Processed,
    /// TCP EOF.
    Eof,
    /// The wire failed or rustls rejected a record; [`Channel::plaintext`] says
    /// which once the plaintext before it is read.
    Failed,
}

/// What [`Channel::plaintext`] found.
#[derive(Debug)]
pub(crate) enum Plain<'a> {
    /// Decrypted bytes (those of one record, or what is left of them).
    Data(&'a [u8]),
    /// Nothing decrypted waits now.
    Empty,
    /// The server's side is over, all of its plaintext consumed.
    End(End),
}

/// What a handshake negotiated, named from rustls's typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// "TLS 1.3" or "TLS 1.2" (nothing else is enabled).
    pub(crate) version: &'static str,
    /// The IANA name, "TLS13_AES_256_GCM_SHA384".
    pub(crate) suite: Option<&'static str>,
    /// The key exchange group's IANA name, "X25519".
    pub(crate) group: Option<&'static str>,
}

impl Negotiated {
    /// What `conn` negotiated, so far.
    pub(crate) fn of(conn: &ClientConnection) -> Negotiated {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
            _ => "TLS",
        };
        Negotiated {
            version,
            suite: conn
                .negotiated_cipher_suite()
                .and_then(|s| suite_name(s.suite())),
            group: conn
                .negotiated_key_exchange_group()
                .and_then(|g| group_name(g.name())),
        }
    }
}

/// The IANA name of each suite the ring provider offers. rustls's own
/// `as_str` names every suite there is, at 28 KiB of the static binary.
fn suite_name(suite: rustls::CipherSuite) -> Option<&'static str> {
    use rustls::CipherSuite as C;
    Some(match suite {
        C::TLS13_AES_256_GCM_SHA384 => "TLS13_AES_256_GCM_SHA384",
        C::TLS13_AES_128_GCM_SHA256 => "TLS13_AES_128_GCM_SHA256",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS13_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        }
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        }
        _ => return None,
    })
}

/// The name of each key exchange group the ring provider offers.
fn group_name(group: rustls::NamedGroup) -> Option<&'static str> {
    use rustls::NamedGroup as G;
    Some(match group {
        G::X25519 => "X25519",
        G::secp256r1 => "secp256r1",
        G::secp384r1 => "secp384r1",
        _ => return None,
    })
}

impl Channel {
    /// A channel for `conn`, which holds at most [`BUDGET`] bytes unsent.
    pub(crate) fn new(mut conn: ClientConnection) -> Channel {
        conn.set_buffer_limit(Some(BUDGET));
        Channel {
            conn,
            probe: ClientCertProbe::default(),
            records: Records::default(),
            failed: None,
            held: 0,
        }
    }

    /// The rustls session, for what it negotiated.
    pub(crate) fn conn(&self) -> &ClientConnection {
        &self.conn
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the server asked for a client certificate.
    pub(crate) fn client_cert_asked(&self) -> bool {
        self.probe.was_asked()
    }

    /// Whether the wire should be read: rustls takes more, and nothing has ended it.
    pub(crate) fn wants_read(&self) -> bool {
        self.failed.is_none() && self.conn.wants_read()
    }

    /// Whether records wait to go out.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Reads `wire` once (up to the end of the next record header) and, when
    /// a record or a header is complete, has rustls process it. A failure is
    /// kept ([`Intake::Failed`]); rustls queues an alert for a rejected record.
    pub(crate) fn take(&mut self, wire: &mut impl Read) -> Intake {
        let read = loop {
            match self.conn.read_tls(&mut self.records.on(wire)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match read {
            Ok(0) => return Intake::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Intake::Blocked,
            Err(e) => {
                self.failed = Some(End::Io(e));
                return Intake::Failed;
            }
        }
        if !self.records.take_boundary() {
            return Intake::Partial;
        }
        match self.probe.process(&mut self.conn) {
            Ok(state) => {
                self.held = state.plaintext_bytes_to_read();
                Intake::Processed
            }
            Err(e) => {
                self.failed = Some(End::Tls(e));
                Intake::Failed
            }
        }
    }

    /// The decrypted bytes rustls holds, one record's at a time, for the
    /// local end to take straight from rustls's buffer ([`Channel::consume`]
    /// what it took); once none are left, how the server's side ended, if it has.
    pub(crate) fn plaintext(&mut self) -> Plain<'_> {
        match self.conn.reader().into_first_chunk() {
            Ok([]) => Plain::End(End::CloseNotify),
            Ok(chunk) => Plain::Data(chunk),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Plain::End(End::TcpEof),
            Err(_) => match self.failed.take() {
                Some(end) => Plain::End(end),
                None => Plain::Empty,
            },
        }
    }

    /// The local end took the first `n` bytes [`Channel::plaintext`] gave.
    pub(crate) fn consume(&mut self, n: usize) {
        self.conn.reader().consume(n);
        self.held = self.held.saturating_sub(n);
    }

    /// Decrypted bytes rustls holds, not yet consumed.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The failure kept by [`Channel::take`], when the handshake is under way
    /// (so there is no plaintext to read first).
    pub(crate) fn take_failure(&mut self) -> Option<End> {
        self.failed.take()
    }

    /// Encrypts as much of `bytes` as rustls takes (nothing once it holds
    /// [`BUDGET`] unsent, or before the handshake is done).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(bytes)
    }

    /// Like [`Channel::write`], from several slices.
    pub(crate) fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.conn.writer().write_vectored(bufs)
    }

    /// Queues close_notify: our direction is over.
    pub(crate) fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// Writes queued records to `wire` until none are left; `WouldBlock`
    /// once it is full.
    pub(crate) fn send(&mut self, wire: &mut impl Write) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(wire) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A suite or group the provider gains (a rustls or ring upgrade) gets
    /// a name here too, or this fails.
    #[test]
    fn every_suite_and_group_of_the_provider_has_a_name() {
        let provider = rustls::crypto::ring::default_provider();
        for suite in &provider.cipher_suites {
            let suite = suite.suite();
            assert!(suite_name(suite).is_some(), "{suite:?} has no name");
        }
        for group in &provider.kx_groups {
            let group = group.name();
            assert!(group_name(group).is_some(), "{group:?} has no name");
        }
    }
}
