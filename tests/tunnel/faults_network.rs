//! Network faults: names, black holes, silent and non-TLS servers, slow
//! servers. Every one ends in bounded time with its documented status.

use std::io::Write;
use std::net::{Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use crate::util::net::BlackHole;
use crate::util::net::{self, Raw};
use crate::util::{self, slack, Behaviour, EdgeBuilder, Mode, World, HOST};

/// The name the tests' private /etc/hosts gives to both ::1 and 127.0.0.1.
const DUAL: &str = "dual-stack.test";

/// Has `cmd` resolve [`DUAL`] to ::1 and 127.0.0.1, through an `/etc/hosts`
/// of its own in `w`'s dir.
#[cfg(target_os = "linux")]
fn resolve_dual_stack(w: &World, cmd: &mut Command) {
    let etc = w.dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hosts"), format!("::1 {DUAL}\n127.0.0.1 {DUAL}\n")).unwrap();
    util::with_etc(cmd, &etc, &["hosts"]);
}

/// An edge on 127.0.0.1:P and a black hole on [::1]:P, the same port P.
#[cfg(target_os = "linux")]
fn edge_behind_ipv6_black_hole(w: &World) -> (util::Edge, BlackHole) {
    for _ in 0..20 {
        let edge = w.edge(HOST, Behaviour::Echo);
        let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), edge.addr().port());
        if let Some(hole) = BlackHole::bind(v6) {
            return (edge, hole);
        }
    }
    panic!("no port free on both 127.0.0.1 and [::1]");
}

#[test]
#[cfg(target_os = "linux")]
fn ipv6_black_hole_falls_back_to_ipv4_within_the_attempt_delay() {
    let _timed = util::timed();
    let w = World::new();
    let (edge, hole) = edge_behind_ipv6_black_hole(&w);
    // Connect by a name that has both addresses; IPv6 is tried first.
    let mut cmd = util::bare_tunnel();
    cmd.arg("-vv")
        .arg("--cacert")
        .arg(&w.ca.pem_path)
        .arg("--connect-to")
        .arg(format!("{HOST}:443:{DUAL}:{}", edge.addr().port()))
        .arg(HOST);
    resolve_dual_stack(&w, &mut cmd);
    let util::Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut cmd);
    stdin.write_all(b"over ipv4\n").unwrap();
    let mut echoed = [0; 10];
    util::read_exact_within(&mut stdout, &mut echoed, util::HANG);
    assert_eq!(&echoed, b"over ipv4\n");
    // The stalled IPv6 attempt was closed when IPv4 won.
    assert_eq!(
        util::sockets_of(child.id()),
        1,
        "the losing attempt's socket is still open"
    );
    drop(stdin);
    let status = util::wait(child, util::HANG);
    let stderr = util::stderr_text(stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("connecting to {}", hole.addr)),
        "IPv6 must be tried first: {stderr}"
    );
    let connected = connected_after(&stderr, "127.0.0.1");
    eprintln!("happy eyeballs: connected via IPv4 after {connected:?} (IPv6 black-holed)");
    let bound = slack(Duration::from_secs(2));
    assert!(
        connected >= Duration::from_millis(200) && connected < bound,
        "IPv4 should win one attempt delay (250 ms) after IPv6 stalls (and before {bound:?}), \
         took {connected:?}"
    );
}

/// The time in the `connected to ADDR in T` log line for an address starting with `ip`.
fn connected_after(stderr: &str, ip: &str) -> Duration {
    let marker = format!("connected to {ip}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {marker:?} in {stderr}"));
    let t = line.rsplit(" in ").next().unwrap();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_alphabetic()).unwrap());
    let num: f64 = num.parse().unwrap();
    match unit {
        "s" => Duration::from_secs_f64(num),
        "ms" => Duration::from_secs_f64(num / 1e3),
        "µs" => Duration::from_secs_f64(num / 1e6),
        "ns" => Duration::from_secs_f64(num / 1e9),
        _ => panic!("unit {unit} in {line}"),
    }
}

#[test]
#[cfg(target_os = "linux")]
fn everything_black_holed_times_out_at_the_connect_timeout() {
    let _timed = util::timed();
    let w = World::new();
    // Black holes on 127.0.0.1:P and [::1]:P, the same port P.
    let (v4, v6) = (0..20)
        .find_map(|_| {
            let v4 = BlackHole::bind("127.0.0.1:0".parse().unwrap())?;
            let v6 = BlackHole::bind(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), v4.addr.port()))?;
            Some((v4, v6))
        })
        .expect("no port free on both 127.0.0.1 and [::1]");
    let mut cmd = util::bare_tunnel();
    cmd.args(["--connect-timeout", "1", "--connect-to"])
        .arg(format!("{HOST}:443:{DUAL}:{}", v4.addr.port()))
        .arg(HOST);
    resolve_dual_stack(&w, &mut cmd);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(
        3,
        &[
            "timed out connecting to x.vm.vers.sh:443 after 1s",
            "waiting for a TCP connection",
            "--connect-timeout",
        ],
    );
    eprintln!("all black-holed: gave up after {:?}", run.elapsed);
    let bound = slack(Duration::from_secs(3));
    assert!(
        run.elapsed >= Duration::from_millis(900) && run.elapsed < bound,
        "took {:?}, not between 900 ms and {bound:?}",
        run.elapsed
    );
    drop(v6);
}

#[test]
fn silent_server_is_bounded_by_the_connect_timeout() {
    let _timed = util::timed();
    let w = World::new();
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .mode(Mode::Silent)
        .start();
    let mut cmd = w.tunnel(edge.addr(), HOST);
    cmd.args(["--connect-timeout", "1"]);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(
        4,
        &[
            "timed out connecting to x.vm.vers.sh:443 after 1s",
            "waiting for the TLS handshake",
        ],
    );
    eprintln!("silent server: gave up after {:?}", run.elapsed);
    let bound = slack(Duration::from_secs(3));
    assert!(
        run.elapsed < bound,
        "took {:?}, more than {bound:?}",
        run.elapsed
    );
    assert_eq!(edge.accepted(), 1);
}

#[test]
fn server_closing_during_the_handshake_is_a_tls_failure_not_a_truncation() {
    let addr = net::raw_server(Raw::CloseAfterHello);
    util::run(&mut util::tunnel_without_ca(addr, HOST), b"secret\n").assert_failure(
        4,
        &[
            &format!("TLS handshake with {HOST} ({addr}) failed"),
            "the server closed the connection",
        ],
    );
}

#[test]
fn plain_text_server_is_not_mistaken_for_tls() {
    let addr = net::raw_server(Raw::Http);
    util::run(&mut util::tunnel_without_ca(addr, HOST), b"secret\n")
        .assert_failure(4, &["did not answer with TLS", "is this a TLS port"]);
}

#[test]
fn trickling_server_delivers_every_byte_as_it_comes() {
    let _timed = util::timed();
    let w = World::new();
    let gap = Duration::from_millis(20);
    let edge = w.edge(HOST, Behaviour::Trickle { len: 60, gap });
    let started = Instant::now();
    let util::Piped {
        child,
        stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    drop(stdin);
    let mut first = [0; 1];
    util::read_exact_within(&mut stdout, &mut first, util::HANG);
    let first_at = started.elapsed();
    let rest = util::read_to_end_within(&mut stdout, util::HANG);
    let last_at = started.elapsed();
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
    let expected: Vec<u8> = (0..60).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!([&first[..], &rest].concat(), expected);
    eprintln!("trickle: first byte after {first_at:?}, last after {last_at:?}");
    // The first byte is not held back until more arrive (the trickle takes >= 1.2 s).
    assert!(
        last_at - first_at > Duration::from_millis(600),
        "bytes were held back: first at {first_at:?}, last at {last_at:?}"
    );
}
