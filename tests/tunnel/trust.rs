//! Trust: every certificate failure stops the tunnel before a byte moves, with
//! one line that says what was wrong and for which name.

use crate::util::{self, Behaviour, Ca, World, HOST};

#[test]
fn unknown_issuer_is_refused() {
    let w = World::new();
    let stranger = Ca::new(w.dir.path(), "stranger-ca");
    let (run, edge) = w.run_against(stranger.leaf(&[HOST]), HOST);
    run.assert_failure(4, &[HOST, "unknown issuer", "--cacert"]);
    assert!(edge.sni_seen().is_empty(), "no session may be established");
}

#[test]
fn built_in_roots_do_not_trust_a_private_ca() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = util::tunnel_without_ca(edge.addr(), HOST);
    util::run(&mut cmd, b"secret\n").assert_failure(4, &["unknown issuer"]);
}

#[test]
fn name_mismatch_names_the_host_and_what_the_certificate_covers() {
    let w = World::new();
    let (run, edge) = w.run_against(w.ca.leaf(&["a.vm.vers.sh"]), "b.vm.vers.sh");
    run.assert_failure(4, &["not valid for b.vm.vers.sh", "covers a.vm.vers.sh"]);
    assert!(edge.sni_seen().is_empty());
}

#[test]
fn expired_certificate_is_refused_with_its_date() {
    let w = World::new();
    let leaf = w.ca.leaf_valid(&[HOST], (2020, 1, 1), (2021, 3, 4));
    let (run, _edge) = w.run_against(leaf, HOST);
    run.assert_failure(4, &[HOST, "expired on 2021-03-04"]);
}

#[test]
fn ssl_cert_file_adds_a_trust_anchor() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = util::tunnel_without_ca(edge.addr(), HOST);
    cmd.env("SSL_CERT_FILE", &w.ca.pem_path);
    let run = util::run(&mut cmd, b"ok\n");
    run.assert_clean();
    assert_eq!(run.stdout, b"ok\n");
}
