//! Running things for the ship tests: install.sh on a throwaway HOME, and
//! `ssh -G`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use crate::common::cargo::BUILD_DEADLINE;
use crate::common::process::{run_within, Run};
use crate::common::tempdir::TempDir;

/// The binary under test, built by cargo for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_vers-tunnel");
/// The checkout, where install.sh is.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// Bound on any other child process.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// A directory for one test under cargo's tmp dir (in the target directory,
/// where the installed binaries may be run), removed on drop.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), name)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// install.sh with `home` as HOME, cargo and rustup still finding their homes,
/// and any extra environment.
pub fn install_sh(home: &Path, args: &[&str], env: &[(&str, &Path)], deadline: Duration) -> Run {
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
    run_within(&mut cmd, b"", deadline)
}

/// `ssh -G -F config host`: the options ssh would use, as `key value` lines.
pub fn ssh_g(config: &Path, host: &str) -> String {
    let out = run_within(
        Command::new("ssh")
            .arg("-G")
            .arg("-F")
            .arg(config)
            .arg(host),
        b"",
        RUN_DEADLINE,
    );
    out.assert_success(&format!("ssh -G -F {} {host}", config.display()));
    text(&out.stdout)
}

/// The value of `key` in `ssh -G` output.
pub fn ssh_option(resolved: &str, key: &str) -> Option<String> {
    resolved
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key} ")))
        .map(str::to_string)
}

/// ssh, reading `config`, sends a VM through `bin` as root, and leaves the
/// user's `Host foo` (`User bar`) alone.
pub fn assert_vms_go_through(config: &Path, bin: &Path) {
    let vm = ssh_g(config, "x.vm.vers.sh");
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!("{} %h", bin.display()))
    );
    assert_eq!(ssh_option(&vm, "user").as_deref(), Some("root"));
    let own = ssh_g(config, "foo");
    assert_eq!(ssh_option(&own, "user").as_deref(), Some("bar"));
    assert_eq!(ssh_option(&own, "proxycommand"), None);
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The static builds share one target dir, kept between runs so they are incremental.
pub fn static_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ship-static-target")
}
