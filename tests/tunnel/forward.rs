//! `vers-tunnel forward`: a local port whose every connection gets its own
//! verified TLS connection through the edge, on one loop.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use crate::doctor::support::Service;
#[cfg(target_os = "linux")]
use crate::util::common::dns::{in_private_network, write_resolver_etc, Dns, RESOLVER_FILES};
use crate::util::forward::{
    command as forward, command_without_ca as forward_without_ca, connect_to, read_all, reset,
    Forwarder,
};
use crate::util::net::{self, Raw};
use crate::util::proxy::{Script, StubProxy};
use crate::util::{self, bare_tunnel, Behaviour, EdgeBuilder, Mode, Prng, World, HOST, MIB};

fn is_reset(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ConnectionReset
}

#[test]
fn listens_on_both_loopbacks_only_and_says_where() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let [v4, v6] = fwd.listening[..] else {
        panic!("{:?}", fwd.listening)
    };
    assert_eq!(v4.ip().to_string(), "127.0.0.1");
    assert_eq!(v6.ip().to_string(), "::1");
    assert_eq!(v4.port(), v6.port(), "one port on both");
    assert_ne!(v4.port(), 0);
    let line = &fwd.stderr()[0];
    assert_eq!(
        line,
        &format!("vers-tunnel: listening on {v4} and {v6}, forwarding to {HOST}:443")
    );
    // What the system says it listens on: those two, nothing wider.
    let ss = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss (iproute2)");
    let mine: Vec<String> = String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={},", fwd.pid)))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    for local in [v4.to_string(), v6.to_string()] {
        assert!(mine.contains(&local), "{local} not in {mine:?}");
    }
    // Both answer.
    for addr in [v4, v6] {
        let mut s = connect_to(addr);
        s.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
    }
    assert_eq!(fwd.stderr().len(), 1, "{:?}", fwd.stderr());
}

#[test]
fn a_non_loopback_bind_warns_once() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0.0.0.0:0"));
    assert_eq!(fwd.listening.len(), 1);
    assert_eq!(fwd.addr().ip().to_string(), "0.0.0.0");
    let lines = fwd.stderr();
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("not the loopback"))
        .collect();
    assert_eq!(warnings.len(), 1, "{lines:?}");
    assert!(warnings[0].contains("anyone who can reach"), "{lines:?}");
    // Reached here through 127.0.0.1, which 0.0.0.0 includes.
    let port = fwd.addr().port();
    let mut s = connect_to(SocketAddr::from(([127, 0, 0, 1], port)));
    s.write_all(b"x").unwrap();
    let mut got = [0; 1];
    s.read_exact(&mut got).unwrap();
}

#[test]
fn half_close_passes_through_both_ways() {
    // Send, shut our write side, and still receive the whole answer; then the
    // server's close reaches us as EOF.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let input = Prng::bytes(5, 3 * MIB);
    let mut s = fwd.connect();
    s.write_all(&input).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (answer, err) = read_all(&mut s);
    assert!(err.is_none(), "{err:?}");
    let expected = format!("{} {}\n", util::sha256(&input), input.len());
    assert_eq!(String::from_utf8_lossy(&answer), expected);
}

#[test]
fn port_in_use_is_a_one_line_error_before_listening() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let run = util::run(&mut forward(&w, edge.addr(), &port.to_string()), b"");
    run.assert_failure(
        2,
        &[&format!("cannot listen on 127.0.0.1:{port}"), "in use"],
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    for (args, words) in [
        (
            &["forward", "5432", "x.vm.vers.sh"][..],
            "needs the VM's port",
        ),
        (&["forward", "nope", "x.vm.vers.sh:5432"], "not a number"),
        (
            &["forward", "db:5432", "x.vm.vers.sh:5432"],
            "not an IP address",
        ),
        (&["forward", "5432"], "required"),
        (
            &["forward", "--max-connections", "0", "1", "x.vm.vers.sh:1"],
            "--max-connections",
        ),
    ] {
        let run = util::run(bare_tunnel().args(args), b"");
        run.assert_failure(2, &[words]);
    }
}

#[test]
fn an_untrusted_edge_resets_each_connection_and_the_listener_keeps_serving() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    // No --cacert: the test CA is not trusted.
    let fwd = Forwarder::start(&mut forward_without_ca(edge.addr(), "0"));
    for attempt in 1..=2 {
        let mut s = fwd.connect();
        // Linux reports the reset to one call: this write, when the handshake
        // has already failed, or the read after it.
        let wrote = s.write_all(b"secret");
        let writer_told = wrote
            .as_ref()
            .is_err_and(|e| is_reset(e) || e.kind() == std::io::ErrorKind::BrokenPipe);
        let (got, err) = read_all(&mut s);
        assert!(got.is_empty(), "attempt {attempt}: {got:?}");
        assert!(
            err.as_ref().is_some_and(is_reset) || (err.is_none() && writer_told),
            "attempt {attempt}: write {wrote:?}, read {err:?}"
        );
    }
    let line = fwd.wait_for_line("unknown issuer", util::HANG);
    assert!(
        line.starts_with("vers-tunnel: connection from 127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("--cacert"), "{line}");
    let failures = || {
        fwd.stderr()
            .iter()
            .filter(|l| l.contains("unknown issuer"))
            .count()
    };
    util::wait_until(util::HANG, "two failure lines", || failures() == 2);
}

#[test]
fn a_client_certificate_request_is_told_only_of_the_connection_it_came_on() {
    // The first connection meets an edge that asks for a client certificate,
    // the second a server that refuses every handshake: only the first may
    // blame the certificate.
    let w = World::new();
    let asks = w
        .edge_builder(HOST, Behaviour::Echo)
        .require_client_cert(&w.ca)
        .start();
    let refuses = net::raw_server(Raw::HandshakeFailure);
    let fwd = Forwarder::start(&mut forward(
        &w,
        net::turns(vec![asks.addr(), refuses]),
        "0",
    ));
    let failed = || {
        fwd.stderr()
            .into_iter()
            .filter(|l| l.contains("TLS handshake with"))
            .collect::<Vec<_>>()
    };
    for n in 1..=2 {
        let mut s = fwd.connect();
        let (got, err) = read_all(&mut s);
        assert!(got.is_empty(), "connection {n}: {got:?}");
        assert!(
            err.as_ref().is_some_and(is_reset),
            "connection {n}: {err:?}"
        );
        util::wait_until(util::HANG, "its failure line", || failed().len() == n);
    }
    let lines = failed();
    assert!(
        lines[0].contains("the server requires a client certificate"),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with("the server refused the connection with a handshake_failure alert"),
        "{lines:?}"
    );
}

/// Far longer than any test here waits: what a left connection held until
/// before it was noticed.
const LONG_TIMEOUT: &str = "120";

/// How soon a connection whose client left must be gone.
fn promptly() -> Duration {
    util::slack(Duration::from_secs(3))
}

#[test]
fn a_client_that_leaves_during_the_handshake_gives_its_slot_to_the_next_at_once() {
    // An edge that never answers the handshake holds the only slot; each
    // client that leaves frees it for the next.
    let w = World::new();
    let silent = w
        .edge_builder(HOST, Behaviour::Echo)
        .mode(Mode::Silent)
        .start();
    let working = w.edge(HOST, Behaviour::Echo);
    let edges = net::turns(vec![silent.addr(), silent.addr(), working.addr()]);
    let mut cmd = forward(&w, edges, "0");
    cmd.args(["--max-connections", "1", "--connect-timeout", LONG_TIMEOUT]);
    let fwd = Forwarder::start(&mut cmd);
    for n in [1, 2] {
        let s = fwd.connect();
        util::wait_until(promptly(), "the forwarder to reach the edge", || {
            silent.accepted() == n
        });
        reset(s);
    }
    let mut s = fwd.connect();
    s.write_all(b"ping").unwrap();
    let mut got = [0; 4];
    util::read_exact_within(&mut s, &mut got, promptly());
    assert_eq!(&got, b"ping");
    assert_eq!(silent.accepted(), 2, "{:?}", fwd.stderr());
}

#[cfg(target_os = "linux")] // the black hole and the descriptor count
#[test]
fn a_client_that_leaves_while_the_edge_or_its_proxy_does_not_answer_leaves_no_descriptor() {
    // The edge drops SYNs (the race runs on), or the proxy never answers the
    // CONNECT.
    let w = World::new();
    let hole = net::BlackHole::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let proxy = StubProxy::start(Script::Silent);
    for via_proxy in [false, true] {
        let mut cmd = forward(&w, hole.addr, "0");
        cmd.args(["--connect-timeout", LONG_TIMEOUT]);
        if via_proxy {
            cmd.env("HTTPS_PROXY", proxy.url());
        }
        let fwd = Forwarder::start(&mut cmd);
        let idle = util::descriptors(fwd.pid);
        // Through the proxy: once it has the CONNECT.
        let asked = proxy.requests().len() + usize::from(via_proxy);
        let s = fwd.connect();
        util::wait_until(promptly(), "the forwarder to dial", || {
            util::descriptors(fwd.pid) > idle && proxy.requests().len() == asked
        });
        reset(s);
        let what = format!("via proxy {via_proxy}: its descriptors freed");
        util::wait_until(promptly(), &what, || util::descriptors(fwd.pid) == idle);
    }
}

#[test]
fn a_client_that_half_closes_having_sent_nothing_during_setup_gets_the_banner() {
    // `nc -N HOST PORT </dev/null` reading a server-first banner: its FIN
    // reaches the forwarder while the edge's handshake is still under way.
    let w = World::new();
    let service = Service::start(b"SSH-2.0-banner\r\n");
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(service.addr)
        .start();
    let gate = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fwd = Forwarder::start(&mut forward(&w, gate.local_addr().unwrap(), "0"));
    let mut s = fwd.connect();
    s.shutdown(Shutdown::Write).unwrap();
    let (held, _) = gate.accept().unwrap();
    net::splice(held, edge.addr());
    let (answer, err) = read_all(&mut s);
    assert!(err.is_none(), "{err:?}: {:?}", fwd.stderr());
    assert_eq!(answer, b"SSH-2.0-banner\r\n");
}

#[test]
fn a_client_that_sends_and_half_closes_before_the_handshake_still_gets_its_answer() {
    // The forwarder's TCP connection waits at a gate until the client has
    // sent and shut its write side: that is no leaving.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let gate = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fwd = Forwarder::start(&mut forward(&w, gate.local_addr().unwrap(), "0"));
    let mut s = fwd.connect();
    s.write_all(b"ping").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let (held, _) = gate.accept().unwrap();
    net::splice(held, edge.addr());
    let (answer, err) = read_all(&mut s);
    assert!(err.is_none(), "{err:?}: {:?}", fwd.stderr());
    let expected = format!("{} 4\n", util::sha256(b"ping"));
    assert_eq!(String::from_utf8_lossy(&answer), expected);
}

#[test]
fn later_connections_resume_the_first_ones_tls_session() {
    // Each connection keeps its own facts, but the session cache is shared.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.arg("-v");
    let fwd = Forwarder::start(&mut cmd);
    for n in 1..=3 {
        let mut s = fwd.connect();
        s.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        s.read_exact(&mut got).unwrap();
        let established = || {
            fwd.stderr()
                .into_iter()
                .filter(|l| l.contains("established with"))
                .collect::<Vec<_>>()
        };
        util::wait_until(util::HANG, "its handshake line", || {
            established().len() == n
        });
        let line = &established()[n - 1];
        assert_eq!(line.contains(", resumed"), n > 1, "connection {n}: {line}");
    }
}

#[test]
fn a_refused_edge_port_resets_the_connection_with_one_line() {
    let w = World::new();
    let closed = crate::util::net::ClosedPort::new();
    let fwd = Forwarder::start(&mut forward(&w, closed.addr, "0"));
    let mut s = fwd.connect();
    let (got, err) = read_all(&mut s);
    assert!(got.is_empty());
    assert!(err.as_ref().is_some_and(is_reset), "{err:?}");
    let line = fwd.wait_for_line("could not connect", util::HANG);
    assert!(line.contains("connection refused"), "{line}");
}

#[test]
fn a_reset_mid_stream_resets_that_connection_only() {
    let w = World::new();
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(crate::util::backend::start(Behaviour::Echo))
        .mode(Mode::ResetAfter(100_000))
        .start();
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    // Past the edge's limit: the edge resets, and so must we, locally.
    let mut doomed = fwd.connect();
    let first = Prng::bytes(1, 60_000);
    doomed.write_all(&first).unwrap();
    let mut echoed = vec![0; first.len()];
    doomed.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, first);
    let writer = {
        let mut s = doomed.try_clone().unwrap();
        std::thread::spawn(move || s.write_all(&Prng::bytes(3, 4 * MIB)).err())
    };
    let (got, err) = read_all(&mut doomed);
    assert!(got.len() <= 40_000, "{} bytes", got.len());
    // Linux reports a reset to one call on the socket: the reader's, or the
    // writer's (ECONNRESET, or EPIPE once the reset has closed it), after
    // which reads see EOF. Either way the client was told, and could not
    // have finished its upload cleanly.
    let write_err = writer.join().unwrap();
    let writer_told = write_err
        .as_ref()
        .is_some_and(|e| is_reset(e) || e.kind() == std::io::ErrorKind::BrokenPipe);
    assert!(
        err.as_ref().is_some_and(is_reset) || (err.is_none() && writer_told),
        "read: {err:?}, write: {write_err:?}"
    );
    fwd.wait_for_line("ended uncleanly", util::HANG);
    // The next connection, within the limit, is whole and clean.
    let mut next = fwd.connect();
    let data = Prng::bytes(2, 50_000);
    next.write_all(&data).unwrap();
    next.shutdown(Shutdown::Write).unwrap();
    let (echoed, err) = read_all(&mut next);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(echoed, data);
}

#[test]
fn nothing_listening_on_the_vm_port_resets_with_the_diagnosis() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Hangup);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let mut s = fwd.connect();
    let (got, err) = read_all(&mut s);
    assert!(got.is_empty());
    assert!(err.as_ref().is_some_and(is_reset), "{err:?}");
    fwd.wait_for_line("before the service sent anything", util::HANG);
}

#[test]
#[cfg(target_os = "linux")]
fn sigterm_with_open_sessions_exits_143_promptly() {
    let _timed = util::timed();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let mut open: Vec<_> = (0..3).map(|_| fwd.connect()).collect();
    for s in &mut open {
        s.write_all(b"hi").unwrap();
        let mut got = [0; 2];
        s.read_exact(&mut got).unwrap();
    }
    let pid = fwd.pid;
    let (status, lines) = fwd.stop(libc::SIGTERM, Duration::from_secs(2));
    assert_eq!(status.code(), Some(143));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(!util::running(pid));
    for s in &mut open {
        let (_, err) = read_all(s);
        // Stopped mid-stream: a reset, never a clean end.
        assert!(err.as_ref().is_some_and(is_reset), "{err:?}");
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_target_whose_every_address_fails_is_looked_up_again_but_not_at_every_failure() {
    // A long-running forwarder must follow the edge's addresses if they
    // change, without asking DNS once per failing connection.
    const NAME: &str = "edge.test";
    let dir = util::TempDir::new("refresh");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    let ca = World::new();
    let pem = ca.ca.pem_path.clone();
    let (asked_at_start, asked_later, lines) = in_private_network(move || {
        let dns = Dns::start(&[NAME]);
        // Nothing listens on the port the name leads to: every connection fails.
        let closed = crate::util::net::ClosedPort::new();
        let mut cmd = bare_tunnel();
        cmd.arg("forward")
            .arg("--cacert")
            .arg(&pem)
            .arg("--connect-to")
            .arg(format!("{HOST}:443:{NAME}:{}", closed.addr.port()))
            .arg("0")
            .arg(format!("{HOST}:443"));
        util::with_etc(&mut cmd, &etc, &RESOLVER_FILES);
        let fwd = Forwarder::start(&mut cmd);
        let at_start = dns.asked(NAME);
        let started = std::time::Instant::now();
        // Connections fail one after another; the name is looked up again
        // once, a few seconds on (not at each failure).
        util::wait_until(util::HANG, "a second lookup", || {
            let mut s = fwd.connect();
            let _ = read_all(&mut s);
            dns.asked(NAME) > at_start
        });
        let waited = started.elapsed();
        (at_start, (dns.asked(NAME), waited), fwd.stderr())
    });
    assert!(asked_at_start > 0, "not resolved at start: {lines:?}");
    let (asked, waited) = asked_later;
    assert!(
        waited >= Duration::from_secs(4),
        "looked up again after only {waited:?}"
    );
    // One lookup asks for A and AAAA: at most two queries more.
    assert!(
        asked <= asked_at_start * 2,
        "{asked} queries after {asked_at_start}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connection refused")),
        "{lines:?}"
    );
}

#[test]
fn forward_goes_through_an_http_proxy_from_the_environment() {
    // Each forwarded connection asks the proxy for its own CONNECT tunnel,
    // on the forwarder's one loop, and the edge's TLS runs inside it. The
    // server ends first (the client's half-close: proxy::forward_passes_...).
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 300_000,
            seed: 9,
        },
    );
    let config = crate::util::proxy::TinyproxyConfig {
        connect_ports: vec![edge.addr().port()],
        ..Default::default()
    };
    let proxy = crate::util::proxy::Tinyproxy::start(w.dir.path(), &config);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.env("HTTPS_PROXY", proxy.url(None));
    let fwd = Forwarder::start(&mut cmd);
    for round in 0..3 {
        let mut s = fwd.connect();
        let (got, err) = read_all(&mut s);
        assert!(err.is_none(), "round {round}: {err:?}");
        assert_eq!(got, Prng::bytes(9, 300_000), "round {round}");
    }
    let connects = proxy.connects();
    assert_eq!(connects.len(), 3, "{connects:?}");
    assert_eq!(fwd.stderr().len(), 1, "{:?}", fwd.stderr());
}

#[test]
fn a_proxy_refusal_resets_that_connection_naming_the_proxy() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    // tinyproxy only allows CONNECT to other ports: it answers 403.
    let config = crate::util::proxy::TinyproxyConfig {
        connect_ports: vec![1],
        ..Default::default()
    };
    let proxy = crate::util::proxy::Tinyproxy::start(w.dir.path(), &config);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.arg("-v").arg("--proxy").arg(proxy.url(None));
    let fwd = Forwarder::start(&mut cmd);
    let mut s = fwd.connect();
    let (got, err) = read_all(&mut s);
    assert!(got.is_empty());
    assert!(err.as_ref().is_some_and(is_reset), "{err:?}");
    let line = fwd.wait_for_line("403", util::HANG);
    assert!(line.contains("from --proxy"), "{line}");
    // -v says once which proxy it uses and where that came from.
    let using = fwd.wait_for_line("using proxy", util::HANG);
    assert!(
        using.ends_with(&format!("using proxy {} (from --proxy)", proxy.url(None))),
        "{using}"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_target_that_does_not_resolve_is_status_3_before_anything_listens() {
    const NAME: &str = "no-such-vm.invalid";
    let dir = util::TempDir::new("forward-nxdomain");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    // Alone, or as the second of two mappings: the line names it.
    let target = format!("{NAME}:5432");
    let alone = vec!["0".to_string(), target.clone()];
    let second = vec!["0:127.0.0.1:22".to_string(), format!("0:{target}")];
    for args in [alone, second] {
        let etc = etc.clone();
        let run = in_private_network(move || {
            let _dns = Dns::start(&[]);
            let mut cmd = bare_tunnel();
            cmd.arg("forward").args(args);
            util::with_etc(&mut cmd, &etc, &RESOLVER_FILES);
            util::run(&mut cmd, b"")
        });
        let named = format!("forward 0:{NAME}:5432: could not resolve {NAME}");
        run.assert_failure(3, &[&named]);
        assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    }
}

#[test]
fn the_client_keeps_sending_after_the_server_has_finished_and_every_byte_arrives() {
    // Half-close, server first: the service answers, ends its side, and reads
    // on; the client's upload and then its EOF must all reach it.
    let w = World::new();
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = backend.accept().unwrap();
        s.write_all(b"greeting").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let _ = tx.send(got);
    });
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(backend_addr)
        .start();
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let mut s = fwd.connect();
    let (greeting, err) = read_all(&mut s);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(greeting, b"greeting");
    let upload = Prng::bytes(12, 4 * MIB);
    s.write_all(&upload).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(util::HANG).expect("the service got no EOF");
    assert_eq!(got.len(), upload.len());
    assert!(got == upload, "the upload arrived changed");
    assert_eq!(fwd.stderr().len(), 1, "{:?}", fwd.stderr());
}

#[test]
fn an_ignored_sighup_stays_ignored() {
    // What started it (nohup, a background job) meant the signal to be
    // ignored: the forwarder must not stop at it.
    use std::os::unix::process::CommandExt;
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = forward(&w, edge.addr(), "0");
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let fwd = Forwarder::start(&mut cmd);
    util::signal(fwd.pid, libc::SIGHUP);
    // Ignored signals are dropped when sent: if it still serves now, it did.
    let mut s = fwd.connect();
    s.write_all(b"ping").unwrap();
    let mut got = [0; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    let (status, _) = fwd.stop(libc::SIGTERM, util::HANG);
    assert_eq!(status.code(), Some(143));
}
