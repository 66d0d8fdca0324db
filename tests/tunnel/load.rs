//! Load and data integrity: hundreds of tunnels at once, and streams chopped
//! and delayed at random on every side. Every byte arrives, in order, once;
//! no tunnel process is left afterwards.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{self, Behaviour, Prng, World, HOST, MIB};

const TUNNELS: usize = 200;
const EACH_WAY: usize = 8 * MIB;

/// Sockets, and all descriptors the tunnel made itself (sockets, epoll,
/// signalfd, eventfd), open in process `pid`; inherited ones (stdio, and
/// whatever the test runner leaves without close-on-exec) are not counted.
#[cfg(target_os = "linux")]
fn tunnel_descriptors(pid: u32) -> (usize, usize) {
    let files = util::open_files(pid);
    let sockets = files.iter().filter(|f| f.starts_with("socket:")).count();
    let anon = files
        .iter()
        .filter(|f| f.starts_with("anon_inode:"))
        .count();
    (sockets, sockets + anon)
}

/// One running tunnel of the load test and the threads feeding and reading it.
struct Load {
    child: Child,
    stderr_path: std::path::PathBuf,
    feeder: thread::JoinHandle<(String, std::process::ChildStdin)>,
    reader: thread::JoinHandle<(String, std::process::ChildStdout)>,
}

#[cfg(target_os = "linux")]
fn start_load(w: &World, edge: SocketAddr, pool: &Arc<Vec<u8>>, i: usize) -> Load {
    let stderr_path = w.dir.path().join(format!("tunnel-{i}.stderr"));
    let mut child = w
        .tunnel(edge, HOST)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Each tunnel sends a different 8 MiB window of the random pool.
    let offset = (i * 40_961) % (pool.len() - EACH_WAY);
    let pool = Arc::clone(pool);
    let feeder = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let data = &pool[offset..offset + EACH_WAY];
            for chunk in data.chunks(64 * 1024) {
                stdin.write_all(chunk).unwrap();
            }
            (util::sha256(data), stdin)
        })
        .unwrap();
    let reader = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0; 64 * 1024];
            let mut left = EACH_WAY;
            let deadline = Instant::now() + util::HANG;
            while left > 0 {
                let n = util::read_by(&mut stdout, &mut buf[..left.min(64 * 1024)], deadline);
                assert_ne!(n, 0, "stdout ended {left} bytes early");
                ctx.update(&buf[..n]);
                left -= n;
            }
            (util::digest_hex(ctx.finish()), stdout)
        })
        .unwrap();
    Load {
        child,
        stderr_path,
        feeder,
        reader,
    }
}

#[test]
#[cfg(target_os = "linux")]
fn two_hundred_tunnels_at_once_each_move_8_mib_both_ways_intact() {
    let _machine = util::whole_machine();
    util::raise_fd_limit(8192);
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let pool = Arc::new(Prng::bytes(31, 2 * EACH_WAY));
    let started = Instant::now();
    let loads: Vec<Load> = (0..TUNNELS)
        .map(|i| start_load(&w, edge.addr(), &pool, i))
        .collect();
    let mut peaks = Vec::new();
    let mut max_fds = 0;
    for (i, load) in loads.into_iter().enumerate() {
        // The reader first: it gives up if the tunnel hangs. Once all the
        // echo is back, the feeder has written everything.
        let (received, mut stdout) = load.reader.join().unwrap();
        let (sent, stdin) = load.feeder.join().unwrap();
        assert_eq!(received, sent, "tunnel {i}: echoed stream differs");
        // Still running (stdin open): its peak memory covers the whole transfer.
        peaks.push(util::peak_rss_kib(load.child.id()));
        let (sockets, made) = tunnel_descriptors(load.child.id());
        assert_eq!(
            sockets, 1,
            "tunnel {i}: one connection, no leftover attempts"
        );
        max_fds = max_fds.max(made);
        drop(stdin);
        let rest = util::read_to_end_within(&mut stdout, util::HANG);
        assert!(
            rest.is_empty(),
            "tunnel {i}: {} bytes after the echo",
            rest.len()
        );
        let status = util::wait(load.child, util::HANG);
        let stderr = std::fs::read_to_string(&load.stderr_path).unwrap();
        assert_eq!(status.code(), Some(0), "tunnel {i}: {stderr}");
        assert_eq!(stderr, "", "tunnel {i}");
    }
    let elapsed = started.elapsed();
    peaks.sort_unstable();
    let total = (TUNNELS * EACH_WAY * 2) as f64 / MIB as f64;
    eprintln!(
        "load: {TUNNELS} tunnels x {} MiB each way in {elapsed:.1?} ({:.0} MiB/s through the tunnels); \
         peak RSS per tunnel: min {} KiB, median {} KiB, max {} KiB; at most {max_fds} descriptors made by a tunnel",
        EACH_WAY / MIB,
        total / elapsed.as_secs_f64(),
        peaks[0],
        peaks[peaks.len() / 2],
        peaks[peaks.len() - 1],
    );
    // The socket, epoll, the signalfd: nothing piles up.
    assert!(
        max_fds <= 4,
        "a tunnel had {max_fds} descriptors of its own open"
    );
    assert!(
        peaks[peaks.len() - 1] < 16 * 1024,
        "a tunnel used {} KiB: memory is not bounded",
        peaks[peaks.len() - 1]
    );
    // Each tunnel was reaped above; a process it forked would be left with
    // the same command line, which names this test's CA file.
    let left = util::pids_of(Path::new(util::bin()), w.dir.path().to_str().unwrap());
    assert!(
        left.is_empty(),
        "vers-tunnel processes left behind: {left:?}"
    );
}

#[test]
fn random_chunks_pauses_and_stalls_on_every_side_lose_nothing() {
    // Writer pauses, reader stalls, and the backend echoes in random pieces
    // with pauses of its own; each stream must come back byte for byte.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::JitterEcho { seed: 41 });
    const ITERATIONS: u64 = 48;
    const AT_ONCE: u64 = 4;
    let mut total = 0;
    let started = Instant::now();
    for batch in 0..ITERATIONS / AT_ONCE {
        let runs: Vec<_> = (0..AT_ONCE)
            .map(|k| {
                let seed = batch * AT_ONCE + k;
                let cmd = w.tunnel(edge.addr(), HOST);
                thread::spawn(move || jittery_round_trip(cmd, seed))
            })
            .collect();
        for run in runs {
            total += run.join().unwrap();
        }
    }
    eprintln!(
        "integrity: {ITERATIONS} jittery round trips, {:.1} MiB in {:.1?}",
        total as f64 / MIB as f64,
        started.elapsed()
    );
}

/// One tunnel fed and drained in random pieces with random pauses; returns bytes moved.
fn jittery_round_trip(mut cmd: std::process::Command, seed: u64) -> usize {
    let mut prng = Prng::new(seed);
    let len = prng.range(1, 3 * MIB);
    let input = Prng::bytes(1000 + seed, len);
    let util::Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut cmd);
    let to_send = input.clone();
    let feeder = thread::spawn(move || {
        let mut prng = Prng::new(seed ^ 0xfeed);
        let mut sent = 0;
        while sent < to_send.len() {
            let n = prng.range(1, 200_000).min(to_send.len() - sent);
            stdin.write_all(&to_send[sent..sent + n]).unwrap();
            sent += n;
            if prng.range(0, 3) == 0 {
                thread::sleep(Duration::from_micros(prng.range(0, 4000) as u64));
            }
        }
    });
    let mut got = Vec::with_capacity(len);
    let mut buf = vec![0; 256 * 1024];
    let mut reader_prng = Prng::new(seed ^ 0xbeef);
    let deadline = Instant::now() + util::HANG;
    loop {
        let want = reader_prng.range(1, buf.len());
        let n = util::read_by(&mut stdout, &mut buf[..want], deadline);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if reader_prng.range(0, 4) == 0 {
            thread::sleep(Duration::from_micros(reader_prng.range(0, 5000) as u64));
        }
    }
    // The tunnel first: if it hangs without reading, the feeder would too.
    let status = util::wait(child, util::HANG);
    feeder.join().unwrap();
    let stderr = util::stderr_text(stderr);
    assert_eq!(status.code(), Some(0), "seed {seed}: {stderr}");
    assert_eq!(stderr, "", "seed {seed}");
    assert_eq!(got.len(), len, "seed {seed}: length");
    if let Some(at) = got.iter().zip(&input).position(|(a, b)| a != b) {
        panic!("seed {seed}: first differing byte at {at} of {len}");
    }
    len
}
