//! The Wine harness's groundwork (issue 19): a Rust program built here for
//! `x86_64-pc-windows-gnu` runs under Debian's wine64 (Wine 8.0) once the
//! bcryptprimitives.dll shim is beside it, moves 8 MiB through its stdin and
//! stdout pipes intact, and reads the Windows certificate store through the
//! tunnel's own `src/tls/system_roots.rs` (Wine's store holds the host's roots).
//!
//! The program is `tests/windows/probe`, its own workspace, while the crate as
//! a whole does not build for Windows yet. Needs `gcc-mingw-w64-x86-64`,
//! `wine64`, `ca-certificates` and the rustup target `x86_64-pc-windows-gnu`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ring::digest::{digest, SHA256};

use crate::common::cargo::BUILD_DEADLINE;
use crate::common::process::run_within;
use crate::util::{temp_dir, text, REPO};

const TARGET: &str = "x86_64-pc-windows-gnu";
/// Debian's wine64 package installs its loader here, not on PATH.
const WINE64: &str = "/usr/lib/wine/wine64";
/// Bound on one program under Wine, the first of which creates the prefix.
const WINE_DEADLINE: Duration = Duration::from_secs(180);

/// Builds the probe for Windows (in a target dir of its own, kept between runs).
fn probe_exe() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("windows-probe-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run_within(
        Command::new(cargo)
            .args(["build", "--release", "--locked", "--target", TARGET])
            .arg("--manifest-path")
            .arg(Path::new(REPO).join("tests/windows/probe/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir),
        b"",
        BUILD_DEADLINE,
    );
    out.assert_success(&format!(
        "cargo build --target {TARGET} of tests/windows/probe (needs `rustup target add {TARGET}` \
         and the Debian package gcc-mingw-w64-x86-64)"
    ));
    target_dir.join(format!("{TARGET}/release/vers-tunnel-windows-probe.exe"))
}

/// Builds the bcryptprimitives.dll shim into the directory of `exe`, where
/// Windows' loader looks first.
pub fn shim_beside(exe: &Path) {
    let out = run_within(
        Command::new("bash")
            .arg(Path::new(REPO).join("tests/windows/build-shim.sh"))
            .arg(exe.parent().unwrap()),
        b"",
        BUILD_DEADLINE,
    );
    out.assert_success("tests/windows/build-shim.sh");
}

/// `wine64 exe` in a prefix of the tests' own, Wine's chatter off.
fn wine(exe: &Path) -> Command {
    let mut cmd = Command::new(WINE64);
    cmd.arg(exe)
        .env(
            "WINEPREFIX",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("wine-prefix"),
        )
        .env("WINEDEBUG", "-all");
    cmd
}

/// `len` bytes that no compressor or pattern hides a lost block in.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_windows_exe_built_here_runs_under_wine_with_the_shim_and_copies_8_mib_intact() {
    let exe = probe_exe();
    let dir = temp_dir("wine-probe");
    let probe = dir.join("probe.exe");
    fs::copy(&exe, &probe).unwrap();

    // Without the shim Wine 8.0 cannot even start it.
    let bare = run_within(
        wine(&probe).env("WINEDEBUG", "err+module"),
        b"",
        WINE_DEADLINE,
    );
    assert!(!bare.status.success(), "{}", bare.stderr);
    assert!(
        bare.stderr.contains("bcryptprimitives.dll") && bare.stderr.contains("not found"),
        "{}",
        bare.stderr
    );

    shim_beside(&probe);
    let input = noise(8 << 20);
    let out = run_within(&mut wine(&probe), &input, WINE_DEADLINE);
    out.assert_success("wine64 probe.exe");
    assert_eq!(out.stdout.len(), input.len());
    assert!(
        digest(&SHA256, &out.stdout).as_ref() == digest(&SHA256, &input).as_ref(),
        "stdout is not stdin"
    );
    let err = text(out.stderr.as_bytes());
    let system: usize = err
        .split_once("built-in roots, ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no store count in: {err}"));
    assert!(
        err.starts_with("probe: copied 8388608 bytes;") && system > 0,
        "the Windows store (Wine's holds the host's roots) added none: {err}"
    );
}
