//! Running things for the ship tests: a temp dir, child processes with a
//! deadline, install.sh on a throwaway HOME, and `ssh -G`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_vers-tunnel");
/// The checkout, where install.sh is.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Bound on a static build (a cold one compiles every dependency).
pub const BUILD_DEADLINE: Duration = Duration::from_secs(900);
/// Bound on any other child process.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// A directory under cargo's tmp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ship-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` with `input` on stdin; panics if it outlives `deadline`.
pub fn run(cmd: &mut Command, input: &[u8], deadline: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(output) => {
            let _ = writer.join();
            output.unwrap()
        }
        Err(_) => {
            // SAFETY: kill() on the pid of our own child, which has not been reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {deadline:?}");
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// install.sh with `home` as HOME, cargo and rustup still finding their homes,
/// and any extra environment.
pub fn install_sh(home: &Path, args: &[&str], env: &[(&str, &Path)], deadline: Duration) -> Output {
    let real_home = std::env::var_os("HOME").unwrap_or_default();
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(REPO).join("install.sh")).args(args);
    for (var, dir) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
        let value = std::env::var_os(var).unwrap_or_else(|| Path::new(&real_home).join(dir).into());
        cmd.env(var, value);
    }
    cmd.env("HOME", home);
    for (var, value) in env {
        cmd.env(var, value);
    }
    run(&mut cmd, b"", deadline)
}

/// `ssh -G -F config host`: the options ssh would use, as `key value` lines.
pub fn ssh_g(config: &Path, host: &str) -> String {
    let out = run(
        Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(config)
            .arg(host),
        b"",
        RUN_DEADLINE,
    );
    assert_success(&out, &format!("ssh -G -F {} {host}", config.display()));
    text(&out.stdout)
}

/// The value of `key` in `ssh -G` output.
pub fn ssh_option(resolved: &str, key: &str) -> Option<String> {
    resolved
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key} ")))
        .map(str::to_string)
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The static builds share one target dir, kept between runs so they are incremental.
pub fn static_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ship-static-target")
}
