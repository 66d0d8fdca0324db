//! Looking a name up with the system's `getaddrinfo`, keeping its error code.
//!
//! std's lookup turns a failure's `EAI_*` code into text ("failed to lookup
//! address information: ..."), worded differently by glibc and musl; messages
//! are built from typed values, so the code is kept as a [`LookupError`].
//! On Windows std's lookup is ws2_32's `getaddrinfo`, whose error code is the
//! `EAI_*` code (a WSA error): std's is used there and the code taken from it.

#[cfg(unix)]
use std::ffi::CString;
use std::fmt;
use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
#[cfg(unix)]
use std::ptr;

#[cfg(unix)]
use libc as eai;

/// getaddrinfo's codes by their POSIX names: on Windows they are WSA errors.
#[cfg(windows)]
mod eai {
    use windows_sys::Win32::Networking::WinSock as ws;
    pub(super) const EAI_NONAME: i32 = ws::WSAHOST_NOT_FOUND;
    pub(super) const EAI_NODATA: i32 = ws::WSANO_DATA;
    pub(super) const EAI_AGAIN: i32 = ws::WSATRY_AGAIN;
    pub(super) const EAI_FAIL: i32 = ws::WSANO_RECOVERY;
    pub(super) const EAI_MEMORY: i32 = ws::WSA_NOT_ENOUGH_MEMORY;
    pub(super) const EAI_FAMILY: i32 = ws::WSAEAFNOSUPPORT;
    pub(super) const EAI_SERVICE: i32 = ws::WSATYPE_NOT_FOUND;
}

/// A `getaddrinfo` failure: its `EAI_*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupError(pub libc::c_int);

/// The code in glibc's words (lowercase), whatever the libc.
impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self.0 {
            eai::EAI_NONAME => "name or service not known",
            eai::EAI_NODATA => "no address associated with hostname",
            eai::EAI_AGAIN => "temporary failure in name resolution",
            eai::EAI_FAIL => "non-recoverable failure in name resolution",
            eai::EAI_MEMORY => "memory allocation failure",
            eai::EAI_FAMILY => "address family not supported",
            eai::EAI_SERVICE => "service not supported for the socket type",
            code => return write!(f, "the resolver failed (getaddrinfo code {code})"),
        };
        f.write_str(words)
    }
}

impl std::error::Error for LookupError {}

/// A lookup failure's `io::Error`, carrying its code.
fn failed(code: libc::c_int) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, LookupError(code))
}

/// Every TCP address of `name`, with `port`; `EAI_SYSTEM` as its errno,
/// any other failure as a [`LookupError`] inside the `io::Error`.
#[cfg(unix)]
pub fn lookup(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let name = CString::new(name).map_err(|_| failed(libc::EAI_NONAME))?;
    // SAFETY: addrinfo is plain data; all-zero is the "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated, `hints` and `list` are live; on
    // success `list` owns a list that is freed below, once.
    let code = unsafe { libc::getaddrinfo(name.as_ptr(), ptr::null(), &hints, &mut list) };
    match code {
        0 => {}
        libc::EAI_SYSTEM => return Err(io::Error::last_os_error()),
        code => return Err(failed(code)),
    }
    let mut addrs = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: `node` is an entry of the list getaddrinfo returned, not
        // yet freed; its `ai_addr` holds `ai_addrlen` bytes of the family's
        // sockaddr, read unaligned.
        unsafe {
            let entry = &*node;
            let len = entry.ai_addrlen as usize;
            match entry.ai_family {
                libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                    let sin = ptr::read_unaligned(entry.ai_addr.cast::<libc::sockaddr_in>());
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    addrs.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
                }
                libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                    let sin6 = ptr::read_unaligned(entry.ai_addr.cast::<libc::sockaddr_in6>());
                    let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    addrs.push(SocketAddr::V6(SocketAddrV6::new(
                        ip,
                        port,
                        sin6.sin6_flowinfo,
                        sin6.sin6_scope_id,
                    )));
                }
                _ => {}
            }
            node = entry.ai_next;
        }
    }
    // SAFETY: `list` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(addrs)
}

/// Every TCP address of `name`, with `port`; a resolver failure as a
/// [`LookupError`] inside the `io::Error`, any other as it came.
#[cfg(windows)]
pub fn lookup(name: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    let codes = [
        eai::EAI_NONAME,
        eai::EAI_NODATA,
        eai::EAI_AGAIN,
        eai::EAI_FAIL,
        eai::EAI_MEMORY,
        eai::EAI_FAMILY,
        eai::EAI_SERVICE,
    ];
    match (name, port).to_socket_addrs() {
        Ok(addrs) => Ok(addrs.collect()),
        Err(e) => match e.raw_os_error() {
            Some(code) if codes.contains(&code) => Err(failed(code)),
            _ => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_in_etc_hosts_resolves_with_the_port() {
        let addrs = lookup("localhost", 8443).unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 8443 && a.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[test]
    fn failure_codes_read_as_glibc_words_whatever_the_libc() {
        assert_eq!(
            LookupError(eai::EAI_NONAME).to_string(),
            "name or service not known"
        );
        assert_eq!(
            LookupError(eai::EAI_AGAIN).to_string(),
            "temporary failure in name resolution"
        );
        assert_eq!(
            LookupError(12345).to_string(),
            "the resolver failed (getaddrinfo code 12345)"
        );
    }
}
