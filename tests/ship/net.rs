//! A loopback TLS edge with a test CA, and private `/etc/hosts` and
//! `/etc/resolv.conf` for the binary, so that the names it resolves are the
//! test's.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// A hosts file in `dir` giving each of `names` the address 127.0.0.1 only, where
/// the edge listens.
pub fn hosts_file(dir: &TempDir, names: &[&str]) -> PathBuf {
    let path = dir.join("hosts");
    let lines: String = names.iter().map(|n| format!("127.0.0.1 {n}\n")).collect();
    fs::write(&path, lines).unwrap();
    path
}

/// `program` (the binary, or qemu and the binary) run in a private mount
/// namespace in which `/etc/hosts` is `hosts` and, if given, `/etc/resolv.conf`
/// is `resolv`: the test decides what names resolve to, for the binary alone.
pub fn with_private_etc(program: &[&OsStr], hosts: &Path, resolv: Option<&Path>) -> Command {
    let mut script = String::from(r#"mount --bind "$HOSTS" /etc/hosts && "#);
    if resolv.is_some() {
        script.push_str(r#"mount --bind "$RESOLV" /etc/resolv.conf && "#);
    }
    script.push_str(r#"exec "$@""#);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &script, "sh"])
        .args(program)
        .env("HOSTS", hosts);
    if let Some(resolv) = resolv {
        cmd.env("RESOLV", resolv);
    }
    cmd
}
