//! A working day of `vers-tunnel forward`, compressed: three mappings through
//! the test edge, thousands of connections of 1 byte to 8 MiB (half-closed,
//! reset by the client, abandoned while being set up), two edge restarts and
//! a change of the edge's address in DNS in the middle. Every transfer that
//! completes is checked whole; every one that does not was cut by a restart
//! and told so with a reset; each connection gets its one line; and at the
//! end the forwarder holds what it held idle.
//!
//! `VERS_TUNNEL_SOAK_SECS` makes it longer than its default 150 seconds.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::common::dns::{in_private_network, write_resolver_etc, Dns, RESOLVER_FILES};
use crate::util::forward::{connect_to, reset, Forwarder};
use crate::util::front::Front;
use crate::util::{self, backend, bare_tunnel, Behaviour, EdgeBuilder, Prng, World, MIB};
use crate::util::{descriptors, peak_rss_kib, raise_fd_limit, rss_anon_kib};

/// The edge's name, which DNS moves from 127.0.0.1 to 127.0.0.2 midway.
const EDGE: &str = "edge.test";
const ECHO: &str = "echo.vm.test";
const DIGEST: &str = "digest.vm.test";
const DOWNLOAD: &str = "download.vm.test";
/// What each download sends.
const DOWNLOAD_LEN: usize = 2 * MIB + 5;
const DOWNLOAD_SEED: u64 = 31;
/// The largest transfer.
const MAX_SIZE: usize = 8 * MIB;
/// Clients at once.
const WORKERS: usize = 6;
/// The forwarder's `--max-connections`: room for the clients' connections
/// and those still closing, and small enough that a slot never freed would
/// soon stop it accepting.
const MAX_CONNECTIONS: usize = 16;
/// How long the edge stays down at each restart.
const DOWN: Duration = Duration::from_secs(1);
/// The shortest run that fits the script: the DNS change at a quarter, the
/// forwarder's 60-second refresh after it, the second restart at four fifths.
const DEFAULT_SECS: u64 = 150;
/// How far the forwarder's memory may end above its first idle value: the
/// allocator may keep what its busiest moment needed, never what each
/// connection took (which, over thousands, would be far more).
const RSS_BOUND_KIB: u64 = 8 * 1024;

/// How long to soak: [`DEFAULT_SECS`], or more from `VERS_TUNNEL_SOAK_SECS`.
fn duration() -> Duration {
    let asked = std::env::var("VERS_TUNNEL_SOAK_SECS").ok().map(|v| {
        v.parse::<u64>()
            .unwrap_or_else(|_| panic!("VERS_TUNNEL_SOAK_SECS={v:?} is not a number of seconds"))
    });
    Duration::from_secs(asked.unwrap_or(DEFAULT_SECS).max(DEFAULT_SECS))
}

/// How one connection went.
#[derive(Debug)]
enum Outcome {
    /// Completed, every byte checked: bytes sent and received.
    Whole(u64, u64),
    /// The client reset it on purpose (mid-download, or mid-setup).
    LeftOnPurpose,
    /// Ended with an error the client saw (a reset): cut by a restart.
    Cut(String),
    /// Ended as if complete, but with the wrong bytes: the one thing that must never happen.
    Wrong(String),
}

/// One connection's record.
#[derive(Debug)]
struct Record {
    kind: &'static str,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

impl Record {
    /// The record as an assertion shows it: its kind, when, and its error.
    fn describe(&self, start: Instant) -> String {
        let why = match &self.outcome {
            Outcome::Cut(e) | Outcome::Wrong(e) => e.as_str(),
            Outcome::Whole(..) | Outcome::LeftOnPurpose => "",
        };
        format!(
            "{} from {:.1?} to {:.1?}: {why}",
            self.kind,
            self.started.saturating_duration_since(start),
            self.ended.saturating_duration_since(start)
        )
    }
}

/// A size from 1 byte to [`MAX_SIZE`], most of them small (log-uniform
/// below 64 KiB), one in ten larger (log-uniform up to 8 MiB).
fn size(prng: &mut Prng) -> usize {
    let (lo, hi) = if prng.range(0, 9) == 0 {
        (16.0, 23.0)
    } else {
        (0.0, 16.0)
    };
    let bits = lo + (hi - lo) * prng.range(0, 1_000_000) as f64 / 1_000_000.0;
    (2f64.powf(bits) as usize).clamp(1, MAX_SIZE)
}

/// Sends `data`, half-closes, and reads the echo to EOF on two threads (the
/// echo comes back while we send). A reset is told to one call on the
/// socket only, the writer's or the reader's: either one's error is a cut.
fn echo(addr: SocketAddr, data: &[u8]) -> Outcome {
    let mut s = connect_to(addr);
    let mut writer = s.try_clone().unwrap();
    let (got, wrote) = thread::scope(|scope| {
        let feeder = scope.spawn(move || -> io::Result<()> {
            for chunk in data.chunks(64 * 1024) {
                writer.write_all(chunk)?;
            }
            writer.shutdown(Shutdown::Write)
        });
        let got = hash_to_end(&mut s);
        (got, feeder.join().unwrap())
    });
    match (got, wrote) {
        (Err(e), _) | (_, Err(e)) => Outcome::Cut(e.to_string()),
        (Ok((digest, len)), Ok(())) if len == data.len() && digest == util::sha256(data) => {
            Outcome::Whole(len as u64, len as u64)
        }
        (Ok((_, len)), Ok(())) => {
            Outcome::Wrong(format!("echo of {} bytes: {len} came back", data.len()))
        }
    }
}

/// Sends `data`, half-closes, and checks the service's `<sha256> <len>` answer.
fn digest(addr: SocketAddr, data: &[u8]) -> Outcome {
    let mut s = connect_to(addr);
    let sent = s.write_all(data).and_then(|()| s.shutdown(Shutdown::Write));
    if let Err(e) = sent {
        return Outcome::Cut(e.to_string());
    }
    let mut answer = Vec::new();
    if let Err(e) = s.read_to_end(&mut answer) {
        return Outcome::Cut(e.to_string());
    }
    let expected = format!("{} {}\n", util::sha256(data), data.len());
    if answer == expected.as_bytes() {
        Outcome::Whole(data.len() as u64, answer.len() as u64)
    } else {
        Outcome::Wrong(format!(
            "digest of {} bytes: {:?}",
            data.len(),
            String::from_utf8_lossy(&answer)
        ))
    }
}

/// Downloads to EOF and checks it against `expected`.
fn download(addr: SocketAddr, expected: &str) -> Outcome {
    let mut s = connect_to(addr);
    match hash_to_end(&mut s) {
        Err(e) => Outcome::Cut(e.to_string()),
        Ok((digest, len)) if len == DOWNLOAD_LEN && digest == expected => {
            Outcome::Whole(0, len as u64)
        }
        Ok((_, len)) => Outcome::Wrong(format!("download: {len} bytes of {DOWNLOAD_LEN}")),
    }
}

/// Starts a download and resets it after `after` bytes.
fn download_then_reset(addr: SocketAddr, after: usize) -> Outcome {
    let mut s = connect_to(addr);
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0;
    while got < after {
        match s.read(&mut buf) {
            Ok(0) => return Outcome::Wrong(format!("download ended after {got} bytes")),
            Ok(n) => got += n,
            Err(e) => return Outcome::Cut(e.to_string()),
        }
    }
    reset(s);
    Outcome::LeftOnPurpose
}

/// Connects and resets at once, while the forwarder is still setting it up.
fn abandon(addr: SocketAddr) -> Outcome {
    reset(connect_to(addr));
    Outcome::LeftOnPurpose
}

/// Reads to EOF: (SHA-256, length).
fn hash_to_end(s: &mut TcpStream) -> io::Result<(String, usize)> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf)? {
            0 => return Ok((util::digest_hex(ctx.finish()), total)),
            n => {
                ctx.update(&buf[..n]);
                total += n;
            }
        }
    }
}

/// One client, connecting one after another until `end`.
fn worker(
    n: u64,
    mappings: [SocketAddr; 3],
    pool: &[u8],
    expected_download: &str,
    end: Instant,
) -> Vec<Record> {
    let [echo_at, digest_at, download_at] = mappings;
    let mut prng = Prng::new(1000 + n);
    let mut records = Vec::new();
    let mut i = 0;
    while Instant::now() < end {
        // Each client's first two are the extremes: one byte, and 8 MiB.
        let len = match i {
            0 => 1,
            1 => MAX_SIZE,
            _ => size(&mut prng),
        };
        let offset = prng.range(0, pool.len() - len);
        let data = &pool[offset..offset + len];
        let started = Instant::now();
        let (kind, outcome) = match prng.range(0, 99) {
            0..=54 => ("echo", echo(echo_at, data)),
            55..=74 => ("digest", digest(digest_at, data)),
            75..=86 => ("download", download(download_at, expected_download)),
            87..=93 => {
                let after = prng.range(1, DOWNLOAD_LEN / 2);
                (
                    "reset by the client",
                    download_then_reset(download_at, after),
                )
            }
            _ => {
                let at = [echo_at, digest_at, download_at][prng.range(0, 2)];
                ("abandoned during setup", abandon(at))
            }
        };
        records.push(Record {
            kind,
            started,
            ended: Instant::now(),
            outcome,
        });
        i += 1;
    }
    records
}

#[test]
fn a_day_of_forwarding_three_mappings_through_restarts_and_a_dns_change_leaks_nothing() {
    let _machine = util::whole_machine();
    raise_fd_limit(8192);
    let soak = duration();
    let dir = util::TempDir::new("soak");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    let report = in_private_network(move || soak_in(soak, &etc));
    eprintln!("{report}");
}

/// The whole soak, in a network of its own: the figures, once every check passed.
fn soak_in(soak: Duration, etc: &std::path::Path) -> String {
    let w = World::new();
    let dns = Dns::start(&[EDGE]);
    let edge = EdgeBuilder::new(w.ca.leaf(&[ECHO, DIGEST, DOWNLOAD]))
        .route(ECHO, backend::start(Behaviour::Echo))
        .route(DIGEST, backend::start(Behaviour::DigestAfterEof))
        .route(
            DOWNLOAD,
            backend::start(Behaviour::Download {
                len: DOWNLOAD_LEN as u64,
                seed: DOWNLOAD_SEED,
            }),
        )
        .start();
    // The edge's two addresses, the same port on both: DNS says the first,
    // then the second.
    let mut first = Front::start("127.0.0.1:0".parse().unwrap(), edge.addr());
    let port = first.addr().port();
    let mut second = Front::start(SocketAddr::from(([127, 0, 0, 2], port)), edge.addr());
    let mut cmd = bare_tunnel();
    cmd.arg("forward")
        .arg("-v")
        .args(["--max-connections", &MAX_CONNECTIONS.to_string()])
        .arg("--cacert")
        .arg(&w.ca.pem_path)
        .arg("--connect-to")
        .arg(format!("::{EDGE}:{port}"));
    for host in [ECHO, DIGEST, DOWNLOAD] {
        cmd.arg(format!("0:{host}:443"));
    }
    util::with_etc(&mut cmd, etc, &RESOLVER_FILES);
    let fwd = Forwarder::start_mappings(&mut cmd, 3);
    let idle_fds = descriptors(fwd.pid);
    let idle_rss = rss_anon_kib(fwd.pid);
    let mappings = [0, 1, 2].map(|i| fwd.mappings[i][0]);
    let pool = Arc::new(Prng::bytes(17, MAX_SIZE + 64 * 1024));
    let expected_download = util::sha256(&Prng::bytes(DOWNLOAD_SEED, DOWNLOAD_LEN));

    let start = Instant::now();
    let end = start + soak;
    let records = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|n| {
            let (pool, expected, records) = (
                Arc::clone(&pool),
                expected_download.clone(),
                Arc::clone(&records),
            );
            thread::spawn(move || {
                let mine = worker(n, mappings, &pool, &expected, end);
                records.lock().unwrap().extend(mine);
            })
        })
        .collect();
    // The script: the points in time are the scenario's, not waits for anything.
    let at = |share: f64| start + soak.mul_f64(share);
    let mut restarts = Vec::new();
    let restart = |first: &mut Front, second: &mut Front, share: f64| {
        thread::sleep(at(share).saturating_duration_since(Instant::now()));
        let down = Instant::now();
        first.go_down();
        second.go_down();
        thread::sleep(DOWN);
        first.come_back();
        second.come_back();
        (down, Instant::now())
    };
    restarts.push(restart(&mut first, &mut second, 0.15));
    thread::sleep(at(0.25).saturating_duration_since(Instant::now()));
    dns.point(EDGE, Ipv4Addr::new(127, 0, 0, 2));
    let moved = Instant::now();
    restarts.push(restart(&mut first, &mut second, 0.8));
    for worker in workers {
        worker.join().unwrap();
    }
    let took = start.elapsed();
    let records = std::mem::take(&mut *records.lock().unwrap());

    // Every completed transfer was whole; every cut one overlapped a restart.
    let grace = util::slack(Duration::from_secs(2));
    let wrong: Vec<String> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Wrong(_)))
        .map(|r| r.describe(start))
        .collect();
    assert!(wrong.is_empty(), "taken for whole but not: {wrong:?}");
    let restarted: Vec<String> = restarts
        .iter()
        .map(|(down, up)| format!("{:.1?}-{:.1?}", *down - start, *up - start))
        .collect();
    let stray: Vec<String> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Cut(_)))
        .filter(|r| {
            !restarts
                .iter()
                .any(|&(down, up)| r.started <= up + grace && r.ended >= down)
        })
        .map(|r| r.describe(start))
        .collect();
    assert!(
        stray.is_empty(),
        "cut with no restart near (restarts {restarted:?}): {stray:?}"
    );
    // After each restart the next connection worked at once.
    let mut back_in = Vec::new();
    for &(_, up) in &restarts {
        let first_whole = records
            .iter()
            .filter(|r| r.started >= up && matches!(r.outcome, Outcome::Whole(..)))
            .map(|r| r.ended)
            .min()
            .expect("no connection completed after a restart");
        back_in.push(first_whole - up);
    }
    assert!(
        back_in
            .iter()
            .all(|d| *d < util::slack(Duration::from_secs(3))),
        "serving again only after {back_in:?}"
    );
    // The DNS change was followed: the old address took nothing after the
    // 60-second refresh, the new one took connections.
    let refreshed_by = restarts[1].0;
    assert!(second.accepted() > 0, "nothing reached the new address");
    assert!(
        first.last_accept().is_some_and(|t| t < refreshed_by),
        "the old address still took connections at the end"
    );
    // One line per connection, and nothing left held.
    let lines = || fwd.lines_with(" bytes sent, ");
    util::wait_until(util::HANG, "one line per connection", || {
        lines() >= records.len()
    });
    assert_eq!(
        lines(),
        records.len(),
        "lines for {} connections",
        records.len()
    );
    let mut fds = 0;
    util::poll_until(util::HANG, || {
        fds = descriptors(fwd.pid);
        (fds == idle_fds).then_some(())
    })
    .unwrap_or_else(|| panic!("{fds} descriptors held, {idle_fds} when idle"));
    // Every slot is free again: as many connections as the limit, all at
    // once, are each served.
    let mut full: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| connect_to(mappings[0]))
        .collect();
    for s in &mut full {
        s.write_all(b"x").unwrap();
    }
    for (n, s) in full.iter_mut().enumerate() {
        let mut echoed = [0; 1];
        s.read_exact(&mut echoed)
            .unwrap_or_else(|e| panic!("connection {n} of {MAX_CONNECTIONS} not served: {e}"));
    }
    drop(full);
    let end_rss = rss_anon_kib(fwd.pid);
    let peak_rss = peak_rss_kib(fwd.pid);
    assert!(
        end_rss <= idle_rss + RSS_BOUND_KIB,
        "RSS {end_rss} KiB at the end, {idle_rss} KiB when first idle"
    );

    let count = |kind: &str| records.iter().filter(|r| r.kind == kind).count();
    let cut = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Cut(_)))
        .count();
    let (up, down) = records.iter().fold((0, 0), |(u, d), r| match r.outcome {
        Outcome::Whole(a, b) => (u + a, d + b),
        _ => (u, d),
    });
    let switched = second
        .first_accept()
        .map_or_else(|| "never".into(), |t| format!("{:.0?}", t - moved));
    format!(
        "forward soak: {} connections in {took:.0?} over 3 mappings ({} echo, {} digest, \
         {} download, {} reset by the client, {} abandoned during setup; {cut} cut by the \
         2 edge restarts, 0 wrong), {:.1} MiB sent and {:.1} MiB received whole; serving \
         again {back_in:.1?} after each restart; DNS change followed after {switched}; \
         descriptors {idle_fds} idle, {fds} at the end; RSS (anonymous) {idle_rss} KiB \
         idle, {end_rss} KiB at the end, peak {peak_rss} KiB",
        records.len(),
        count("echo"),
        count("digest"),
        count("download"),
        count("reset by the client"),
        count("abandoned during setup"),
        up as f64 / MIB as f64,
        down as f64 / MIB as f64,
    )
}
