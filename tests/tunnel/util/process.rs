//! Running programs with a deadline: the tunnel and the tools around it,
//! their output, reads from their pipes that give up instead of hanging, and
//! what `/proc` says about them (still running, memory, open descriptors);
//! and waiting for any condition with a deadline.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any single tunnel run may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(5);

/// Checks `check` until it gives a value; `None` if it has not after `limit`.
pub fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Waits until `cond` holds; panics naming `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    if poll_until(limit, || cond().then_some(())).is_none() {
        panic!("waited {limit:?} for {what}, in vain");
    }
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
        assert_eq!(self.code(), 0, "stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "a clean session must print nothing");
    }

    /// Asserts a failure before any byte was relayed: this exit code, one
    /// stderr line containing `words`, nothing on stdout.
    pub fn assert_failure(&self, code: i32, words: &[&str]) {
        self.assert_one_line(code, words);
        assert!(
            self.stdout.is_empty(),
            "{} bytes reached stdout: {:?}",
            self.stdout.len(),
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(80)])
        );
    }

    /// Asserts an established session that ended uncleanly: exit 5 and one
    /// stderr line containing `words`. What it delivered before the end is
    /// the caller's to check.
    pub fn assert_unclean(&self, words: &[&str]) {
        self.assert_one_line(5, words);
    }

    fn assert_one_line(&self, code: i32, words: &[&str]) {
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
        stderr: stderr_text(stderr),
        elapsed: started.elapsed(),
    }
}

/// Runs `cmd` with the stdin and stdout the caller gave it (a file,
/// `/dev/null`, a pipe...), collecting stderr, and stdout if it is piped.
pub fn run_as_set(cmd: &mut Command) -> Run {
    let started = Instant::now();
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdin.take());
    let stdout = child.stdout.take().map(drain);
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait(child, HANG);
    Run {
        status,
        stdout: stdout.map(|s| s.join().unwrap()).unwrap_or_default(),
        stderr: stderr_text(stderr),
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

/// What a process wrote on stderr (drained by [`drain`]), once it has exited.
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
    Exit::watch(child).wait(limit, "of being waited for")
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

    /// The exit status; if the child has not exited within `limit`, SIGKILLs
    /// it and panics: "did not exit within {limit} {what}" (e.g. "of SIGTERM").
    pub fn wait(&self, limit: Duration, what: &str) -> ExitStatus {
        self.within(limit).unwrap_or_else(|| {
            self.kill();
            panic!("process {} did not exit within {limit:?} {what}", self.pid);
        })
    }

    /// SIGKILLs the child.
    pub fn kill(&self) {
        // SAFETY: kill(2) has no memory effects. Called after `within` timed
        // out, when the child is still running and its pid still ours.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
    }
}

/// Waits until `fd` is readable (data or end of file); panics at `deadline`.
fn wait_readable(fd: &impl AsRawFd, deadline: Instant) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            1 => return,
            0 => panic!("nothing came to read before the deadline: the writer hangs"),
            _ => {
                let err = io::Error::last_os_error();
                assert_eq!(err.kind(), io::ErrorKind::Interrupted, "poll: {err}");
            }
        }
    }
}

/// One read from `r`, waiting for data until `deadline` (then panicking); 0 at
/// end of file.
pub fn read_by(r: &mut (impl Read + AsRawFd), buf: &mut [u8], deadline: Instant) -> usize {
    loop {
        wait_readable(r, deadline);
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.unwrap(),
        }
    }
}

/// Fills `buf` from `r`; panics if the bytes have not all come within
/// `limit`, or if `r` ends first.
pub fn read_exact_within(r: &mut (impl Read + AsRawFd), buf: &mut [u8], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut got = 0;
    while got < buf.len() {
        let n = read_by(r, &mut buf[got..], deadline);
        assert_ne!(n, 0, "end of file after {got} of {} bytes", buf.len());
        got += n;
    }
}

/// Reads `r` to its end; panics if the end has not come within `limit`.
pub fn read_to_end_within(r: &mut (impl Read + AsRawFd), limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match read_by(r, &mut buf, deadline) {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads `r` up to and including the first newline; panics if it has not
/// come within `limit`. Reads byte by byte: nothing after the line is taken.
pub fn read_line_within(r: &mut (impl Read + AsRawFd), limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut line = Vec::new();
    let mut byte = [0];
    while line.last() != Some(&b'\n') {
        assert_ne!(
            read_by(r, &mut byte, deadline),
            0,
            "end of file in {line:?}"
        );
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
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

/// What each open descriptor of process `pid` refers to (`socket:[N]`,
/// `pipe:[N]`, `anon_inode:[eventpoll]`, a path...).
pub fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}

/// How many sockets process `pid` has open.
pub fn sockets_of(pid: u32) -> usize {
    open_files(pid)
        .iter()
        .filter(|f| f.starts_with("socket:"))
        .count()
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
    poll_until(limit, || (!running(pid)).then(|| started.elapsed()))
}

/// Waits until exactly one process runs `exe` with `needle` in its command line.
pub fn wait_single_pid(exe: &Path, needle: &str, limit: Duration) -> u32 {
    let found = poll_until(limit, || {
        let pids = pids_of(exe, needle);
        match pids[..] {
            [pid] => Some(pid),
            [] => None,
            _ => panic!("expected one {} process, found {pids:?}", exe.display()),
        }
    });
    found.unwrap_or_else(|| panic!("no {} process within {limit:?}", exe.display()))
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
