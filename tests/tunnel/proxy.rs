//! Behind an HTTP(S) proxy: the tunnel through a real tinyproxy (named by
//! HTTPS_PROXY or --proxy, with Basic credentials, under ssh and scp) and a
//! real squid, half-closed requests getting their whole answers through both,
//! through TLS to an https:// proxy, around the proxy by NO_PROXY; and every
//! way a proxy can refuse or misbehave, each one line naming the proxy and
//! where it came from, never the password, with the documented status.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use crate::util::common::dns::{in_private_network, write_resolver_etc, Dns, RESOLVER_FILES};
use crate::util::forward::{command as forward, Forwarder};
use crate::util::net::ClosedPort;
use crate::util::proxy::{Script, Squid, StubProxy, Tinyproxy, TinyproxyConfig};
use crate::util::session::{bin, Session};
use crate::util::{self, backend, Behaviour, Ca, Edge, EdgeBuilder, Prng, World, HOST, MIB};

/// base64("alice:p@ss$:%w"), from coreutils: `printf 'alice:p@ss$:%%w' | base64`.
const SPECIAL_BASIC: &str = "YWxpY2U6cEBzcyQ6JXc=";
/// `printf 'alice:pw.1' | base64`.
const ALICE_BASIC: &str = "YWxpY2U6cHcuMQ==";

/// tinyproxy allowing CONNECT to `edge`'s port only.
fn tinyproxy_for(w: &World, edge: &Edge, basic_auth: Option<(&str, &str)>) -> Tinyproxy {
    let config = TinyproxyConfig {
        connect_ports: vec![edge.addr().port()],
        basic_auth: basic_auth.map(|(u, p)| (u.to_string(), p.to_string())),
    };
    Tinyproxy::start(w.dir.path(), &config)
}

/// `CONNECT ADDR HTTP/1.1` for the edge: the --connect-to target, as curl sends.
fn connect_line(edge: &Edge) -> String {
    format!("CONNECT {} HTTP/1.1", edge.addr())
}

/// What the edge of [`download_edge`] sends.
const DOWNLOAD: Behaviour = Behaviour::Download {
    len: MIB as u64,
    seed: 11,
};

/// An edge whose backend sends [`DOWNLOAD`] and closes: the server ends first.
fn download_edge(w: &World) -> Edge {
    w.edge(HOST, DOWNLOAD)
}

/// Runs `cmd` the way ssh drives a ProxyCommand: stdin stays open until the
/// server has finished and stdout is closed, and only then closes.
fn server_first(cmd: &mut Command) -> util::Run {
    let started = Instant::now();
    let util::Piped {
        child,
        stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(cmd);
    let received = util::read_to_end_within(&mut stdout, util::HANG);
    drop(stdin);
    let status = util::wait(child, util::HANG);
    util::Run {
        status,
        stdout: received,
        stderr: util::stderr_text(stderr),
        elapsed: started.elapsed(),
    }
}

/// Asserts a quiet success that delivered all of [`DOWNLOAD`].
fn assert_downloaded(run: &util::Run) {
    run.assert_clean();
    assert_eq!(run.stdout.len(), MIB);
    assert!(
        run.stdout == Prng::bytes(11, MIB),
        "the download is corrupt"
    );
}

/// What a [`Behaviour::DigestAfterEof`] backend answers to `data`.
fn digest_line(data: &[u8]) -> String {
    format!("{} {}\n", util::sha256(data), data.len())
}

/// The tunnel through the proxy at `url`, given `input` and then EOF.
fn half_closed_through(w: &World, edge: &Edge, url: &str, input: &[u8]) -> util::Run {
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("--proxy").arg(url);
    util::run(&mut cmd, input)
}

/// Asserts a quiet success whose output is `answer`.
fn assert_answered(run: &util::Run, answer: &[u8]) {
    run.assert_clean();
    assert!(
        run.stdout == answer,
        "got {:?}",
        String::from_utf8_lossy(&run.stdout[..run.stdout.len().min(200)])
    );
}

#[test]
fn tunnel_works_through_tinyproxy_named_by_https_proxy() {
    let w = World::new();
    let edge = download_edge(&w);
    let proxy = tinyproxy_for(&w, &edge, None);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("HTTPS_PROXY", proxy.url(None));
    assert_downloaded(&server_first(&mut cmd));
    assert_eq!(proxy.connects(), [connect_line(&edge)], "{}", proxy.log());
    assert_eq!(edge.sni_seen(), [Some(HOST.to_string())]);
}

#[test]
fn the_proxy_flag_wins_over_the_environment() {
    let w = World::new();
    let edge = download_edge(&w);
    let proxy = tinyproxy_for(&w, &edge, None);
    let nowhere = ClosedPort::new();
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("https_proxy", format!("http://{}", nowhere.addr))
        .arg("--proxy")
        .arg(proxy.url(None));
    assert_downloaded(&server_first(&mut cmd));
    assert_eq!(proxy.connects(), [connect_line(&edge)]);
}

/// tinyproxy closes both directions on a client's TCP FIN (RFC 9110 §9.3.6
/// allows it). stdin's EOF is passed on as close_notify alone, so the answer
/// to `printf req | vers-tunnel HOST` comes back whole, and the tunnel exits 0.
#[test]
fn a_half_closed_request_through_tinyproxy_gets_the_whole_answer() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let proxy = tinyproxy_for(&w, &edge, None);
    let run = half_closed_through(&w, &edge, &proxy.url(None), b"request\n");
    assert_answered(&run, b"request\n");
    assert_eq!(proxy.connects(), [connect_line(&edge)]);
}

/// squid, the most common corporate proxy, also ends a tunnel on the
/// client's FIN (its tunnel.cc): the same request through it.
#[test]
fn a_half_closed_request_through_squid_gets_the_whole_answer() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let squid = Squid::start(w.dir.path(), edge.addr().port());
    let run = half_closed_through(&w, &edge, &squid.url(), b"PING\n");
    assert_answered(&run, b"PING\n");
    assert_eq!(edge.sni_seen(), [Some(HOST.to_string())]);
    util::wait_until(util::HANG, "squid's access log line", || {
        squid.connects() == [format!("TCP_TUNNEL/200 CONNECT {}", edge.addr())]
    });
}

/// Several MiB up through squid, then stdin's EOF; the digest the backend
/// computes only after that EOF comes back, and matches.
#[test]
fn a_large_half_closed_upload_through_squid_gets_its_digest_back() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let squid = Squid::start(w.dir.path(), edge.addr().port());
    let data = Prng::bytes(13, 8 * MIB + 3);
    let run = half_closed_through(&w, &edge, &squid.url(), &data);
    assert_answered(&run, digest_line(&data).as_bytes());
}

/// Without a FIN from us, a truncated answer is still told from a whole one:
/// the edge's TCP close without close_notify, through squid, is exit 5.
#[test]
fn an_end_without_close_notify_through_squid_is_still_unclean() {
    let w = World::new();
    let len = 100_000;
    let edge = w
        .edge_builder(HOST, Behaviour::Download { len, seed: 14 })
        .mode(util::Mode::NoCloseNotify)
        .start();
    let squid = Squid::start(w.dir.path(), edge.addr().port());
    let run = half_closed_through(&w, &edge, &squid.url(), b"");
    assert_eq!(run.stdout, Prng::bytes(14, len as usize));
    run.assert_unclean(&[HOST, "without TLS close_notify"]);
}

/// A local client of `forward` that sends, shuts its write side, then reads
/// (`nc -N`, an HTTP/1.0 client), through the proxy at `url`: it gets the
/// digest of what it sent, then EOF.
fn forward_a_half_closed_upload(w: &World, edge: &util::Edge, url: &str) {
    let mut cmd = forward(w, edge.addr(), "0");
    cmd.arg("--proxy").arg(url);
    let fwd = Forwarder::start(&mut cmd);
    for round in 0..2u64 {
        let data = Prng::bytes(15 + round, 2 * MIB);
        let mut s = fwd.connect();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .unwrap_or_else(|e| panic!("round {round}: {e} after {answer:?}"));
        assert_eq!(
            String::from_utf8_lossy(&answer),
            digest_line(&data),
            "round {round}"
        );
    }
    assert_eq!(fwd.stderr().len(), 1, "{:?}", fwd.stderr());
}

#[test]
fn forward_passes_a_clients_half_close_through_squid() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let squid = Squid::start(w.dir.path(), edge.addr().port());
    forward_a_half_closed_upload(&w, &edge, &squid.url());
}

#[test]
fn forward_passes_a_clients_half_close_through_tinyproxy() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let proxy = tinyproxy_for(&w, &edge, None);
    forward_a_half_closed_upload(&w, &edge, &proxy.url(None));
    assert_eq!(proxy.connects().len(), 2);
}

#[test]
fn basic_credentials_in_the_url_get_through_tinyproxy() {
    let w = World::new();
    let edge = download_edge(&w);
    let proxy = tinyproxy_for(&w, &edge, Some(("alice", "pw.1")));
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("--proxy").arg(proxy.url(Some("alice:pw.1")));
    assert_downloaded(&server_first(&mut cmd));
    assert_eq!(proxy.connects(), [connect_line(&edge)]);
}

#[test]
fn wrong_or_missing_credentials_get_the_407_message_without_the_password() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let proxy = tinyproxy_for(&w, &edge, Some(("alice", "pw.1")));
    let shown = format!("http://alice:***@{}", proxy.addr());

    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("--proxy").arg(proxy.url(Some("alice:wrong.pw")));
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        3,
        &[
            &format!("proxy {shown} (from --proxy)"),
            "rejected the credentials for user alice",
            // tinyproxy's status for wrong credentials.
            "(401 Unauthorized)",
        ],
    );
    assert!(!run.stderr.contains("wrong.pw"), "{}", run.stderr);

    // Not at -vv either, nor its base64 in the request.
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("-vv")
        .env("HTTPS_PROXY", proxy.url(Some("alice:wrong.pw")));
    let run = util::run(&mut cmd, b"secret\n");
    assert_eq!(run.code(), 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{shown} (from HTTPS_PROXY)")),
        "{}",
        run.stderr
    );
    for secret in ["wrong.pw", "YWxpY2U6d3JvbmcucHc="] {
        assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
    }

    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("HTTPS_PROXY", proxy.url(None));
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        3,
        &[
            &format!("proxy http://{} (from HTTPS_PROXY)", proxy.addr()),
            "requires credentials (407 Proxy Authentication Required)",
            "USER:PASSWORD@",
        ],
    );
    assert!(edge.sni_seen().is_empty(), "no tunnel may have opened");
}

/// tinyproxy's config takes only `[-a-z0-9._]` in a password, so the
/// special characters are checked against the stub, which requires the
/// exact `Proxy-Authorization` curl sends for them.
#[test]
fn a_password_with_special_characters_is_percent_decoded_into_basic_auth() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let stub = StubProxy::start(Script::Tunnel {
        byte_by_byte: false,
        to: None,
        require: Some(format!("Basic {SPECIAL_BASIC}")),
    });
    let url = format!("http://alice:p%40ss%24%3A%25w@{}", stub.addr);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("-vv").env("HTTPS_PROXY", &url);
    let run = util::run(&mut cmd, b"special\n");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout, b"special\n");
    assert!(
        run.stderr.contains(&format!(
            "using proxy http://alice:***@{} (from HTTPS_PROXY)",
            stub.addr
        )),
        "{}",
        run.stderr
    );
    for secret in ["p@ss", "p%40ss", SPECIAL_BASIC] {
        assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
    }
    let target = edge.addr();
    assert_eq!(
        stub.requests(),
        [format!(
            "CONNECT {target} HTTP/1.1\nHost: {target}\nUser-Agent: vers-tunnel/{}\n\
             Proxy-Authorization: Basic {SPECIAL_BASIC}",
            env!("CARGO_PKG_VERSION")
        )]
    );
}

#[test]
fn verbose_names_the_proxy_and_its_source_with_the_password_redacted() {
    let w = World::new();
    let edge = download_edge(&w);
    let proxy = tinyproxy_for(&w, &edge, Some(("alice", "pw.1")));
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.arg("-vv")
        .env("HTTPS_PROXY", proxy.url(Some("alice:pw.1")));
    let run = server_first(&mut cmd);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(run.stdout.len(), MIB);
    for line in [
        format!(
            "using proxy http://alice:***@{} (from HTTPS_PROXY)",
            proxy.addr()
        ),
        format!("connected to {}", proxy.addr()),
        format!("proxy opened a tunnel to {}", edge.addr()),
    ] {
        assert!(run.stderr.contains(&line), "{line:?} not in {}", run.stderr);
    }
    for secret in ["pw.1", ALICE_BASIC] {
        assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
    }
}

#[test]
fn ssh_and_scp_reach_the_vm_through_tinyproxy() {
    let s = Session::new();
    let edge = s.vm.edge.addr6();
    let config = TinyproxyConfig {
        connect_ports: vec![edge.port()],
        basic_auth: None,
    };
    let proxy = Tinyproxy::start(s.w.dir.path(), &config);

    // ssh runs the ProxyCommand with its own environment: HTTPS_PROXY set
    // for ssh reaches vers-tunnel, with the ssh-config block unchanged.
    let mut ssh = s.ssh("echo \"via the proxy as $(whoami)\"");
    ssh.env("HTTPS_PROXY", proxy.url(None));
    let run = util::run(&mut ssh, b"");
    s.assert_quiet_success(&run, "ssh through tinyproxy");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("via the proxy as {}\n", util::sshd::login_user())
    );

    // Where the environment does not carry it: --proxy in the block.
    let proxy_command = format!(
        "{} --proxy {}",
        s.vm.proxy_command(bin(), &s.w.ca),
        proxy.url(None)
    );
    let client = s.client_via("with-flag", &proxy_command);
    let (local, remote, back) = (s.path("up.bin"), s.path("remote.bin"), s.path("back.bin"));
    let data = Prng::bytes(41, 8 * MIB);
    std::fs::write(&local, &data).unwrap();
    let scp = |from: &Path, to: String| {
        let run = util::run(client.command("scp").arg(from).arg(to), b"");
        s.assert_quiet_success(&run, "scp through tinyproxy");
    };
    scp(&local, client.remote(&remote));
    assert_eq!(std::fs::read(&remote).unwrap(), data);
    let run = util::run(
        client.command("scp").arg(client.remote(&remote)).arg(&back),
        b"",
    );
    s.assert_quiet_success(&run, "scp back through tinyproxy");
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // Every session went through the proxy, to the edge on [::1].
    let line = format!("CONNECT [::1]:{} HTTP/1.1", edge.port());
    assert_eq!(
        proxy.connects(),
        [line.clone(), line.clone(), line],
        "{}",
        proxy.log()
    );
}

/// The name the tests' private /etc/hosts gives 127.0.0.1 for the https:// proxy.
const PROXY_NAME: &str = "proxy.test";

/// Has `cmd` resolve [`PROXY_NAME`] to 127.0.0.1 alone.
#[cfg(target_os = "linux")]
fn resolve_proxy_name(w: &World, cmd: &mut Command) {
    let etc = w.dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), format!("127.0.0.1 {PROXY_NAME}\n")).unwrap();
    util::with_etc(cmd, &etc, &["hosts"]);
}

/// tinyproxy behind TLS for [`PROXY_NAME`] with a certificate from `ca`: an
/// https:// proxy (the test edge terminates TLS and forwards to tinyproxy).
fn https_proxy(ca: &Ca, tinyproxy: &Tinyproxy) -> Edge {
    EdgeBuilder::new(ca.leaf(&[PROXY_NAME]))
        .backend(tinyproxy.addr())
        .start()
}

/// Has `cmd` (the tunnel or `forward`) go through the https:// proxy
/// `front`, trusting `cacert` for it.
#[cfg(target_os = "linux")]
fn use_https_proxy(w: &World, cmd: &mut Command, front: &Edge, cacert: &Path) {
    cmd.arg("--proxy")
        .arg(format!("https://{PROXY_NAME}:{}", front.addr().port()))
        .arg("--proxy-cacert")
        .arg(cacert);
    resolve_proxy_name(w, cmd);
}

#[test]
#[cfg(target_os = "linux")]
fn https_proxy_is_verified_with_proxy_cacert_and_carries_the_edges_tls() {
    let w = World::new();
    let edge = download_edge(&w);
    let tinyproxy = tinyproxy_for(&w, &edge, None);
    let proxy_ca = Ca::new(w.dir.path(), "proxy-ca");
    let front = https_proxy(&proxy_ca, &tinyproxy);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    use_https_proxy(&w, &mut cmd, &front, &proxy_ca.pem_path);
    assert_downloaded(&server_first(&mut cmd));
    // TLS to the proxy by its name, and the edge's own TLS inside the tunnel.
    assert_eq!(front.sni_seen(), [Some(PROXY_NAME.to_string())]);
    assert_eq!(edge.sni_seen(), [Some(HOST.to_string())]);
    assert_eq!(tinyproxy.connects(), [connect_line(&edge)]);
}

/// The edge's records inside TLS to the proxy, the heavy way up: 16 MiB,
/// then stdin's EOF passed on as the edge's close_notify, and the digest the
/// backend sends after it comes back. The proxy behind the TLS front is the
/// stub, which passes half-closes on.
#[test]
#[cfg(target_os = "linux")]
fn an_upload_through_an_https_proxy_arrives_whole_and_the_answer_after_eof_returns() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let stub = StubProxy::start(Script::Tunnel {
        byte_by_byte: false,
        to: None,
        require: None,
    });
    let proxy_ca = Ca::new(w.dir.path(), "proxy-ca");
    let front = EdgeBuilder::new(proxy_ca.leaf(&[PROXY_NAME]))
        .backend(stub.addr)
        .start();
    let data = Prng::bytes(12, 16 * MIB);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env(
        "HTTPS_PROXY",
        format!("https://{PROXY_NAME}:{}", front.addr().port()),
    )
    .arg("--proxy-cacert")
    .arg(&proxy_ca.pem_path);
    resolve_proxy_name(&w, &mut cmd);
    let run = util::run(&mut cmd, &data);
    assert_answered(&run, digest_line(&data).as_bytes());
    assert_eq!(front.sni_seen(), [Some(PROXY_NAME.to_string())]);
    assert_eq!(stub.requests().len(), 1);
}

/// Our half-close ends only the edge's TLS: TLS with the proxy stays open
/// (its close_notify would end the tunnel as a FIN does, here at the TLS
/// front, which then closes tinyproxy's side) until the session is over.
#[test]
#[cfg(target_os = "linux")]
fn a_half_closed_upload_through_an_https_proxy_to_tinyproxy_gets_its_answer() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let tinyproxy = tinyproxy_for(&w, &edge, None);
    let proxy_ca = Ca::new(w.dir.path(), "proxy-ca");
    let front = https_proxy(&proxy_ca, &tinyproxy);
    let data = Prng::bytes(16, 2 * MIB);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    use_https_proxy(&w, &mut cmd, &front, &proxy_ca.pem_path);
    let run = util::run(&mut cmd, &data);
    assert_answered(&run, digest_line(&data).as_bytes());
    assert_eq!(tinyproxy.connects(), [connect_line(&edge)]);
}

/// `forward` reads --proxy-cacert once, at start, as it does --cacert: a
/// file replaced or deleted later breaks no new connection; and every TLS
/// session with the proxy after the first resumes (one config, one cache).
#[test]
#[cfg(target_os = "linux")]
fn forward_through_an_https_proxy_outlives_its_ca_file_and_resumes_with_it() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let tinyproxy = tinyproxy_for(&w, &edge, None);
    let proxy_ca = Ca::new(w.dir.path(), "proxy-ca");
    let front = https_proxy(&proxy_ca, &tinyproxy);
    let cacert = w.dir.path().join("proxy-cacert.pem");
    std::fs::copy(&proxy_ca.pem_path, &cacert).unwrap();
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.arg("-vv");
    use_https_proxy(&w, &mut cmd, &front, &cacert);
    let fwd = Forwarder::start(&mut cmd);
    let echo = |round: &str| {
        let mut s = fwd.connect();
        s.write_all(b"ping\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .unwrap_or_else(|e| panic!("{round}: {e}: {:?}", fwd.stderr()));
        assert_eq!(answer, b"ping\n", "{round}: {:?}", fwd.stderr());
    };
    echo("with the file as it was at start");
    std::fs::write(&cacert, "not a certificate\n").unwrap();
    echo("with the file replaced");
    std::fs::remove_file(&cacert).unwrap();
    echo("with the file gone");
    assert_eq!(tinyproxy.connects().len(), 3);
    let handshakes = |lines: &[String]| -> Vec<String> {
        let with_proxy = format!("established with proxy {PROXY_NAME}");
        lines
            .iter()
            .filter(|l| l.contains(&with_proxy))
            .cloned()
            .collect()
    };
    util::wait_until(util::HANG, "three handshakes with the proxy logged", || {
        handshakes(&fwd.stderr()).len() == 3
    });
    let lines = handshakes(&fwd.stderr());
    assert!(!lines[0].ends_with(", resumed"), "{lines:?}");
    assert!(
        lines[1..].iter().all(|l| l.ends_with(", resumed")),
        "{lines:?}"
    );
}

/// An unusable --proxy-cacert stops `forward` at start, as a bad --cacert
/// does, instead of resetting every connection.
#[test]
fn forward_with_an_unusable_proxy_cacert_fails_at_start() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let junk = w.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.args(["--proxy", "https://127.0.0.1:9", "--proxy-cacert"])
        .arg(&junk);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(2, &[&format!("CA file {}", junk.display()), "unusable"]);
    assert_eq!(edge.accepted(), 0);
}

#[test]
#[cfg(target_os = "linux")]
fn https_proxy_with_an_untrusted_certificate_is_refused_naming_the_proxy() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let tinyproxy = tinyproxy_for(&w, &edge, None);
    let stranger = Ca::new(w.dir.path(), "stranger-ca");
    let front = https_proxy(&stranger, &tinyproxy);
    let url = format!("https://{PROXY_NAME}:{}", front.addr().port());

    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("HTTPS_PROXY", &url);
    resolve_proxy_name(&w, &mut cmd);
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        4,
        &[
            &format!(
                "TLS handshake with proxy {url} (from HTTPS_PROXY) at {} failed",
                front.addr()
            ),
            &format!("the certificate for {PROXY_NAME} is not signed by a trusted authority"),
            "--proxy-cacert FILE",
        ],
    );
    assert!(
        !run.stderr.contains(HOST),
        "the edge is not at fault: {}",
        run.stderr
    );
    assert!(tinyproxy.connects().is_empty());
    assert_eq!(edge.accepted(), 0);
}

/// A proxy that opens the tunnel to a server of its own and re-signs the
/// edge's certificate with its CA: refused like any untrusted certificate.
#[test]
fn a_tls_inspecting_proxy_is_refused_with_the_cacert_hint() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let inspector = Ca::new(w.dir.path(), "inspecting-proxy-ca");
    let impostor = EdgeBuilder::new(inspector.leaf(&[HOST]))
        .backend(backend::start(Behaviour::Echo))
        .start();
    let stub = StubProxy::start(Script::Tunnel {
        byte_by_byte: false,
        to: Some(impostor.addr()),
        require: None,
    });
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("HTTPS_PROXY", stub.url());
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        4,
        &[
            &format!("the certificate for {HOST} is not signed by a trusted authority"),
            "pass it with --cacert FILE",
        ],
    );
    assert_eq!(impostor.accepted(), 1, "the tunnel went to the impostor");
    assert!(impostor.sni_seen().is_empty(), "and no handshake completed");
    assert_eq!(edge.accepted(), 0);
}

/// The tunnel through a stub proxy following `script`, with a 2 s connect timeout.
fn through_stub(w: &World, script: Script) -> (util::Run, StubProxy, Edge) {
    let edge = w.edge(HOST, Behaviour::Echo);
    let stub = StubProxy::start(script);
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--connect-timeout", "2"])
        .env("HTTPS_PROXY", stub.url());
    let run = util::run(&mut cmd, b"secret\n");
    (run, stub, edge)
}

#[test]
fn an_ntlm_only_proxy_given_credentials_says_it_takes_no_basic() {
    // A corporate proxy that speaks only NTLM and Negotiate: credentials in
    // the URL cannot work, and the message must not send the user hunting for
    // a typo in the password.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let stub = StubProxy::start(Script::Answer(
        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
          Proxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n\r\n"
            .to_vec(),
    ));
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("HTTPS_PROXY", stub.url().replace("://", "://alice:s3cret@"));
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        3,
        &[
            "rejected the credentials for user alice (407 Proxy Authentication Required)",
            "but it offers only NTLM, Negotiate, and vers-tunnel sends Basic",
        ],
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}

#[test]
fn refusals_give_the_status_and_reason_not_the_body() {
    let w = World::new();
    for (answer, status) in [
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 41\r\n\r\n<html><body>policy says no</body></html>\n"[..],
            "403 Forbidden",
        ),
        (
            b"HTTP/1.0 502 Bad Gateway\r\nContent-Length: 23\r\n\r\nupstream is unreachable",
            "502 Bad Gateway",
        ),
    ] {
        let (run, stub, edge) = through_stub(&w, Script::Answer(answer.to_vec()));
        run.assert_failure(
            3,
            &[
                &format!("proxy {} (from HTTPS_PROXY)", stub.url()),
                &format!("refused CONNECT {}: {status}", edge.addr()),
            ],
        );
        for body in ["policy says no", "upstream is unreachable"] {
            assert!(!run.stderr.contains(body), "{}", run.stderr);
        }
        assert_eq!(edge.accepted(), 0);
        // What the proxy was asked: the --connect-to target, unresolved, and
        // nothing of the tunnel before the answer.
        let target = edge.addr();
        assert_eq!(
            stub.requests(),
            [format!(
                "CONNECT {target} HTTP/1.1\nHost: {target}\nUser-Agent: vers-tunnel/{}",
                env!("CARGO_PKG_VERSION")
            )]
        );
    }
}

#[test]
fn an_answer_that_is_not_http_is_named_as_such() {
    let w = World::new();
    let (run, stub, _edge) =
        through_stub(&w, Script::Answer(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()));
    run.assert_failure(
        3,
        &[
            &format!("proxy {} (from HTTPS_PROXY)", stub.url()),
            "did not answer CONNECT",
            "in HTTP",
            "SSH-2.0",
            "is it an HTTP proxy?",
        ],
    );
}

#[test]
fn a_never_ending_header_is_cut_at_16_kib() {
    let w = World::new();
    let (run, _stub, edge) = through_stub(&w, Script::EndlessHeader);
    run.assert_failure(
        3,
        &[&format!(
            "answered CONNECT {} with a header longer than 16384 bytes",
            edge.addr()
        )],
    );
}

#[test]
fn an_answer_split_one_byte_at_a_time_still_opens_the_tunnel() {
    let w = World::new();
    let script = Script::Tunnel {
        byte_by_byte: true,
        to: None,
        require: None,
    };
    let (run, _stub, edge) = through_stub(&w, script);
    run.assert_clean();
    assert_eq!(run.stdout, b"secret\n");
    assert_eq!(edge.sni_seen(), [Some(HOST.to_string())]);
}

/// Bytes after the header, in the same write, are the tunnel's: here the
/// edge's first record is a fatal TLS alert, which the tunnel must act on
/// (had the bytes been dropped, it would wait for the timeout instead).
#[test]
fn tunnel_bytes_in_the_packet_of_the_header_end_reach_the_edges_tls() {
    let _timed = util::timed();
    let w = World::new();
    let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    // A TLS 1.2 alert record: fatal (2), handshake_failure (40).
    answer.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    let (run, _stub, _edge) = through_stub(&w, Script::Answer(answer));
    run.assert_failure(
        4,
        &[
            &format!("TLS handshake with {HOST}"),
            "refused the connection with a handshake_failure alert",
        ],
    );
    assert!(run.elapsed < Duration::from_secs(2), "{:?}", run.elapsed);
}

#[test]
fn a_silent_proxy_is_bounded_by_the_connect_timeout() {
    let _timed = util::timed();
    let w = World::new();
    let (run, stub, edge) = through_stub(&w, Script::Silent);
    run.assert_failure(
        3,
        &[
            &format!(
                "timed out connecting to proxy {} (from HTTPS_PROXY) after 2s",
                stub.url()
            ),
            &format!("waiting for its answer to CONNECT {}", edge.addr()),
            "--connect-timeout",
        ],
    );
    let secs = run.elapsed.as_secs_f64();
    eprintln!("silent proxy: gave up after {secs:.2}s (--connect-timeout 2)");
    assert!((2.0..3.5).contains(&secs), "took {secs:.2}s");
}

#[test]
fn a_proxy_that_closes_without_answering_is_named() {
    let w = World::new();
    let (run, stub, edge) = through_stub(&w, Script::Close);
    run.assert_failure(
        3,
        &[
            &format!("proxy {} (from HTTPS_PROXY)", stub.url()),
            &format!(
                "closed the connection without answering CONNECT {}",
                edge.addr()
            ),
        ],
    );
}

#[test]
fn an_unreachable_proxy_is_named_with_the_address_that_refused() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let nowhere = ClosedPort::new();
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.env("ALL_PROXY", format!("http://{}", nowhere.addr));
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        3,
        &[
            &format!(
                "could not connect to proxy http://{0} (from ALL_PROXY): {0}",
                nowhere.addr
            ),
            "connection refused",
        ],
    );
    assert_eq!(edge.accepted(), 0);
}

/// What the user meant by `http://alice:1234/x@proxy.corp:3128`.
const UNESCAPED_HINT: &str = "the URL has an '@' after the host it names, so its password \
     probably holds a '/', '?' or '#', which ends the host part early: percent-encode them \
     (%2F, %3F, %23)";

#[test]
#[cfg(target_os = "linux")]
fn a_password_with_an_unescaped_slash_is_hinted_at_when_its_proxy_cannot_be_reached() {
    // As in curl, `alice` is looked up as the proxy (here by a nameserver of
    // the test's own, which does not know it) and `1234` is the port.
    let dir = util::TempDir::new("proxy-slash");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    let (run, asked) = in_private_network(move || {
        let dns = Dns::start(&[]);
        let mut cmd = util::bare_tunnel();
        cmd.args(["--proxy", "http://alice:1234/x@proxy.corp:3128", HOST]);
        util::with_etc(&mut cmd, &etc, &RESOLVER_FILES);
        let run = util::run(&mut cmd, b"");
        (run, dns.asked("alice"))
    });
    assert!(asked > 0, "alice was not looked up: {run:?}");
    run.assert_failure(
        3,
        &[
            "could not resolve proxy http://alice:*** (from --proxy)",
            UNESCAPED_HINT,
        ],
    );
    assert!(!run.stderr.contains("1234"), "{}", run.stderr);

    // The same where the name is an address and the port refuses: the port,
    // the start of the password, is not shown either.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let nowhere = ClosedPort::new();
    let (ip, port) = (nowhere.addr.ip(), nowhere.addr.port());
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--proxy", &format!("http://{ip}:{port}/x@proxy.corp:3128")]);
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(
        3,
        &[
            &format!(
                "could not connect to proxy http://{ip}:*** (from --proxy): {ip}: connection refused"
            ),
            UNESCAPED_HINT,
        ],
    );
    assert!(!run.stderr.contains(&port.to_string()), "{}", run.stderr);

    // A proxy URL without such an '@' gets no hint.
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--proxy", &format!("http://{}/x", nowhere.addr)]);
    let run = util::run(&mut cmd, b"secret\n");
    run.assert_failure(3, &["connection refused"]);
    assert!(!run.stderr.contains("percent-encode"), "{}", run.stderr);
    assert_eq!(edge.accepted(), 0);
}

#[test]
fn a_reason_phrase_and_schemes_from_the_proxy_are_escaped() {
    let w = World::new();
    let answer = b"HTTP/1.1 407 Go\x1b]0;owned\x07 away\xc2\x9b\xff\r\nProxy-Authenticate: N\x1b[2JTLM\r\n\r\n";
    let (run, _stub, _edge) = through_stub(&w, Script::Answer(answer.to_vec()));
    run.assert_failure(
        3,
        &[
            r"requires credentials (407 Go\u{1b}]0;owned\u{7} away\u{9b}\xff)",
            r"it offers only N\u{1b}[2JTLM",
        ],
    );
    assert!(
        !run.stderr
            .trim_end()
            .chars()
            .any(vers_tunnel::text::needs_escape),
        "{:?}",
        run.stderr
    );
}

#[test]
fn no_proxy_matching_host_as_named_bypasses_the_proxy() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let stub = StubProxy::start(Script::Answer(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec()));
    let tunnel = |no_proxy: Option<&str>, extra: &[&str]| {
        let mut cmd = w.tunnel(edge.addr(), HOST);
        cmd.env("HTTPS_PROXY", stub.url()).args(extra);
        if let Some(list) = no_proxy {
            cmd.env("NO_PROXY", list);
        }
        util::run(&mut cmd, b"direct\n")
    };

    let run = tunnel(Some("localhost, .vm.vers.sh"), &[]);
    run.assert_clean();
    assert_eq!(run.stdout, b"direct\n");
    let run = tunnel(Some("*"), &["-v"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let why = format!(
        "not using proxy {} (from HTTPS_PROXY): {HOST} is in NO_PROXY",
        stub.url()
    );
    assert!(run.stderr.contains(&why), "{}", run.stderr);
    // --proxy '' goes direct whatever the environment says.
    tunnel(None, &["--proxy", ""]).assert_clean();
    assert_eq!(stub.accepted(), 0, "no connection may reach the proxy");

    // The --connect-to target is not what is matched, and --noproxy replaces NO_PROXY.
    let run = tunnel(Some("127.0.0.1"), &[]);
    run.assert_failure(3, &["403 Forbidden"]);
    let run = tunnel(Some(".vm.vers.sh"), &["--noproxy", ""]);
    run.assert_failure(3, &["403 Forbidden"]);
    let run = tunnel(None, &["--noproxy", "other.example,x.VM.vers.sh"]);
    run.assert_clean();
    assert_eq!(stub.accepted(), 2);
}

#[test]
fn unusable_proxy_urls_are_usage_errors_naming_where_they_came_from() {
    let mut cmd = util::bare_tunnel();
    cmd.args(["--proxy", "socks5://alice:hunter2@127.0.0.1:1080", HOST]);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(
        2,
        &[
            "invalid proxy URL in --proxy",
            "socks5:// proxies are not supported",
        ],
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);

    let mut cmd = util::bare_tunnel();
    cmd.arg(HOST)
        .env("HTTPS_PROXY", "ftp://alice:hunter2@127.0.0.1");
    let run = util::run(&mut cmd, b"");
    run.assert_failure(
        2,
        &[
            "invalid proxy URL in HTTPS_PROXY",
            "unsupported proxy scheme 'ftp://'",
        ],
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

/// Review of issue 17: the port of `http://IP:PORT/x@proxy.corp:3128` is the
/// start of the password (the default-level message hides it): `-vv` and the
/// doctor's report must hide it too.
#[test]
fn a_cut_passwords_port_is_hidden_at_vv_and_in_the_doctor() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let nowhere = ClosedPort::new();
    let (ip, port) = (nowhere.addr.ip(), nowhere.addr.port());
    let url = format!("http://{ip}:{port}/x@proxy.corp:3128");
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["-vv", "--proxy", &url]);
    let run = util::run(&mut cmd, b"secret\n");
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    assert!(!run.stderr.contains(&format!(":{port}")), "{}", run.stderr);
    for json in [false, true] {
        let mut cmd = util::bare_tunnel();
        cmd.args(["doctor", "--proxy", &url, HOST]);
        if json {
            cmd.arg("--json");
        }
        let run = util::run(&mut cmd, b"");
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(!out.contains(&format!(":{port}")), "{out}");
    }
}

/// Review of issue 17: a proxy that repeats the credentials in its answer
/// (reason phrase) gets them printed: no message may contain a password.
#[test]
fn a_proxy_that_repeats_the_password_does_not_get_it_printed() {
    let w = World::new();
    let answer = b"HTTP/1.1 403 Forbidden for alice:hunter2\r\n\r\n".to_vec();
    let stub = StubProxy::start(Script::Answer(answer));
    let edge = w.edge(HOST, Behaviour::Echo);
    let url = stub.url().replace("http://", "http://alice:hunter2@");
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--proxy", &url]);
    let run = util::run(&mut cmd, b"");
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

/// The port of a cut URL (see above) that does name a working proxy: the
/// tunnel at `-vvv`, the doctor and `forward` at `-vv` use it, and none of
/// them prints it.
#[test]
fn a_cut_passwords_port_is_hidden_when_its_proxy_works() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let stub = StubProxy::start(Script::Tunnel {
        byte_by_byte: false,
        to: None,
        require: None,
    });
    let (ip, port) = (stub.addr.ip(), stub.addr.port());
    let url = format!("http://{ip}:{port}/x@proxy.corp:3128");
    let shown = format!(":{port}");
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["-vvv", "--proxy", &url]);
    let run = util::run(&mut cmd, b"secret\n");
    assert_eq!(
        (run.code(), &run.stdout[..]),
        (0, &b"secret\n"[..]),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("connected to {ip} ")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&shown), "{}", run.stderr);
    for json in [false, true] {
        let mut cmd = util::bare_tunnel();
        cmd.args(["doctor", "--cacert"])
            .arg(&w.ca.pem_path)
            .args(["--connect-to", &util::connect_to(HOST, edge.addr())])
            .args(["--proxy", &url, HOST]);
        if json {
            cmd.arg("--json");
        }
        let run = util::run(&mut cmd, b"");
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(out.contains("tls"), "{out}");
        assert!(!out.contains(&shown), "{out}");
    }
    // The edge's handshake fails through it: its error names the address
    // TCP reached, the proxy's.
    let mut answer = b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec();
    // A TLS 1.2 alert record: fatal (2), handshake_failure (40).
    answer.extend_from_slice(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    let alerting = StubProxy::start(Script::Answer(answer));
    let (ip, port) = (alerting.addr.ip(), alerting.addr.port());
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--proxy", &format!("http://{ip}:{port}/x@proxy.corp:3128")]);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(4, &[&format!("TLS handshake with {HOST} ({ip}) failed")]);
    assert!(!run.stderr.contains(&format!(":{port}")), "{}", run.stderr);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.args(["-vv", "--proxy", &url]);
    let fwd = Forwarder::start(&mut cmd);
    let mut s = fwd.connect();
    s.write_all(b"ping\n").unwrap();
    let mut answer = [0; 5];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"ping\n");
    drop(s);
    let (_, lines) = fwd.stop(libc::SIGTERM, util::HANG);
    assert!(
        lines.iter().any(|l| l.contains("established with")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains(&shown)), "{lines:?}");
}
