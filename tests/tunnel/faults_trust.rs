//! Hostile certificates and servers: nothing that should not be trusted is,
//! and each refusal names the host and the check that failed.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::util::{self, backend, Behaviour, Ca, EdgeBuilder, World, HOST};

#[test]
fn certificate_not_yet_valid_is_refused_with_its_start_date() {
    let w = World::new();
    let leaf = w.ca.leaf_valid(&[HOST], (2099, 1, 2), (2100, 1, 1));
    let (run, edge) = w.run_against(leaf, HOST);
    run.assert_failure(4, &[HOST, "not valid until 2099-01-02", "check the clock"]);
    assert!(edge.sni_seen().is_empty());
}

#[test]
fn chain_through_an_untrusted_intermediate_is_refused() {
    let w = World::new();
    // The intermediate is sent by the server but chains to a root we do not trust.
    let stranger = Ca::new(w.dir.path(), "stranger-root");
    let inter = stranger.intermediate(w.dir.path(), "stranger-inter");
    let mut leaf = inter.leaf(&[HOST]);
    leaf.chain.push(inter.cert.clone());
    let (run, edge) = w.run_against(leaf, HOST);
    run.assert_failure(4, &[HOST, "unknown issuer"]);
    assert!(edge.sni_seen().is_empty());

    // Control: the same shape under our root is accepted, so the refusal
    // above is about trust, not about intermediates.
    let ours = w.ca.intermediate(w.dir.path(), "our-inter");
    let mut leaf = ours.leaf(&[HOST]);
    leaf.chain.push(ours.cert.clone());
    let (run, _edge) = w.run_against(leaf, HOST);
    run.assert_clean();
    assert_eq!(run.stdout, b"secret\n");
}

#[test]
fn wildcard_matches_one_label_only() {
    let w = World::new();
    let (run, edge) = w.run_against(w.ca.leaf(&["*.vm.vers.sh"]), "x.y.vm.vers.sh");
    run.assert_failure(
        4,
        &[
            "not valid for x.y.vm.vers.sh",
            "name mismatch",
            "covers *.vm.vers.sh",
        ],
    );
    assert!(edge.sni_seen().is_empty());

    // Control: one label deep is what the wildcard is for.
    let (run, _edge) = w.run_against(w.ca.leaf(&["*.vm.vers.sh"]), HOST);
    run.assert_clean();
    assert_eq!(run.stdout, b"secret\n");
}

#[test]
fn server_requiring_a_client_certificate_is_explained() {
    for tls12 in [false, true] {
        let w = World::new();
        let mut edge = w
            .edge_builder(HOST, Behaviour::Echo)
            .require_client_cert(&w.ca);
        if tls12 {
            edge = edge.tls12_only();
        }
        let edge = edge.start();
        let run = util::run(&mut w.tunnel(edge.addr(), HOST), b"secret\n");
        run.assert_failure(4, &["requires a client certificate", "does not send one"]);
        assert!(run.stdout.is_empty(), "tls12={tls12}");
    }
}

#[test]
fn ip_literal_sends_no_sni_and_is_verified_against_the_ip() {
    let w = World::new();
    let edge = EdgeBuilder::new(w.ca.leaf(&["127.0.0.1", "::1"]))
        .backend(backend::start(Behaviour::Echo))
        .ipv6()
        .start();
    for addr in [edge.addr(), edge.addr6()] {
        let mut cmd = util::bare_tunnel();
        cmd.arg("--cacert")
            .arg(&w.ca.pem_path)
            .arg(addr.to_string());
        let run = util::run(&mut cmd, b"by address\n");
        run.assert_clean();
        assert_eq!(run.stdout, b"by address\n");
    }
    assert_eq!(edge.sni_seen(), vec![None, None], "no SNI for IP literals");

    // A certificate for a name does not cover the address.
    let named = w.edge(HOST, Behaviour::Echo);
    let mut cmd = util::bare_tunnel();
    cmd.arg("--cacert")
        .arg(&w.ca.pem_path)
        .arg(named.addr().to_string());
    util::run(&mut cmd, b"x")
        .assert_failure(4, &["not valid for 127.0.0.1", "covers x.vm.vers.sh"]);
}

/// `openssl s_server` for one connection on a free port, with HOST's
/// certificate from the test CA and `args` of its own.
struct OldServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl OldServer {
    /// Limited to one old protocol version.
    fn start(w: &World, version_flag: &str) -> OldServer {
        // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level.
        Self::with(w, &[version_flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
    }

    fn with(w: &World, args: &[&str]) -> OldServer {
        let (cert, key) = write_leaf(w, HOST);
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-naccept", "1"])
            .args(args)
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            // s_server stops when its stdin ends: keep it open.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is installed (see .ci/run)");
        let mut stdout = child.stdout.take().unwrap();
        let addr = loop {
            let line = util::read_line_within(&mut stdout, util::HANG);
            if let Some(addr) = line.strip_prefix("ACCEPT ") {
                break addr.trim().parse().unwrap();
            }
        };
        // Keep reading, so that s_server never blocks on a full pipe.
        util::drain(stdout);
        OldServer { child, addr }
    }
}

impl Drop for OldServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certificate for `name` from the test CA, and its key, as PEM files.
fn write_leaf(w: &World, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let leaf = w.ca.leaf(&[name]);
    let cert = w.dir.path().join(format!("{name}.crt"));
    let key = w.dir.path().join(format!("{name}.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (cert, key)
}

#[test]
fn a_warning_alert_from_the_server_prints_nothing_on_a_clean_session() {
    // s_server with a second certificate for another name sends an
    // unrecognized_name warning to a client that asks for HOST, and goes on.
    let w = World::new();
    let (cert2, key2) = write_leaf(&w, "other.test");
    let (cert2, key2) = (cert2.to_str().unwrap(), key2.to_str().unwrap());
    let server = OldServer::with(
        &w,
        &[
            "-tls1_2",
            "-servername",
            "other.test",
            "-cert2",
            cert2,
            "-key2",
            key2,
        ],
    );
    let run = util::run(&mut w.tunnel(server.addr, HOST), b"hello\n");
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "", "a clean session prints nothing");
}

#[test]
fn server_speaking_only_tls_1_0_or_1_1_is_refused() {
    for flag in ["-tls1", "-tls1_1"] {
        let w = World::new();
        let server = OldServer::start(&w, flag);
        let run = util::run(&mut w.tunnel(server.addr, HOST), b"secret\n");
        run.assert_failure(4, &[HOST, "does not support TLS 1.2 or 1.3"]);
    }
}

#[test]
fn unusable_ca_files_are_usage_errors_naming_the_file() {
    let w = World::new();
    let dir = w.dir.path();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let text = dir.join("notes.pem");
    std::fs::write(&text, "this is not a certificate\n").unwrap();
    let key_only = dir.join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let truncated = dir.join("truncated.pem");
    std::fs::write(&truncated, &w.ca.pem[..w.ca.pem.len() / 2]).unwrap();
    let missing = dir.join("missing.pem");
    for (path, reason) in [
        (&missing, "no such file"),
        (&empty, "it is empty"),
        (&text, "no PEM \"CERTIFICATE\" block"),
        (&key_only, "no PEM \"CERTIFICATE\" block"),
        (&broken, "not valid base64"),
        (&truncated, "no END line"),
        (&dir.to_path_buf(), "it is a directory"),
    ] {
        let mut cmd = util::bare_tunnel();
        cmd.arg("--cacert").arg(path).arg(HOST);
        let run = util::run(&mut cmd, b"");
        run.assert_failure(2, &[&path.display().to_string(), reason]);
    }
}
