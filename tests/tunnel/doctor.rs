//! `vers-tunnel doctor`: each common failure gets its own verdict and exit
//! status, in text and in `--json` alike; and the tunnel's own status 6 when
//! the edge closes before the service speaks (`tunnel_status`).

// Its haproxy edge serves the relay tests too.
pub mod support;

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::process::Stdio;

#[cfg(target_os = "linux")]
use crate::util::common::dns::{in_private_network, write_resolver_etc, Dns, RESOLVER_FILES};
#[cfg(target_os = "linux")]
use crate::util::net::BlackHole;
use crate::util::net::ClosedPort;
use crate::util::proxy::{Script, StubProxy};
use crate::util::pty::Pty;
use crate::util::sshd::Sshd;
use crate::util::{self, Edge, EdgeBuilder, Mode, World, HOST};
use support::{
    date_in, doctor, doctor_without_ca, ClosedPort6, Diagnosis, Haproxy, Service, PROMPT,
};

/// What the doctor sends first on port 443, as ssh would.
const SSH_IDENT: &[u8] = b"SSH-2.0-vers-tunnel-doctor\r\n";

/// A pretend SSH server's first line.
const BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.6 pretend\r\n";

/// An edge with a valid certificate for HOST, sending every session to `backend`.
fn edge_to(w: &World, backend: SocketAddr) -> Edge {
    EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(backend)
        .start()
}

#[test]
fn healthy_ssh_route_reports_the_banner_and_every_step() {
    let w = World::new();
    let sshd = Sshd::start(w.dir.path());
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .route(HOST, sshd.addr())
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        0,
        &[
            "x.vm.vers.sh:443 works",
            "SSH server answers (SSH-2.0-OpenSSH_",
        ],
    );
    assert_eq!(d.steps(), ["config", "dns", "tcp", "tls", "service"]);
    let banner = d.step("service")["banner"].as_str().unwrap();
    assert!(banner.starts_with("SSH-2.0-OpenSSH_"), "{banner}");
    assert_eq!(d.step("service")["sent"], "SSH-2.0-vers-tunnel-doctor");
    let tls = d.step("tls");
    assert_eq!(tls["trusted"], true);
    assert_eq!(tls["version"], "TLS 1.3");
    assert_eq!(tls["certificates"][0]["names"][0], HOST);
    assert_eq!(tls["certificates"][0]["issuer_cn"], "test-ca");
    d.assert_line(&[
        "tls",
        "ok",
        "TLS 1.3",
        "the certificate is trusted for x.vm.vers.sh",
    ]);
    d.assert_line(&["service", "ok", "SSH banner: SSH-2.0-OpenSSH_"]);
    d.assert_line(&["CA file", "test-ca.pem: 1 certificate"]);
    d.assert_line(&["--connect-to: connecting to 127.0.0.1:"]);
}

#[test]
fn through_an_http_proxy_the_proxy_is_a_step_of_its_own() {
    // The doctor takes the tunnel's route: the proxy's addresses, its
    // CONNECT, then the edge's TLS inside the tunnel.
    let w = World::new();
    let sshd = Sshd::start(w.dir.path());
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .route(HOST, sshd.addr())
        .start();
    let config = crate::util::proxy::TinyproxyConfig {
        connect_ports: vec![edge.addr().port()],
        ..Default::default()
    };
    let proxy = crate::util::proxy::Tinyproxy::start(w.dir.path(), &config);
    let url = proxy.url(None);
    let d = Diagnosis::of(|| {
        let mut cmd = doctor(&w, edge.addr(), 443);
        cmd.env("HTTPS_PROXY", &url);
        cmd
    });
    d.assert_verdict(0, &["x.vm.vers.sh:443 works"]);
    assert_eq!(
        d.steps(),
        ["config", "dns", "tcp", "proxy", "tls", "service"]
    );
    assert_eq!(
        d.step("tcp")["addresses"][0]["address"],
        proxy.addr().to_string(),
        "TCP goes to the proxy"
    );
    d.assert_line(&[
        "proxy",
        "ok",
        "(from HTTPS_PROXY) opened a tunnel to 127.0.0.1:",
    ]);
    d.assert_line(&[&format!("proxy {url} (from HTTPS_PROXY)")]);
    assert_eq!(
        proxy.connects().len(),
        2,
        "one CONNECT per run (text, --json)"
    );
}

#[test]
fn through_a_proxy_named_by_its_address_the_dns_step_names_the_proxy() {
    // No --connect-to: the edge is named, the proxy is an IP literal, and the
    // proxy refuses, so nothing is ever looked up or reached for the edge.
    let proxy = StubProxy::start(Script::Answer(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec()));
    let d = Diagnosis::of(|| {
        let mut cmd = util::bare_tunnel();
        cmd.args(["doctor", HOST]).env("HTTPS_PROXY", proxy.url());
        cmd
    });
    d.assert_line(&[
        "dns",
        "ok",
        "127.0.0.1 is an IP address: nothing to look up",
    ]);
    assert_eq!(d.step("dns")["name"], serde_json::Value::Null);
}

#[test]
fn backend_not_listening_means_nothing_on_the_vm_accepted_the_connection() {
    let w = World::new();
    let closed = ClosedPort::new();
    let edge = edge_to(&w, closed.addr);
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        6,
        &[
            "TLS to the edge works, but nothing on the VM accepted the connection on port 443",
            "not running",
            "listens on 0.0.0.0 (IPv4 only) instead of ::",
            "the VM is not running",
        ],
    );
    let service = d.step("service");
    assert_eq!(service["ok"], false);
    assert_eq!(service["closed"], "close_notify");
    d.assert_line(&[
        "service",
        "FAIL",
        "the edge closed the connection cleanly",
        "before the service sent anything",
    ]);
    assert_eq!(d.step("tls")["ok"], true);
}

#[test]
fn edge_resetting_before_the_first_byte_is_the_same_diagnosis() {
    let w = World::new();
    let service = Service::start(b"");
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(service.addr)
        .mode(Mode::ResetAfter(0))
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        6,
        &["nothing on the VM accepted the connection on port 443"],
    );
    assert_eq!(d.step("service")["closed"], "reset");
    d.assert_line(&["the edge closed the connection abruptly (connection reset by peer)"]);
}

#[test]
fn a_tls_failure_after_the_service_spoke_is_an_unclean_end_as_in_the_tunnel() {
    let w = World::new();
    let service = Service::start(b"hello");
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(service.addr)
        .mode(Mode::CorruptAfter(5))
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    // The tunnel's status for a session that broke at the TLS layer.
    d.assert_verdict(
        5,
        &[
            "connection to x.vm.vers.sh ended uncleanly after 5 bytes received: \
             a TLS record from the server could not be decrypted",
        ],
    );
    assert_eq!(d.step("tls")["ok"], true);
}

#[test]
fn a_tls_failure_before_the_service_spoke_is_an_unclean_end_as_in_the_tunnel() {
    let w = World::new();
    let service = Service::start(b"");
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(service.addr)
        .mode(Mode::CorruptAfter(0))
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    // relay::a_tls_failure_before_the_first_byte_... has the same words.
    d.assert_verdict(
        5,
        &[
            "connection to x.vm.vers.sh ended uncleanly after 0 bytes received: \
             a TLS record from the server could not be decrypted",
        ],
    );
    assert_eq!(d.step("tls")["ok"], true);
}

#[test]
fn haproxy_edge_with_no_listener_behind_it_gets_the_same_diagnosis() {
    let w = World::new();
    let closed = ClosedPort::new();
    let edge = Haproxy::start(w.dir.path(), &w.ca.leaf(&[HOST]), closed.addr);
    let d = Diagnosis::of(|| doctor(&w, edge.addr, 443));
    d.assert_verdict(
        6,
        &["TLS to the edge works, but nothing on the VM accepted the connection on port 443"],
    );
    assert_eq!(d.step("service")["closed"], "close_notify");
    // haproxy retries the VM's port for about 3 s before it gives up: the
    // default wait (4 s) outlasts it.
    let waited = d.step("service")["ms"].as_f64().unwrap();
    assert!(waited < 4000.0, "{waited} ms");
    // Control: with a listener there, the same edge passes the banner on.
    let service = Service::start(BANNER);
    let edge = Haproxy::start(w.dir.path(), &w.ca.leaf(&[HOST]), service.addr);
    Diagnosis::of(|| doctor(&w, edge.addr, 443))
        .assert_verdict(0, &["SSH server answers (SSH-2.0-OpenSSH_9.6 pretend)"]);
}

#[test]
fn service_bound_to_ipv4_only_behind_an_edge_that_forwards_to_ipv6() {
    // The Vers edge reaches VMs over IPv6: a service listening on 0.0.0.0
    // (here 127.0.0.1:P) is not there for the edge, which goes to [::1]:P.
    let w = World::new();
    let (service, unbound) = (0..20)
        .find_map(|_| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let v6 = ClosedPort6::bind(listener.local_addr().unwrap().port())?;
            Some((Service::on(listener, BANNER), v6))
        })
        .expect("no port free on both 127.0.0.1 and [::1]");
    let edge = edge_to(&w, unbound.addr);
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        6,
        &[
            "nothing on the VM accepted the connection on port 443",
            "0.0.0.0 (IPv4 only) instead of ::",
        ],
    );
    // Control: the service is running, on IPv4.
    let edge = edge_to(&w, service.addr);
    Diagnosis::of(|| doctor(&w, edge.addr(), 443))
        .assert_verdict(0, &["SSH server answers (SSH-2.0-OpenSSH_9.6 pretend)"]);
}

#[test]
fn service_speaking_first_with_other_bytes_is_quoted_and_gets_only_the_ssh_line() {
    let w = World::new();
    let service = Service::start(b"220 mail.example ESMTP \x1b[31mready\r\n");
    let edge = edge_to(&w, service.addr);
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        0,
        &["x.vm.vers.sh:443 works", "the service on the VM answers"],
    );
    let quoted = r#"the service spoke first: "220 mail.example ESMTP \u{1b}[31mready\r\n""#;
    d.assert_line(&["service", "ok", quoted]);
    assert_eq!(
        d.step("service")["first_bytes"],
        quoted.split_once(": ").unwrap().1.trim_matches('"')
    );
    // Two runs, each sending the service exactly one SSH identification line.
    let both = [SSH_IDENT, SSH_IDENT].concat();
    util::wait_until(PROMPT, "the service to receive both lines", || {
        service.received() == both
    });
}

#[test]
fn chatty_service_sending_more_than_tls_buffers_is_quoted_not_called_closed() {
    // 64 KiB at once: more than rustls keeps of received plaintext (16 KiB)
    // until it is read.
    let w = World::new();
    let first = "220-chatty.example says hello\r\n";
    let greeting = [first, &"220-and more of the same\r\n".repeat(2600)].concat();
    let service = Service::start(Vec::leak(greeting.into_bytes()));
    let edge = edge_to(&w, service.addr);
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        0,
        &["x.vm.vers.sh:443 works", "the service on the VM answers"],
    );
    let quoted = d.step("service")["first_bytes"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        quoted.starts_with(r"220-chatty.example says hello\r\n"),
        "{quoted}"
    );
    assert_eq!(d.step("service")["closed"], serde_json::Value::Null);
    assert!(!d.text.contains("closed"), "{}", d.text);
}

#[test]
fn silent_service_on_another_port_waits_for_the_client_and_is_sent_nothing() {
    let w = World::new();
    let service = Service::start(b"");
    let edge = edge_to(&w, service.addr);
    let d = Diagnosis::of(|| {
        let mut cmd = doctor(&w, edge.addr(), 8080);
        cmd.args(["--wait", "1"]);
        cmd
    });
    d.assert_verdict(
        0,
        &[
            "x.vm.vers.sh:8080",
            "the service accepted the connection and waits for the client",
        ],
    );
    d.assert_line(&[
        "service",
        "ok",
        "connected; the service waits for the client (no bytes in 1.00 s)",
    ]);
    let service_step = d.step("service");
    assert_eq!(service_step["sent"], serde_json::Value::Null);
    assert!(
        service_step["ms"].as_f64().unwrap() >= 1000.0,
        "{service_step}"
    );
    assert_eq!(service.received(), b"", "the doctor sent the service bytes");
}

#[test]
fn untrusted_certificate_fails_with_the_tunnels_words_and_still_shows_the_chain() {
    let w = World::new();
    let service = Service::start(BANNER);
    let edge = edge_to(&w, service.addr);
    let d = Diagnosis::of(|| doctor_without_ca(edge.addr(), 443));
    d.assert_verdict(
        4,
        &[
            "TLS handshake with x.vm.vers.sh (127.0.0.1:",
            "not signed by a trusted authority (unknown issuer)",
            "--cacert FILE",
        ],
    );
    assert_eq!(d.steps(), ["config", "dns", "tcp", "tls"]);
    let tls = d.step("tls");
    assert_eq!(tls["trusted"], false);
    assert_eq!(tls["certificates"][0]["issuer_cn"], "test-ca");
    assert_eq!(tls["certificates"][0]["names"][0], HOST);
    d.assert_line(&[
        "certificate: subject CN",
        "covers x.vm.vers.sh",
        "issuer CN test-ca",
        "valid 2025-01-01 00:00:00 UTC to 2035-01-01 00:00:00 UTC",
    ]);
    assert!(service.received().is_empty());
}

#[test]
fn expired_certificate_says_when() {
    let w = World::new();
    let leaf = w.ca.leaf_valid(&[HOST], (2020, 1, 1), (2021, 1, 1));
    let edge = EdgeBuilder::new(leaf)
        .backend(Service::start(BANNER).addr)
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        4,
        &["the certificate for x.vm.vers.sh expired on 2021-01-01 00:00:00 UTC"],
    );
    let days = d.step("tls")["certificates"][0]["days_left"]
        .as_i64()
        .unwrap();
    assert!(days < -365, "{days}");
    d.assert_line(&[
        "certificate:",
        "to 2021-01-01 00:00:00 UTC (expired",
        "days ago)",
    ]);
}

#[test]
fn wrong_name_certificate_says_which_names_it_covers() {
    let w = World::new();
    let edge = EdgeBuilder::new(w.ca.leaf(&["other.vm.vers.sh"]))
        .backend(Service::start(BANNER).addr)
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        4,
        &["the certificate is not valid for x.vm.vers.sh (name mismatch): it covers other.vm.vers.sh"],
    );
    assert_eq!(
        d.step("tls")["certificates"][0]["names"][0],
        "other.vm.vers.sh"
    );
}

#[test]
fn certificate_expiring_within_14_days_passes_with_a_warning() {
    let w = World::new();
    let leaf = w.ca.leaf_valid(&[HOST], date_in(-30), date_in(7));
    let edge = EdgeBuilder::new(leaf)
        .backend(Service::start(BANNER).addr)
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(
        0,
        &[
            "SSH server answers",
            "but: the certificate for x.vm.vers.sh expires in 6 days",
        ],
    );
    let tls = d.step("tls");
    assert_eq!(tls["ok"], true);
    assert_eq!(tls["certificates"][0]["days_left"], 6);
    assert!(
        tls["warnings"][0]
            .as_str()
            .unwrap()
            .contains("expires in 6 days"),
        "{tls}"
    );
    d.assert_line(&["tls", "warn", "the certificate is trusted"]);
    d.assert_line(&["warning: the certificate for x.vm.vers.sh expires in 6 days"]);
}

#[test]
#[cfg(target_os = "linux")]
fn unresolvable_name_stops_at_dns_with_status_3() {
    // As in args.rs: the test's own nameserver says the name does not exist.
    const NAME: &str = "no-such-vm.invalid";
    let dir = util::TempDir::new("doctor");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    let (d, asked) = in_private_network(move || {
        let dns = Dns::start(&[]);
        let d = Diagnosis::of(|| {
            let mut cmd = util::bare_tunnel();
            cmd.args(["doctor", NAME]);
            util::with_etc(&mut cmd, &etc, &RESOLVER_FILES);
            cmd
        });
        (d, dns.asked(NAME))
    });
    assert!(
        asked > 0,
        "the test's nameserver was not asked:\n{}",
        d.text
    );
    d.assert_verdict(3, &["could not resolve no-such-vm.invalid"]);
    assert_eq!(d.steps(), ["config", "dns"]);
    d.assert_line(&["dns", "FAIL", "could not resolve no-such-vm.invalid"]);
}

#[test]
#[cfg(target_os = "linux")]
fn ipv6_black_hole_and_working_ipv4_are_both_shown() {
    const DUAL: &str = "dual-stack.test";
    let w = World::new();
    let service = Service::start(BANNER);
    let (edge, hole) = (0..20)
        .find_map(|_| {
            let edge = edge_to(&w, service.addr);
            let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), edge.addr().port());
            BlackHole::bind(v6).map(|hole| (edge, hole))
        })
        .expect("no port free on both 127.0.0.1 and [::1]");
    let etc = w.dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), format!("::1 {DUAL}\n127.0.0.1 {DUAL}\n")).unwrap();
    let port = edge.addr().port();
    let d = Diagnosis::of(|| {
        let mut cmd = util::bare_tunnel();
        cmd.arg("doctor")
            .arg("--cacert")
            .arg(&w.ca.pem_path)
            .arg("--connect-to")
            .arg(format!("{HOST}:443:{DUAL}:{port}"))
            .arg(HOST);
        util::with_etc(&mut cmd, &etc, &["hosts"]);
        cmd
    });
    d.assert_verdict(
        0,
        &[
            "SSH server answers",
            "but: IPv6 does not connect from here but IPv4 does",
        ],
    );
    d.assert_line(&["dns", "dual-stack.test: IPv6 ::1; IPv4 127.0.0.1"]);
    d.assert_line(&["tcp", "warn", "1 of 2 addresses connect"]);
    d.assert_line(&[&hole.addr.to_string(), "no answer within"]);
    d.assert_line(&[&format!("127.0.0.1:{port}  connected in")]);
    let tcp = d.step("tcp");
    assert_eq!(tcp["addresses"][0]["address"], hole.addr.to_string());
    assert_eq!(tcp["addresses"][0]["ok"], false);
    assert_eq!(tcp["addresses"][1]["ok"], true);
    assert_eq!(tcp["fastest"], format!("127.0.0.1:{port}"));
}

#[test]
fn unusable_ca_file_stops_at_config_with_status_2() {
    let d = Diagnosis::of(|| {
        let mut cmd = util::bare_tunnel();
        cmd.args(["doctor", "--cacert", "/nonexistent/ca.pem", HOST]);
        cmd
    });
    d.assert_verdict(
        2,
        &["cannot read CA file /nonexistent/ca.pem: no such file"],
    );
    assert_eq!(d.steps(), ["config"]);
}

#[test]
fn help_names_every_option_and_usage_errors_are_one_line() {
    let run = util::run(util::bare_tunnel().args(["doctor", "--help"]), b"");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    // Words, whatever the wrapping.
    let help = String::from_utf8_lossy(&run.stdout).replace('\n', " ");
    for words in [
        "Usage: vers-tunnel doctor [OPTIONS] <HOST[:PORT]>",
        "--json",
        "--wait <SECS>",
        "--cacert <FILE>",
        "--connect-to",
        "--connect-timeout",
        "-4, --ipv4",
        "6 TLS completed but nothing on the VM accepted the connection",
    ] {
        assert!(help.contains(words), "{words:?} not in {help}");
    }
    let usage = |args: &[&str]| util::run(util::bare_tunnel().arg("doctor").args(args), b"");
    usage(&["--wait", "0", HOST]).assert_failure(2, &["--wait", "more than 0"]);
    usage(&[]).assert_failure(2, &["HOST[:PORT]"]);
    usage(&["h.sh:0"]).assert_failure(2, &["port 0"]);
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let closed = ClosedPort::new();
    let report_on_a_tty = |no_color: Option<&str>| {
        let Pty { mut master, slave } = Pty::open();
        let mut cmd = util::bare_tunnel();
        cmd.args(["doctor", &closed.addr.to_string()])
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(slave)
            .stderr(Stdio::null());
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let child = cmd.spawn().unwrap();
        // Only the child holds the terminal now: once it exits, reading the
        // master gives what it wrote, then EIO.
        drop(cmd);
        assert_eq!(util::wait(child, util::HANG).code(), Some(3));
        let mut out = Vec::new();
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let coloured = report_on_a_tty(None);
    assert!(coloured.contains("\x1b[1;31mFAIL\x1b[0m"), "{coloured:?}");
    assert!(
        coloured.contains("\x1b[1mverdict:\x1b[0m could not connect"),
        "{coloured:?}"
    );
    // no-color.org: any value but the empty string turns colour off.
    let plain = report_on_a_tty(Some("1"));
    assert!(
        plain.contains("FAIL") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    assert!(report_on_a_tty(Some("")).contains("\x1b[1;31mFAIL"));
}

/// The tunnel when the edge closes before the service's first byte (issue
/// 12). The ignored ones need the relay to return `Error::NoService`; the
/// others guard the endings that must keep their status.
mod tunnel_status {
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::util::backend::{self, Behaviour};
    use crate::util::sshd::Client;

    /// The line the tunnel prints, in parts.
    const NO_SERVICE: [&str; 4] = [
        "vers-tunnel: the edge closed the connection to x.vm.vers.sh:443 before the service sent anything",
        "nothing on the VM accepted the connection on port 443",
        "0.0.0.0 (IPv4 only) instead of ::",
        "`vers-tunnel doctor x.vm.vers.sh:443`",
    ];

    #[test]
    fn tunnel_exits_6_when_the_edge_closes_before_the_service_sends_a_byte() {
        let w = World::new();
        let closed = ClosedPort::new();
        let edge = edge_to(&w, closed.addr);
        // stdin stays open, as ssh's does while it waits for the banner.
        let util::Piped {
            child,
            mut stdin,
            mut stdout,
            stderr,
        } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
        stdin.write_all(SSH_IDENT).unwrap();
        let out = util::read_to_end_within(&mut stdout, util::HANG);
        let status = util::wait(child, util::HANG);
        let stderr = util::stderr_text(stderr);
        drop(stdin);
        assert_eq!(status.code(), Some(6), "{stderr}");
        assert!(out.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for words in NO_SERVICE {
            assert!(stderr.contains(words), "{words:?} not in {stderr:?}");
        }
    }

    #[test]
    fn ssh_through_a_route_with_no_listener_shows_the_line_and_the_tunnel_exits_6() {
        util::sshd::require("ssh", "openssh-client");
        let w = World::new();
        // The sshd only provides the keys the client pins; the edge's route
        // goes to a port nothing listens on.
        let sshd = Sshd::start(w.dir.path());
        let closed = ClosedPort::new();
        let edge = edge_to(&w, closed.addr);
        let status_file = w.dir.path().join("tunnel-status");
        let client = Client::new(
            w.dir.path(),
            &sshd,
            HOST,
            &recording_status(&w, edge.addr(), &status_file),
        );
        let run = util::run(&mut client.ssh("true"), b"");
        assert_eq!(run.code(), 255, "{}", run.stderr);
        for words in NO_SERVICE {
            assert!(
                run.stderr.contains(words),
                "{words:?} not in {:?}",
                run.stderr
            );
        }
        assert!(
            run.stderr.contains("kex_exchange_identification"),
            "{}",
            run.stderr
        );
        util::wait_until(PROMPT, "the tunnel's status", || {
            std::fs::read_to_string(&status_file).is_ok_and(|s| s.ends_with('\n'))
        });
        assert_eq!(std::fs::read_to_string(&status_file).unwrap(), "6\n");
    }

    /// A ProxyCommand running the tunnel and writing its exit status to
    /// `file`; ssh's SIGHUP to the shell when it is done is ignored so the
    /// shell lives to write it.
    fn recording_status(w: &World, edge: SocketAddr, file: &Path) -> String {
        format!(
            "sh -c 'trap \"\" HUP; {} --cacert {} --connect-to %h:443:{}:{} %h; echo $? > {}'",
            util::bin(),
            w.ca.pem_path.display(),
            edge.ip(),
            edge.port(),
            file.display()
        )
    }

    #[test]
    fn server_that_answers_and_then_closes_is_unchanged() {
        let w = World::new();
        let edge = w.edge(HOST, Behaviour::Download { len: 5, seed: 12 });
        let util::Piped {
            child,
            stdin,
            mut stdout,
            stderr,
        } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
        // The server ends its direction first, with stdin still open...
        let out = util::read_to_end_within(&mut stdout, util::HANG);
        // ... and the tunnel keeps passing stdin on until it ends.
        drop(stdin);
        let status = util::wait(child, util::HANG);
        assert_eq!(status.code(), Some(0), "{}", util::stderr_text(stderr));
        assert_eq!(out, util::Prng::bytes(12, 5));
    }

    #[test]
    fn stdin_ended_before_a_silent_close_is_unchanged() {
        let w = World::new();
        let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
            .backend(backend::start(Behaviour::IgnoreEof {
                hold: std::time::Duration::ZERO,
            }))
            .start();
        let run = util::run(&mut w.tunnel(edge.addr(), HOST), b"request\n");
        run.assert_clean();
        assert!(run.stdout.is_empty());
    }
}
