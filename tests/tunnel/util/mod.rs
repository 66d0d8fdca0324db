//! Test support: a CA, a TLS edge and backends on loopback (and for the
//! end-to-end tests a real sshd behind the edge and a tmux terminal), and
//! running real programs with a deadline, collecting their output, peak RSS,
//! and whether they are still running.
#![allow(dead_code)]

pub mod backend;
pub mod edge;
pub mod net;
pub mod pki;
pub mod pty;
pub mod session;
pub mod sshd;
pub mod tmux;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

pub use backend::Behaviour;
pub use edge::{Edge, EdgeBuilder, Mode};
pub use pki::Ca;

/// How long any single tunnel run may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// Held shared by tests that assert wall-clock bounds (timeouts, prompt
/// exits) and exclusively by the load test, so that it cannot starve them on a
/// two-core machine.
static MACHINE: RwLock<()> = RwLock::new(());

/// For a test whose assertions include how long something took.
pub fn timed() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(PoisonError::into_inner)
}

/// For a test that loads the whole machine.
pub fn whole_machine() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(PoisonError::into_inner)
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vers-tunnel")
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "vers-tunnel-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One test's world: a temp dir and a CA whose PEM lives in it.
pub struct World {
    pub dir: TempDir,
    pub ca: Ca,
}

impl World {
    pub fn new() -> World {
        let dir = TempDir::new();
        let ca = Ca::new(dir.path(), "test-ca");
        World { dir, ca }
    }

    /// An edge with a valid certificate for `host`, forwarding to `behaviour`.
    pub fn edge(&self, host: &str, behaviour: Behaviour) -> Edge {
        EdgeBuilder::new(self.ca.leaf(&[host]))
            .backend(backend::start(behaviour))
            .start()
    }

    /// Runs the tunnel for `host` against an echoing edge serving `leaf`, with
    /// input that must not arrive when the certificate is refused.
    pub fn run_against(&self, leaf: pki::Leaf, host: &str) -> (Run, Edge) {
        let edge = EdgeBuilder::new(leaf)
            .backend(backend::start(Behaviour::Echo))
            .start();
        let run = run(&mut self.tunnel(edge.addr(), host), b"secret\n");
        (run, edge)
    }

    /// `vers-tunnel --cacert CA --connect-to host:443:127.0.0.1:PORT host`,
    /// with a clean environment.
    pub fn tunnel(&self, edge_addr: SocketAddr, host: &str) -> Command {
        let mut cmd = bare_tunnel();
        cmd.arg("--cacert")
            .arg(&self.ca.pem_path)
            .arg("--connect-to")
            .arg(connect_to(host, edge_addr))
            .arg(host);
        cmd
    }
}

/// `host:443:ADDR:PORT` for `--connect-to`.
pub fn connect_to(host: &str, addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{host}:443:{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{host}:443:[{}]:{}", a.ip(), a.port()),
    }
}

/// The binary with no inherited trust or logging settings.
pub fn bare_tunnel() -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("SSL_CERT_FILE").env_remove("RUST_LOG");
    cmd
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code; panics (with stderr) if a signal ended the process.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| {
            panic!(
                "killed by a signal: {:?}; stderr: {}",
                self.status, self.stderr
            )
        })
    }

    /// Asserts exit 0 and an empty stderr: what a clean session looks like.
    pub fn assert_clean(&self) {
        assert_clean_exit(self.status, &self.stderr);
    }

    /// Asserts a failure: this exit code, one stderr line containing `words`, no stdout.
    pub fn assert_failure(&self, code: i32, words: &[&str]) {
        assert_eq!(self.code(), code, "stderr: {}", self.stderr);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line expected: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("vers-tunnel: "),
            "{:?}",
            self.stderr
        );
        for w in words {
            assert!(self.stderr.contains(w), "{w:?} not in {:?}", self.stderr);
        }
    }
}

/// Asserts what a clean session looks like in a finished process's output:
/// exit 0 and nothing on stderr.
pub fn assert_clean_output(out: &std::process::Output) {
    assert_clean_exit(out.status, &String::from_utf8_lossy(&out.stderr));
}

fn assert_clean_exit(status: ExitStatus, stderr: &str) {
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "", "a clean session must print nothing");
}

/// Runs `cmd` with `input` on stdin (then EOF), collecting stdout and stderr.
pub fn run(cmd: &mut Command, input: &[u8]) -> Run {
    let input = input.to_vec();
    run_with(cmd, move |mut stdin| {
        let _ = stdin.write_all(&input);
    })
}

/// Runs `cmd`, feeding stdin from `feed` on its own thread.
pub fn run_with(
    cmd: &mut Command,
    feed: impl FnOnce(std::process::ChildStdin) + Send + 'static,
) -> Run {
    let started = Instant::now();
    let Piped {
        child,
        stdin,
        stdout,
        stderr,
    } = spawn_piped(cmd);
    let feeder = thread::spawn(move || feed(stdin));
    let stdout = drain(stdout);
    let status = wait(child, HANG);
    let _ = feeder.join();
    Run {
        status,
        stdout: stdout.join().unwrap(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A process with all three stdio ends piped; stderr is read on a thread.
pub struct Piped {
    pub child: Child,
    pub stdin: std::process::ChildStdin,
    pub stdout: std::process::ChildStdout,
    pub stderr: thread::JoinHandle<Vec<u8>>,
}

/// Spawns `cmd` with piped stdin, stdout and stderr.
pub fn spawn_piped(cmd: &mut Command) -> Piped {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Piped {
        stdin: child.stdin.take().unwrap(),
        stdout: child.stdout.take().unwrap(),
        stderr: drain(child.stderr.take().unwrap()),
        child,
    }
}

/// What a [`Piped`] process wrote on stderr, once it has exited.
pub fn stderr_text(stderr: thread::JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&stderr.join().unwrap()).into_owned()
}

/// Reads a pipe to the end on a thread.
pub fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// Waits for `child` (at most `limit`, then kills it and panics).
pub fn wait(child: Child, limit: Duration) -> ExitStatus {
    let exit = Exit::watch(child);
    exit.within(limit).unwrap_or_else(|| {
        exit.kill();
        panic!("process {} did not exit within {limit:?}", exit.pid);
    })
}

/// A child being waited for on a thread, so a test can wait with a deadline.
pub struct Exit {
    pid: u32,
    rx: mpsc::Receiver<ExitStatus>,
}

impl Exit {
    /// Starts waiting for `child`.
    pub fn watch(mut child: Child) -> Exit {
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let status = child.wait().unwrap();
            let _ = tx.send(status);
        });
        Exit { pid, rx }
    }

    /// The exit status, if the child exits within `limit`.
    pub fn within(&self, limit: Duration) -> Option<ExitStatus> {
        self.rx.recv_timeout(limit).ok()
    }

    /// SIGKILLs the child.
    pub fn kill(&self) {
        // SAFETY: kill(2) has no memory effects. Called after `within` timed
        // out, when the child is still running and its pid still ours.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// Peak resident memory of a running process since its exec, in KiB
/// (`VmHWM`; rusage would count the test process's pages shared before exec).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Pids of the processes running `exe` whose command line contains `needle`
/// (a test's temp dir path makes that test's processes unique).
pub fn pids_of(exe: &Path, needle: &str) -> Vec<u32> {
    let exe = std::fs::canonicalize(exe).unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let runs_exe = std::fs::read_link(path.join("exe")).is_ok_and(|p| p == exe);
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        if runs_exe && String::from_utf8_lossy(&cmdline).contains(needle) && running(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is still running: it exists and is not a zombie (an orphan's
/// zombie may wait a while for a reaper, but it has finished).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) STATE ...": comm may contain spaces and parentheses.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// Waits until `pid` stops running; how long that took, or `None` after `limit`.
pub fn wait_gone(pid: u32, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() >= limit {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    Some(started.elapsed())
}

/// Waits until exactly one process runs `exe` with `needle` in its command line.
pub fn wait_single_pid(exe: &Path, needle: &str, limit: Duration) -> u32 {
    let started = Instant::now();
    loop {
        let pids = pids_of(exe, needle);
        match pids[..] {
            [pid] => return pid,
            [] if started.elapsed() < limit => thread::sleep(Duration::from_millis(5)),
            _ => panic!("expected one {} process, found {pids:?}", exe.display()),
        }
    }
}

/// SHA-256 of `data`, as lowercase hex.
pub fn sha256(data: &[u8]) -> String {
    digest_hex(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A digest as lowercase hex.
pub fn digest_hex(d: ring::digest::Digest) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fast deterministic byte generator (splitmix64) for payloads.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let z = self.next_u64();
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `len` bytes from `seed`.
    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        Prng::new(seed).fill(&mut out);
        out
    }
}

/// A pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two fresh descriptors nothing else owns.
    unsafe {
        (
            OwnedFd::from_raw_fd(fds[0]).into(),
            OwnedFd::from_raw_fd(fds[1]).into(),
        )
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; `pid` is a child we started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// Open descriptors of this (the test) process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
