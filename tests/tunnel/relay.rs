//! Relaying: bytes in both directions, half-close, and how sessions end.

use std::io::Write;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::doctor::support::Haproxy;
use crate::util::sshd::require;
use crate::util::{self, backend, slack, Behaviour, Mode, Prng, World, HOST, MIB};

#[test]
fn round_trip_through_echo_is_clean_and_quiet() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let run = util::run(&mut w.tunnel(edge.addr(), HOST), b"hello, vm\n");
    run.assert_clean();
    assert_eq!(run.stdout, b"hello, vm\n");
}

#[test]
fn sni_is_the_host_name() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    util::run(&mut w.tunnel(edge.addr(), HOST), b"x").assert_clean();
    assert_eq!(edge.sni_seen(), vec![Some(HOST.to_string())]);
}

#[test]
fn answer_sent_after_stdin_eof_arrives_in_full() {
    // The server answers only once it sees our half-close: proves stdin EOF is
    // passed on (as close_notify) while server -> stdout keeps flowing.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let input = Prng::bytes(7, 3 * MIB + 5);
    let run = util::run(&mut w.tunnel(edge.addr(), HOST), &input);
    run.assert_clean();
    let expected = format!("{} {}\n", util::sha256(&input), input.len());
    assert_eq!(String::from_utf8_lossy(&run.stdout), expected);
}

/// stdin's EOF is close_notify alone, with no TCP FIN, straight to the edge
/// as through a proxy: a real TLS-terminating edge (haproxy, TLS 1.3) and a
/// TLS 1.2 one (whose RFC 5246 lets it answer close_notify by closing both
/// ways; rustls and OpenSSL do not) still pass it on to the VM's service, and
/// the answer it sends after that EOF arrives in full.
#[test]
fn the_half_close_reaches_the_service_through_haproxy_and_over_tls12() {
    let w = World::new();
    let input = Prng::bytes(8, MIB + 9);
    let expected = format!("{} {}\n", util::sha256(&input), input.len());
    let haproxy = Haproxy::start(
        w.dir.path(),
        &w.ca.leaf(&[HOST]),
        backend::start(Behaviour::DigestAfterEof),
    );
    let tls12 = w
        .edge_builder(HOST, Behaviour::DigestAfterEof)
        .tls12_only()
        .start();
    for (edge, name) in [(haproxy.addr, "haproxy"), (tls12.addr(), "TLS 1.2")] {
        let run = util::run(w.tunnel(edge, HOST).arg("-v"), &input);
        assert_eq!(run.code(), 0, "{name}: {}", run.stderr);
        assert_eq!(String::from_utf8_lossy(&run.stdout), expected, "{name}");
        assert!(
            run.stderr.contains("both directions closed cleanly"),
            "{name}: {}",
            run.stderr
        );
    }
}

#[test]
fn sixty_four_mib_each_way_at_once_arrive_intact() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let input = Prng::bytes(1, 64 * MIB);
    let expected = util::sha256(&input);
    let run = util::run(&mut w.tunnel(edge.addr(), HOST), &input);
    run.assert_clean();
    assert_eq!(run.stdout.len(), input.len());
    assert_eq!(util::sha256(&run.stdout), expected);
}

#[test]
fn sixty_four_mib_download_and_upload_match_digests() {
    let w = World::new();
    let len = 64 * MIB;
    let down = w.edge(
        HOST,
        Behaviour::Download {
            len: len as u64,
            seed: 3,
        },
    );
    let run = util::run(&mut w.tunnel(down.addr(), HOST), b"");
    run.assert_clean();
    assert_eq!(
        util::sha256(&run.stdout),
        util::sha256(&Prng::bytes(3, len))
    );

    let up = w.edge(HOST, Behaviour::DigestAfterEof);
    let input = Prng::bytes(4, len);
    let run = util::run(&mut w.tunnel(up.addr(), HOST), &input);
    run.assert_clean();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{} {len}\n", util::sha256(&input))
    );
}

#[test]
fn tcp_close_without_close_notify_is_an_unclean_end() {
    let w = World::new();
    let len = 100_000;
    let edge = w
        .edge_builder(HOST, Behaviour::Download { len, seed: 9 })
        .mode(Mode::NoCloseNotify)
        .start();
    let run = util::run(&mut w.tunnel(edge.addr(), HOST), b"");
    // Everything that arrived is delivered; the status says it may be truncated.
    assert_eq!(run.stdout, Prng::bytes(9, len as usize));
    run.assert_unclean(&[
        HOST,
        "without TLS close_notify",
        &format!("after {len} bytes received"),
    ]);
}

/// A tunnel to an edge that sends `len` bytes of a download, then a record
/// no key decrypts; stdin stays open, as in an ssh session, so no
/// close_notify of ours comes before it. Its status, stdout and stderr.
fn corrupt_after(len: u64) -> (Option<i32>, Vec<u8>, String) {
    let w = World::new();
    let edge = w
        .edge_builder(
            HOST,
            Behaviour::Download {
                len: len + 10,
                seed: 4,
            },
        )
        .mode(Mode::CorruptAfter(len))
        .start();
    let util::Piped {
        child,
        stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    let got = util::read_to_end_within(&mut stdout, util::HANG);
    let status = util::wait(child, util::HANG);
    drop(stdin);
    (status.code(), got, util::stderr_text(stderr))
}

#[test]
fn a_tls_failure_mid_stream_is_an_unclean_end_as_in_the_doctor() {
    let (status, got, stderr) = corrupt_after(100_000);
    // The doctor's words and status for the same failure
    // (doctor::a_tls_failure_after_the_service_spoke_...).
    assert_eq!(status, Some(5));
    assert!(
        stderr.contains("connection to x.vm.vers.sh ended uncleanly after")
            && stderr
                .contains("bytes received: a TLS record from the server could not be decrypted"),
        "{stderr}"
    );
    assert_eq!(got, Prng::bytes(4, got.len()));
}

/// A record that breaks the session before the service's first byte is a
/// broken session (5), as in the doctor, not "nothing accepted the
/// connection" (6): the service may well be there.
#[test]
fn a_tls_failure_before_the_first_byte_is_an_unclean_end_as_in_the_doctor() {
    let (status, got, stderr) = corrupt_after(0);
    // doctor::a_tls_failure_before_the_service_spoke_... has the same words.
    assert_eq!(status, Some(5));
    assert!(got.is_empty());
    assert!(
        stderr.contains(
            "connection to x.vm.vers.sh ended uncleanly after 0 bytes received: \
             a TLS record from the server could not be decrypted"
        ),
        "{stderr}"
    );
}

#[test]
fn reset_mid_stream_is_an_unclean_end() {
    let w = World::new();
    let edge = w
        .edge_builder(
            HOST,
            Behaviour::Download {
                len: 8 * MIB as u64,
                seed: 2,
            },
        )
        .mode(Mode::ResetAfter(MIB as u64))
        .start();
    let run = util::run(&mut w.tunnel(edge.addr(), HOST), b"");
    run.assert_unclean(&[HOST, "ended uncleanly", "reset"]);
    assert!(run.stdout.len() <= MIB);
    assert_eq!(run.stdout, Prng::bytes(2, run.stdout.len()));
}

#[test]
fn stdout_closed_early_exits_promptly_and_quietly() {
    // `vers-tunnel h | head -c 100` while the server sends far more.
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1 << 30,
            seed: 5,
        },
    );
    let util::Piped {
        child,
        stdin: _stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    let mut first = [0; 100];
    util::read_exact_within(&mut stdout, &mut first, util::HANG);
    drop(stdout);
    let status = util::wait(child, slack(Duration::from_secs(5)));
    assert_eq!(&first[..], &Prng::bytes(5, 100)[..]);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
}

#[test]
#[cfg(target_os = "linux")]
fn slow_reader_keeps_memory_bounded_while_256_mib_arrive() {
    let w = World::new();
    let len = 256 * MIB;
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: len as u64,
            seed: 6,
        },
    );
    let util::Piped {
        child,
        stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    // stdin stays open, so the tunnel outlives the download (half-close) and
    // its peak memory can be read before it exits.
    let reader = thread::spawn(move || {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0; 16 * 1024];
        let mut total = 0;
        let started = Instant::now();
        let deadline = started + util::HANG;
        loop {
            let n = util::read_by(&mut stdout, &mut buf, deadline);
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
            total += n;
            // A consumer slower than the network for the first seconds: the
            // tunnel must hold back rather than buffer what it cannot write.
            if started.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(2));
            }
        }
        (total, util::digest_hex(ctx.finish()))
    });
    let (total, digest) = reader.join().unwrap();
    let peak_kib = util::peak_rss_kib(child.id());
    drop(stdin);
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0), "{}", util::stderr_text(stderr));
    assert_eq!(total, len);
    assert_eq!(digest, util::sha256(&Prng::bytes(6, len)));
    assert!(
        peak_kib < 16 * 1024,
        "peak RSS {peak_kib} KiB for a 256 MiB download: buffers are not bounded"
    );
}

#[test]
fn stdin_held_open_keeps_receiving_until_the_server_closes() {
    // Server -> client data must flow while stdin stays open and idle, and
    // stdout must reach EOF once the server is done.
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 10_000,
            seed: 8,
        },
    );
    let util::Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    let mut got = vec![0; 10_000];
    util::read_exact_within(&mut stdout, &mut got, util::HANG);
    assert_eq!(got, Prng::bytes(8, 10_000));
    // The server closed its direction: stdout reaches EOF though stdin is open.
    let rest = util::read_to_end_within(&mut stdout, util::HANG);
    assert_eq!(rest.len(), 0, "bytes after the download");
    // EOF without freeing descriptor 1: the next socket must not land on it.
    let fd1 = std::fs::read_link(format!("/proc/{}/fd/1", child.id())).unwrap();
    assert_eq!(fd1, std::path::Path::new("/dev/null"), "stdout after EOF");
    stdin.write_all(b"late").ok();
    drop(stdin);
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
}

#[test]
fn tcp_keepalive_is_on_so_a_vanished_server_is_noticed_in_minutes() {
    // A VM or edge that disappears without a reset would otherwise hold an
    // idle session open for Linux's default two hours before the first probe.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let util::Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    stdin.write_all(b"ping").unwrap();
    let mut echoed = [0; 4];
    util::read_exact_within(&mut stdout, &mut echoed, util::HANG);
    assert_eq!(&echoed, b"ping");
    // The tunnel's socket is the one whose peer is the edge.
    let filter = format!("( dst {} )", edge.addr());
    let ss = util::run(
        Command::new(require("ss", "iproute2")).args(["-tnoH", "state", "established", &filter]),
        b"",
    );
    assert!(ss.status.success(), "ss: {}", ss.stderr);
    let sockets = String::from_utf8_lossy(&ss.stdout).into_owned();
    drop(stdin);
    util::wait(child, util::HANG);
    assert_eq!(util::stderr_text(stderr), "");
    assert_eq!(sockets.lines().count(), 1, "{sockets}");
    // e.g. "timer:(keepalive,59sec,0)": probing starts after a minute idle
    // (ss writes a full minute "1min", and Linux's default "119min").
    let timer = sockets
        .split("timer:(keepalive,")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or_else(|| panic!("keepalive is off: {sockets}"));
    assert!(
        timer.ends_with("sec") && !timer.contains("min") || timer == "1min",
        "first probe in {timer}, not within a minute: {sockets}"
    );
}
