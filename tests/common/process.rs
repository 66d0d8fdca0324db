//! Running programs with a deadline: the tunnel and the tools around it, with
//! stdin fed and stdout and stderr collected on threads, so that a program
//! that hangs fails its test instead of stopping the test run.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::deadline::poll_until;

/// How long any single tunnel run may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(60);

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
}

/// Runs `cmd` with `input` on stdin (then EOF), collecting stdout and stderr;
/// a hang after [`HANG`].
pub fn run(cmd: &mut Command, input: &[u8]) -> Run {
    run_within(cmd, input, HANG)
}

/// [`run`], but a hang after `limit`: if `cmd` has not exited and closed
/// stdout and stderr by then, it is killed and the test panics.
pub fn run_within(cmd: &mut Command, input: &[u8], limit: Duration) -> Run {
    let started = Instant::now();
    let deadline = started + limit;
    let Piped {
        child,
        mut stdin,
        stdout,
        stderr,
    } = spawn_piped(cmd);
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = drain(stdout);
    let status = wait(child, limit);
    let stdout = join_by(stdout, deadline, "its stdout");
    let stderr = join_by(stderr, deadline, "its stderr");
    let _ = feeder.join();
    Run {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Runs `cmd` with the stdin and stdout the caller gave it (a file,
/// `/dev/null`, a pipe...), collecting stderr, and stdout if it is piped.
pub fn run_as_set(cmd: &mut Command) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
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
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: thread::JoinHandle<Vec<u8>>,
}

/// Spawns `cmd` with piped stdin, stdout and stderr.
pub fn spawn_piped(cmd: &mut Command) -> Piped {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
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

/// What a [`drain`] thread read, once its pipe has ended; panics at `deadline`
/// (a process the child started may still hold `what` open).
fn join_by(pipe: thread::JoinHandle<Vec<u8>>, deadline: Instant, what: &str) -> Vec<u8> {
    let left = deadline.saturating_duration_since(Instant::now());
    if poll_until(left, || pipe.is_finished().then_some(())).is_none() {
        panic!("{what} was still open at the deadline, though the process had exited");
    }
    pipe.join().unwrap()
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
