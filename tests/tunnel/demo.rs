//! The local demo (`cargo run --example demo`): it must work for anyone, and
//! leave nothing behind however it ends.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{self, common::cargo, slack, sshd::require};

/// The demo example, built (or found fresh) by cargo once per test run: a
/// `cargo test --test tunnel` does not build examples, and cargo knows where
/// its executable goes for every target dir, profile and triple.
fn demo() -> Command {
    require("ssh", "openssh-client");
    static DEMO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let demo = DEMO.get_or_init(|| cargo::build(&["--example", "demo"], "example", "demo"));
    let demo = demo
        .as_ref()
        .unwrap_or_else(|e| panic!("cannot build the demo: {e}"));
    let mut cmd = Command::new(demo);
    util::clean_env(&mut cmd).env("VERS_TUNNEL_BIN", util::bin());
    cmd
}

/// The directory the demo announced on stderr.
fn announced_dir(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("demo: files in "))
        .unwrap_or_else(|| panic!("the demo did not say where its files are: {stderr}"));
    PathBuf::from(line.split(' ').next().unwrap())
}

/// Asserts the demo's directory is gone and no sshd of it still runs.
fn assert_torn_down(dir: &Path) {
    assert!(!dir.exists(), "{} was left behind", dir.display());
    let sshd = require("sshd", "openssh-server");
    let left = util::pids_of(&sshd, dir.to_str().unwrap());
    assert!(left.is_empty(), "sshd left running: {left:?}");
}

#[test]
fn demo_runs_a_command_on_demo_vm_through_vers_tunnel_and_cleans_up() {
    let run = util::run(
        demo().args(["echo", "hello from $(whoami)@$(hostname)"]),
        b"",
    );
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.starts_with("hello from "), "{out}");
    assert!(
        run.stderr.contains("ProxyCommand vers-tunnel %h"),
        "{}",
        run.stderr
    );
    assert_torn_down(&announced_dir(&run.stderr));
}

#[test]
fn demo_interrupted_with_ctrl_c_tears_everything_down() {
    // Ctrl-C signals the terminal's foreground process group: demo, ssh and
    // vers-tunnel; the demo's sshd is outside it, so the demo must stop it.
    let mut child = demo()
        .args(["echo started; sleep 60"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = util::drain(child.stderr.take().unwrap());
    let line = util::read_line_within(child.stdout.as_mut().unwrap(), util::HANG);
    assert_eq!(line, "started\n");
    let pgid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) has no memory effects; the group is our running child's.
    unsafe { libc::kill(-pgid, libc::SIGINT) };
    let status = util::wait(child, slack(Duration::from_secs(10)));
    let stderr = util::stderr_text(stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_torn_down(&announced_dir(&stderr));
}
