//! A mapping's listening sockets: the loopback's two, or one address.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use mio::net::TcpListener;

use crate::error::{Error, Result};
use crate::target::Listen;

#[cfg(unix)]
use libc::EADDRNOTAVAIL;
#[cfg(windows)]
use windows_sys::Win32::Networking::WinSock::WSAEADDRNOTAVAIL as EADDRNOTAVAIL;

/// The listeners for `spec`: the loopback's two (the same port on both,
/// IPv6 skipped where the machine has none), or the one address given.
pub(crate) fn listen(spec: &Listen) -> Result<Vec<TcpListener>> {
    let listeners = match spec.bind {
        Some(ip) => vec![bind(SocketAddr::new(ip, spec.port))?],
        None => loopback(spec.port)?,
    };
    if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
        if !addr.ip().is_loopback() {
            log::warn!(
                "warning: {addr} is not the loopback: anyone who can reach it reaches the VM's port"
            );
        }
    }
    Ok(listeners)
}

/// 127.0.0.1 and ::1 on one port (a free one for port 0: tried a few times,
/// since another program may hold the port IPv4 picked on IPv6).
fn loopback(port: u16) -> Result<Vec<TcpListener>> {
    const TRIES: usize = 8;
    for _ in 0..TRIES {
        let v4 = bind(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))?;
        let chosen = v4.local_addr().map_or(port, |a| a.port());
        let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), chosen);
        match TcpListener::bind(v6) {
            Ok(l) => return Ok(vec![v4, l]),
            Err(e) if e.raw_os_error() == Some(EADDRNOTAVAIL) => {
                log::debug!("no IPv6 loopback here ({e}); listening on IPv4 only");
                return Ok(vec![v4]);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && port == 0 => continue,
            Err(source) => return Err(Error::Listen { addr: v6, source }),
        }
    }
    Err(Error::Listen {
        addr: SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        source: io::ErrorKind::AddrInUse.into(),
    })
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|source| Error::Listen { addr, source })
}
