//! Name resolution that never leaves the machine: a private network namespace
//! (loopback only) and a DNS server on its UDP 127.0.0.1:53, which a test points
//! `/etc/resolv.conf` at. Port 53 cannot be chosen, so the namespace is what keeps
//! the server from colliding with the machine's, or another test's.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// How long the server waits for a query before it stops: long after its test is done.
const IDLE: Duration = Duration::from_secs(60);

/// A DNS server answering A queries for a few names with 127.0.0.1 (or the
/// address [`Dns::point`] gives a name), other query types for those names
/// with no data, and every other name with NXDOMAIN (the name does not exist).
pub struct Dns {
    asked: Arc<Mutex<Vec<String>>>,
    /// Names answered with another address than 127.0.0.1.
    pointed: Arc<Mutex<Vec<(String, Ipv4Addr)>>>,
}

impl Dns {
    /// Starts the server on UDP 127.0.0.1:53 of the calling thread's network
    /// namespace (see [`in_private_network`]).
    pub fn start(known: &'static [&'static str]) -> Dns {
        let sock = UdpSocket::bind("127.0.0.1:53").unwrap_or_else(|e| {
            panic!("cannot bind UDP 127.0.0.1:53 ({e}): start it in_private_network, as root")
        });
        sock.set_read_timeout(Some(IDLE)).unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let pointed: Arc<Mutex<Vec<(String, Ipv4Addr)>>> = Arc::default();
        let log = Arc::clone(&asked);
        let addresses = Arc::clone(&pointed);
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let address_of = |name: &str| {
                    let pointed = addresses.lock().unwrap();
                    let found = pointed
                        .iter()
                        .rev()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name));
                    found.map(|(_, ip)| *ip).or_else(|| {
                        let known = known.iter().any(|k| k.eq_ignore_ascii_case(name));
                        known.then_some(Ipv4Addr::LOCALHOST)
                    })
                };
                if let Some((name, answer)) = answer(&buf[..n], address_of) {
                    log.lock().unwrap().push(name);
                    let _ = sock.send_to(&answer, from);
                }
            }
        });
        Dns { asked, pointed }
    }

    /// From now on, answers `name` with `ip`: the name's address changes.
    pub fn point(&self, name: &str, ip: Ipv4Addr) {
        self.pointed.lock().unwrap().push((name.to_string(), ip));
    }

    /// How many queries (of any type) have asked about `name`.
    pub fn asked(&self, name: &str) -> usize {
        let asked = self.asked.lock().unwrap();
        asked
            .iter()
            .filter(|n| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// The name asked about and the response to `query`, given each name's
/// address (`None`: it does not exist); `None` if the query does not parse.
fn answer(
    query: &[u8],
    address_of: impl Fn(&str) -> Option<Ipv4Addr>,
) -> Option<(String, Vec<u8>)> {
    const TYPE_A: u16 = 1;
    const NO_ERROR: u8 = 0;
    const NXDOMAIN: u8 = 3;
    // Header (12 bytes), then one question: labels, a zero byte, type, class.
    let mut at = 12;
    let mut labels = Vec::new();
    while *query.get(at)? != 0 {
        let len = usize::from(query[at]);
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).to_lowercase());
        at += 1 + len;
    }
    let question_end = at + 5;
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    let name = labels.join(".");
    let address = address_of(&name);
    let exists = address.is_some();
    let answers: u8 = (exists && qtype == TYPE_A).into();
    let rcode = if exists { NO_ERROR } else { NXDOMAIN };
    let mut out = Vec::with_capacity(question_end + 16);
    out.extend_from_slice(query.get(..2)?); // id
                                            // A response, recursion desired and available, and the rcode.
    out.extend_from_slice(&[0x81, 0x80 | rcode]);
    out.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    if let Some(ip) = address.filter(|_| answers == 1) {
        // Name (pointer to the question), A, IN, TTL 60, 4 bytes: the address.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some((name, out))
}

/// The files of an `/etc` whose name lookups go to [`Dns`] on 127.0.0.1
/// (after `localhost` from the hosts file), for `with_etc`.
pub const RESOLVER_FILES: [&str; 3] = ["hosts", "resolv.conf", "nsswitch.conf"];

/// Writes [`RESOLVER_FILES`] into `dir`, which becomes that `/etc`.
pub fn write_resolver_etc(dir: &std::path::Path) {
    for (name, text) in RESOLVER_FILES.iter().zip([
        "127.0.0.1 localhost\n::1 localhost\n",
        "nameserver 127.0.0.1\n",
        "hosts: files dns\n",
    ]) {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// Runs `f` on a thread of its own in a new network namespace with only
/// loopback, up: the sockets and child processes it makes live there, and
/// nothing they send can leave the machine. The thread is new so that nothing
/// else in the test process (or a later test on the same thread) ends up in
/// it. Needs root.
pub fn in_private_network<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let outcome = thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread,
        // this new one, into a new network namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed: {} (this test needs root)",
            io::Error::last_os_error()
        );
        loopback_up();
        f()
    })
    .join();
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Brings `lo` up in the calling thread's network namespace (a new namespace
/// starts with it down): what `ip link set lo up` does.
fn loopback_up() {
    // Any socket will do to name the interface in the ioctls.
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    // SAFETY: all-zero is a valid ifreq.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the flags member of
    // a valid ifreq naming an interface.
    unsafe {
        let rc = libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req);
        assert_eq!(rc, 0, "SIOCGIFFLAGS lo: {}", io::Error::last_os_error());
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let rc = libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req);
        assert_eq!(rc, 0, "SIOCSIFFLAGS lo: {}", io::Error::last_os_error());
    }
}
