//! Side by side with the recipe vers-tunnel replaces, `openssl s_client`, on
//! the same edge: what both manage, and where they differ.

use crate::util::session::{bin, Session};
use crate::util::sshd::{require, Vm};
use crate::util::{self, Prng, HOST, MIB};

/// The recipe from the docs, `openssl s_client -connect %h:443 -servername %h
/// -quiet 2>/dev/null`, pointed at the test edge instead of %h:443.
fn s_client_recipe(vm: &Vm, stderr: &str) -> String {
    require("openssl", "openssl");
    let edge = vm.edge.addr6();
    format!(
        "openssl s_client -connect [{}]:{} -servername %h -quiet {stderr}",
        edge.ip(),
        edge.port()
    )
}

#[test]
fn ssh_and_scp_work_through_both_vers_tunnel_and_openssl_s_client() {
    let s = Session::new();
    let recipe = s.client_via("openssl", &s_client_recipe(&s.vm, "2>/dev/null"));
    let data = Prng::bytes(26, 64 * MIB);
    let local = s.path("local.bin");
    std::fs::write(&local, &data).unwrap();
    let expected = util::sha256(&data);
    let mut timings = Vec::new();
    for (name, client) in [("vers-tunnel", &s.client), ("openssl s_client", &recipe)] {
        let run = util::run(&mut client.ssh("true"), b"");
        s.assert_quiet_success(&run, &format!("ssh true via {name}"));
        let ssh_true = run.elapsed;

        let remote_path = s.path(&format!("remote-{}", name.replace(' ', "-")));
        let up = util::run(
            client
                .command("scp")
                .arg(&local)
                .arg(client.remote(&remote_path)),
            b"",
        );
        s.assert_quiet_success(&up, &format!("scp up via {name}"));
        let back = s.path("back.bin");
        let down = util::run(
            client
                .command("scp")
                .arg(client.remote(&remote_path))
                .arg(&back),
            b"",
        );
        s.assert_quiet_success(&down, &format!("scp down via {name}"));
        assert_eq!(
            util::sha256(&std::fs::read(&remote_path).unwrap()),
            expected
        );
        assert_eq!(util::sha256(&std::fs::read(&back).unwrap()), expected);
        timings.push((name, ssh_true, up.elapsed, down.elapsed));
    }
    assert_eq!(s.vm.edge.sni_seen(), vec![Some(HOST.to_string()); 6]);
    for (name, ssh_true, up, down) in timings {
        eprintln!(
            "{name:>16}: ssh true {ssh_true:>8.1?}, scp 64 MiB up {up:>8.1?}, down {down:>8.1?}"
        );
    }
}

#[test]
fn only_openssl_s_client_lets_ssh_through_an_edge_it_cannot_verify() {
    // Neither proxy is told about the test CA: the edge could be anyone.
    let s = Session::new();
    let tunnel = s.client_via(
        "untrusting",
        &format!(
            "{} --connect-to {} %h",
            bin().display(),
            util::connect_to("%h", s.vm.edge.addr6())
        ),
    );
    let run = util::run(&mut tunnel.ssh("true"), b"");
    assert_eq!(run.code(), 255, "ssh must fail: {}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("vers-tunnel: "))
        .unwrap_or_else(|| panic!("no vers-tunnel line in {:?}", run.stderr));
    assert!(
        line.contains(HOST) && line.contains("certificate"),
        "{line}"
    );
    eprintln!("ssh through vers-tunnel, CA unknown: exit 255, {line}");

    // The recipe as documented hides its stderr: the session just works.
    let recipe = s.client_via("recipe", &s_client_recipe(&s.vm, "2>/dev/null"));
    let run = util::run(&mut recipe.ssh("echo root shell"), b"");
    s.assert_quiet_success(&run, "ssh via the recipe");
    assert_eq!(run.stdout, b"root shell\n");

    // Without 2>/dev/null it also talks on every connection.
    let chatty = s.client_via("chatty", &s_client_recipe(&s.vm, ""));
    let run = util::run(&mut chatty.ssh("true"), b"");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("verify error"), "{:?}", run.stderr);
    eprintln!(
        "ssh through the recipe, CA unknown: exit 0, stderr {:?}",
        run.stderr
    );
}
