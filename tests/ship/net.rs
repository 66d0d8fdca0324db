//! A loopback TLS edge with a test CA, a loopback DNS server, and a private
//! network namespace to run them in.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::common::clean_env;
use crate::util::{assert_success, run, text, TempDir, RUN_DEADLINE};

/// A one-connection TLS server with a test CA: it reads until the client's
/// close_notify, answers with the bytes upper-cased, and closes cleanly.
struct Edge {
    addr: SocketAddr,
    ca_pem: PathBuf,
    served: thread::JoinHandle<io::Result<Vec<u8>>>,
}

fn start_edge(dir: &TempDir, name: &str) -> Edge {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vers-tunnel ship test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut leaf_params = CertificateParams::new(vec![name.to_string()]).unwrap();
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    let ca_pem = dir.join("ca.pem");
    fs::write(&ca_pem, ca.pem()).unwrap();

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = thread::spawn(move || {
        let (sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(RUN_DEADLINE))?;
        let conn = rustls::ServerConnection::new(Arc::new(config)).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut got = Vec::new();
        tls.read_to_end(&mut got)?;
        tls.write_all(&got.to_ascii_uppercase())?;
        tls.conn.send_close_notify();
        tls.flush()?;
        tls.sock.shutdown(std::net::Shutdown::Write)?;
        Ok(got)
    });
    Edge {
        addr,
        ca_pem,
        served,
    }
}

/// Sends a line through a vers-tunnel to a fresh edge for `x.vm.vers.sh`, reached
/// as `connect_host` (a name the binary must resolve itself), and checks the answer.
/// `cmd` runs the binary: the binary itself, or qemu or unshare with it as argument.
pub fn relay_through_edge(mut cmd: Command, dir: &TempDir, connect_host: &str) {
    let edge = start_edge(dir, "x.vm.vers.sh");
    clean_env(&mut cmd);
    let rule = format!("x.vm.vers.sh:443:{connect_host}:{}", edge.addr.port());
    cmd.arg("--cacert")
        .arg(&edge.ca_pem)
        .args(["--connect-to", &rule, "--connect-timeout", "20"])
        .arg("x.vm.vers.sh");
    let out = run(&mut cmd, b"hello from a static binary\n", RUN_DEADLINE);
    assert_success(&out, &format!("{cmd:?} through the edge"));
    assert_eq!(text(&out.stdout), "HELLO FROM A STATIC BINARY\n");
    assert_eq!(text(&out.stderr), "", "a clean session prints nothing");
    let got = edge.served.join().unwrap().unwrap();
    assert_eq!(got, b"hello from a static binary\n");
}

// ---- a loopback DNS server ------------------------------------------------------

/// Answers A queries for `name` with 127.0.0.1 and everything else with no
/// answer, on UDP 127.0.0.1:53 of the calling thread's network namespace.
/// Returns how many queries for `name` it has seen.
pub fn start_dns(name: &'static str) -> Arc<AtomicUsize> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:53").unwrap();
    sock.set_read_timeout(Some(RUN_DEADLINE)).unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        // Ends when no query comes for RUN_DEADLINE, long after the test is done.
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(answer) = dns_answer(&buf[..n], name, &counter) {
                let _ = sock.send_to(&answer, from);
            }
        }
    });
    asked
}

fn dns_answer(query: &[u8], name: &str, asked: &AtomicUsize) -> Option<Vec<u8>> {
    const TYPE_A: u16 = 1;
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
    let matches = labels.join(".") == name;
    if matches {
        asked.fetch_add(1, Ordering::Relaxed);
    }
    let answers: u16 = (matches && qtype == TYPE_A).into();
    let mut out = Vec::with_capacity(question_end + 16);
    out.extend_from_slice(&query[..2]); // id
    out.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available, no error
    out.extend_from_slice(&[0, 1, 0, answers as u8, 0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    if answers == 1 {
        // Name (pointer to the question), A, IN, TTL 60, 4 bytes: 127.0.0.1.
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

/// Runs `f` on a thread of its own in a new network namespace with loopback up,
/// so that nothing else in the test process (or a later test on the same
/// thread) ends up in it.
pub fn in_private_network(f: impl FnOnce() + Send + 'static) {
    let outcome = thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET moves only the calling thread,
        // this new one, into a new network namespace; the sockets and children
        // it makes from here on live there.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed: {} (this test needs root)",
            io::Error::last_os_error()
        );
        let up = run(
            Command::new("ip").args(["link", "set", "lo", "up"]),
            b"",
            RUN_DEADLINE,
        );
        assert_success(&up, "ip link set lo up (Debian package iproute2)");
        f();
    })
    .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
