//! `vers-tunnel forward` for the clients it exists for: a real `psql` to a
//! real PostgreSQL, `curl` to a real HTTP server, hundreds of connections at
//! once through one forwarder; and how it behaves at its limits (out of
//! descriptors, `--max-connections`, many idle connections).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::forward::{command as forward, with_open_files_limits, Forwarder};
use crate::util::http::Site;
use crate::util::postgres::Postgres;
use crate::util::{self, Behaviour, EdgeBuilder, Prng, World, HOST, MIB};
use crate::util::{
    accept_queue, cpu_time, descriptors, raise_fd_limit, rss_anon_kib, set_fd_limit_of,
};

/// Waits until the forwarder holds exactly `baseline` descriptors again:
/// every connection's sockets closed, nothing left over.
fn wait_for_descriptors(fwd: &Forwarder, baseline: usize) {
    let mut now = 0;
    let back = util::poll_until(util::HANG, || {
        now = descriptors(fwd.pid);
        (now == baseline).then_some(())
    });
    assert!(
        back.is_some(),
        "the forwarder holds {now} descriptors, {baseline} before any connection"
    );
}

/// What the forwarder said after its "listening on" line.
fn said_after_listening(fwd: &Forwarder) -> Vec<String> {
    fwd.stderr().into_iter().skip(1).collect()
}

#[test]
fn psql_queries_a_real_postgres_listening_on_ipv6_loopback_only() {
    let w = World::new();
    let pg = Postgres::start(w.dir.path());
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(pg.addr)
        .start();
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let baseline = descriptors(fwd.pid);
    // The client knows only 127.0.0.1; the server only ::1.
    let run = util::run(
        pg.psql(fwd.addr())
            .args(["-c", "CREATE TABLE vms (id int PRIMARY KEY, name text)"])
            .args(["-c", "INSERT INTO vms VALUES (1, 'alpha'), (2, 'beta')"])
            .args(["-c", "SELECT id, name FROM vms ORDER BY id"]),
        b"",
    );
    assert_eq!(run.code(), 0, "psql: {}", run.stderr);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "CREATE TABLE\nINSERT 0 2\n1|alpha\n2|beta\n"
    );
    // A second session sees what the first committed.
    let run = util::run(
        pg.psql(fwd.addr())
            .args(["-c", "SELECT count(*), string_agg(name, ',') FROM vms"]),
        b"",
    );
    assert_eq!(run.code(), 0, "psql: {}", run.stderr);
    assert_eq!(String::from_utf8_lossy(&run.stdout), "2|alpha,beta\n");
    assert_eq!(edge.sni_seen(), vec![Some(HOST.to_string()); 2]);
    // Both sessions ended cleanly: nothing logged, nothing left open.
    wait_for_descriptors(&fwd, baseline);
    assert_eq!(said_after_listening(&fwd), Vec::<String>::new());
}

#[test]
fn curl_gets_files_from_a_real_http_server_byte_for_byte() {
    let w = World::new();
    let site = Site::start(w.dir.path());
    let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(site.server.addr)
        .start();
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let baseline = descriptors(fwd.pid);
    site.assert_fetched_through(fwd.addr().port());
    wait_for_descriptors(&fwd, baseline);
    assert_eq!(said_after_listening(&fwd), Vec::<String>::new());
}

const CONNECTIONS: usize = 200;
const EACH_WAY: usize = 4 * MIB;

/// Sends `pool[range]` on `s`, shuts the write side, and reads the echo to
/// EOF: (SHA-256 and length of what came back).
fn echo_round_trip(mut s: TcpStream, pool: Arc<Vec<u8>>, range: Range<usize>) -> (String, usize) {
    let mut writer = s.try_clone().unwrap();
    let feeder = thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            for chunk in pool[range].chunks(64 * 1024) {
                writer.write_all(chunk).unwrap();
            }
            writer.shutdown(Shutdown::Write).unwrap();
        })
        .unwrap();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                ctx.update(&buf[..n]);
                total += n;
            }
            Err(e) => panic!("after {total} bytes: {e}"),
        }
    }
    feeder.join().unwrap();
    (util::digest_hex(ctx.finish()), total)
}

#[test]
fn two_hundred_connections_at_once_each_move_4_mib_both_ways_and_leave_no_descriptor() {
    let _machine = util::whole_machine();
    raise_fd_limit(8192);
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let baseline = descriptors(fwd.pid);
    let pool = Arc::new(Prng::bytes(11, 2 * EACH_WAY));
    let started = Instant::now();
    // All connected before any moves a byte: 200 sessions at once.
    let streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| fwd.connect()).collect();
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runs: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let offset = (i * 40_961) % EACH_WAY;
            let range = offset..offset + EACH_WAY;
            let expected = util::sha256(&pool[range.clone()]);
            let pool = Arc::clone(&pool);
            let handle = thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || echo_round_trip(s, pool, range))
                .unwrap();
            (expected, handle)
        })
        .collect();
    // While they run: how many descriptors the forwarder holds at most.
    let watcher = {
        let peak = Arc::clone(&peak);
        let pid = fwd.pid;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let h = thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                peak.fetch_max(descriptors(pid), std::sync::atomic::Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
            }
        });
        (done, h)
    };
    for (i, (expected, handle)) in runs.into_iter().enumerate() {
        let (got, len) = handle.join().unwrap();
        assert_eq!(len, EACH_WAY, "connection {i}: length");
        assert_eq!(got, expected, "connection {i}: the echo differs");
    }
    let elapsed = started.elapsed();
    watcher.0.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.1.join().unwrap();
    wait_for_descriptors(&fwd, baseline);
    eprintln!(
        "forward load: {CONNECTIONS} connections x {} MiB each way in {elapsed:.1?} \
         ({:.0} MiB/s); forwarder descriptors: {baseline} idle, at most {} during",
        EACH_WAY / MIB,
        (2 * CONNECTIONS * EACH_WAY) as f64 / MIB as f64 / elapsed.as_secs_f64(),
        peak.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert_eq!(said_after_listening(&fwd), Vec::<String>::new());
}

/// How a connection fared after it sent its "ping".
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// The echo came back.
    Served,
    /// It waits in the listener's queue, and the forwarder said why.
    Waiting,
}

/// Waits until `s` gets its 4-byte echo, or until it is plainly waiting:
/// still in the accept queue of the listener at `port` while the forwarder
/// has said `why`.
fn fate(fwd: &Forwarder, s: &mut TcpStream, port: u16, why: &str) -> Fate {
    s.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let fate = util::poll_until(util::HANG, || {
        let mut buf = [0; 16];
        match s.read(&mut buf) {
            Ok(0) => panic!("closed by the forwarder: {:?}", fwd.stderr()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}: {:?}", fwd.stderr()),
        }
        if got.len() >= 4 {
            assert_eq!(got, b"ping");
            return Some(Fate::Served);
        }
        let said = fwd.stderr().iter().any(|l| l.contains(why));
        (said && accept_queue(port) > 0).then_some(Fate::Waiting)
    });
    s.set_nonblocking(false).unwrap();
    fate.unwrap_or_else(|| panic!("neither served nor waiting: {:?}", fwd.stderr()))
}

/// A connection that has been served once: it sends and gets "ping".
fn served(fwd: &Forwarder, port: u16, why: &str) -> TcpStream {
    let mut s = fwd.connect();
    s.write_all(b"ping").unwrap();
    assert_eq!(fate(fwd, &mut s, port, why), Fate::Served);
    s
}

/// The forwarder's CPU use while it waits `window`, as a share of the wall time.
fn cpu_share_while_waiting(pid: u32, window: Duration) -> f64 {
    let cpu = cpu_time(pid);
    let started = Instant::now();
    // A measuring window, not a synchronisation: nothing is waited for.
    thread::sleep(window);
    let used = cpu_time(pid) - cpu;
    used.as_secs_f64() / started.elapsed().as_secs_f64()
}

const OUT_OF_FDS: &str = "out of file descriptors";

#[test]
fn out_of_descriptors_it_waits_idle_and_serves_again_once_some_close() {
    let _timed = util::timed();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    // Both parities of the limit: whether the last free descriptor is taken
    // by an accepted connection or by its edge socket.
    for limit in [40_u64, 41] {
        let mut cmd = forward(&w, edge.addr(), "0");
        cmd.args(["--max-connections", "1000"]);
        let fwd = Forwarder::start(&mut cmd);
        // Its limit lowered under it, far below what 1000 connections need
        // (as descriptors taken elsewhere would): they run out first.
        set_fd_limit_of(fwd.pid, limit, limit);
        let port = fwd.addr().port();
        let mut open = Vec::new();
        let mut waiting = loop {
            assert!(open.len() < limit as usize, "limit {limit}: never ran out");
            let mut s = fwd.connect();
            s.write_all(b"ping").unwrap();
            match fate(&fwd, &mut s, port, OUT_OF_FDS) {
                Fate::Served => open.push(s),
                Fate::Waiting => break s,
            }
        };
        let share = cpu_share_while_waiting(fwd.pid, Duration::from_millis(1500));
        eprintln!(
            "ulimit -n {limit}: {} connections served, then waiting; CPU while waiting {:.1}% of the wall time",
            open.len(),
            share * 100.0
        );
        assert!(
            share < 0.10,
            "limit {limit}: {:.0}% CPU while waiting",
            share * 100.0
        );
        // It retried accepting meanwhile, quietly.
        let lines = said_after_listening(&fwd);
        assert_eq!(lines.len(), 1, "limit {limit}: {lines:?}");
        assert!(lines[0].contains(OUT_OF_FDS), "limit {limit}: {lines:?}");
        // Closing two lets the waiting one in, and one more after it.
        open.truncate(open.len() - 2);
        let mut got = [0; 4];
        waiting.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        let mut next = fwd.connect();
        next.write_all(b"ping").unwrap();
        next.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        // Everyone still connected is still served.
        for s in &mut open {
            s.write_all(b"ping").unwrap();
            s.read_exact(&mut got).unwrap();
        }
        // Nothing failed; the last connection may have used the last
        // descriptors up again, which is said again.
        let lines = said_after_listening(&fwd);
        assert!(
            lines.iter().all(|l| l.contains(OUT_OF_FDS)),
            "limit {limit}: {lines:?}"
        );
    }
}

#[test]
fn max_connections_above_the_soft_open_files_limit_are_all_served_at_once() {
    // Soft 64, hard 1024: 100 connections need 216 descriptors (2 each, with
    // one address, and 16 of its own), so the forwarder raises its soft limit.
    raise_fd_limit(1024);
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.args(["--max-connections", "100"]);
    let fwd = Forwarder::start(&mut with_open_files_limits(&cmd, 64, 1024));
    let mut open: Vec<TcpStream> = (0..100).map(|_| fwd.connect()).collect();
    for (n, s) in open.iter_mut().enumerate() {
        s.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        util::read_exact_within(s, &mut got, util::slack(Duration::from_secs(10)));
        assert_eq!(&got, b"ping", "connection {n}");
    }
    let lines = said_after_listening(&fwd);
    assert!(!lines.iter().any(|l| l.contains(OUT_OF_FDS)), "{lines:?}");
}

#[test]
fn max_connections_no_open_files_limit_can_hold_is_refused_before_listening() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.args(["--max-connections", "100"]);
    let run = util::run(&mut with_open_files_limits(&cmd, 64, 100), b"");
    run.assert_failure(
        2,
        &["--max-connections 100 needs up to 316 open files, and the open-files limit cannot go above 100 (ulimit -Hn): at most 28 connections fit"],
    );
}

const AT_LIMIT: &str = "--max-connections limit";

#[test]
fn at_max_connections_the_next_waits_until_one_closes_and_that_is_said_once() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let mut cmd = forward(&w, edge.addr(), "0");
    cmd.args(["--max-connections", "2"]);
    let fwd = Forwarder::start(&mut cmd);
    let port = fwd.addr().port();
    let first = served(&fwd, port, AT_LIMIT);
    let mut second = served(&fwd, port, AT_LIMIT);
    let mut third = fwd.connect();
    third.write_all(b"ping").unwrap();
    assert_eq!(fate(&fwd, &mut third, port, AT_LIMIT), Fate::Waiting);
    assert_eq!(edge.accepted(), 2, "the third was dialed");
    let mut fourth = fwd.connect();
    fourth.write_all(b"ping").unwrap();
    // The first closes: the third is served, the fourth still waits.
    drop(first);
    let mut got = [0; 4];
    third.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    util::wait_until(util::HANG, "the fourth in the queue alone", || {
        accept_queue(port) == 1
    });
    second.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    second.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    fourth.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    let lines = said_after_listening(&fwd);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("vers-tunnel: 2 connections open, the --max-connections limit"),
        "{lines:?}"
    );
}

const IDLE: usize = 200;
/// Echoed through each connection before it goes idle: a few bytes, as a
/// client's login would be. A buffer is zeroed when it is allocated, so one
/// kept for them would be resident whole.
const BEFORE_IDLE: usize = 1000;
/// The most the forwarder's private memory may grow per idle connection.
/// Measured on the debug build the tests run: 8-56 KiB, of which about
/// 9 KiB is live (the rest is heap that malloc keeps after the freed
/// buffers, more or less as the allocations interleave); with the buffers
/// kept while idle (a fixed 64 KiB pair), 137 KiB.
const IDLE_BOUND_KIB: u64 = 96;

#[test]
fn idle_connections_hold_no_large_buffers() {
    let _timed = util::timed();
    raise_fd_limit(4096);
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let fwd = Forwarder::start(&mut forward(&w, edge.addr(), "0"));
    let data = Prng::bytes(3, BEFORE_IDLE);
    let exchange = |s: &mut TcpStream| {
        s.write_all(&data).unwrap();
        let mut echoed = vec![0; data.len()];
        s.read_exact(&mut echoed).unwrap();
        assert!(echoed == data, "the echo differs");
    };
    // Once, so that what any first connection sets up is not counted.
    exchange(&mut fwd.connect());
    let before = rss_anon_kib(fwd.pid);
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let mut s = fwd.connect();
        exchange(&mut s);
        idle.push(s);
    }
    let after = rss_anon_kib(fwd.pid);
    let per = after.saturating_sub(before) as f64 / IDLE as f64;
    eprintln!(
        "idle: {IDLE} connections, each idle after echoing {BEFORE_IDLE} bytes: RssAnon {before} -> {after} KiB, {per:.1} KiB per connection"
    );
    assert!(
        per < IDLE_BOUND_KIB as f64,
        "{per:.1} KiB per idle connection"
    );
    // They are idle, not dead.
    let mut got = [0; 4];
    for s in &mut idle {
        s.write_all(b"ping").unwrap();
        s.read_exact(&mut got).unwrap();
    }
}
