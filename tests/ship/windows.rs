//! The Wine harness's groundwork (issue 19): a Rust program built here for
//! `x86_64-pc-windows-gnu` runs under Debian's wine64 (Wine 8.0) once the
//! bcryptprimitives.dll shim is beside it, moves 8 MiB through its stdin and
//! stdout pipes intact, and reads the Windows certificate store through the
//! tunnel's own `src/tls/system_roots.rs` (Wine's store holds the host's
//! roots): a CA an administrator adds there is trusted, and only while it is.
//!
//! The program is `tests/windows/probe`, its own workspace: it changes the
//! store as an administrator would, which vers-tunnel itself never does (the
//! tunnel's .exe is tested in tests/tunnel/windows.rs). Needs
//! `gcc-mingw-w64-x86-64`, `wine64`, `ca-certificates` and the rustup target
//! `x86_64-pc-windows-gnu`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ring::digest::{digest, SHA256};

use crate::common::cargo::BUILD_DEADLINE;
use crate::common::pki::Ca;
use crate::common::process::run_within;
use crate::common::wine::{shim_beside, Wine, TARGET, WINE_DEADLINE};
use crate::util::{temp_dir, text, REPO};

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

/// A copy of the probe in `dir`, with the shim beside it.
fn probe_in(dir: &Path) -> PathBuf {
    let probe = dir.join("probe.exe");
    fs::copy(probe_exe(), &probe).unwrap();
    shim_beside(&probe);
    probe
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

/// A CA an administrator puts in the Windows ROOT store is trusted, with the
/// built-in roots still there; before, a chain from it is refused. In a
/// prefix of the test's own, which goes with it.
#[test]
fn a_ca_added_to_the_windows_store_is_trusted() {
    let dir = temp_dir("wine-store");
    let probe = probe_in(dir.path());
    let wine = Wine::own(dir.join("prefix"));
    let ca = Ca::new(dir.path(), "vers-tunnel Windows store test CA");
    let leaf = ca.leaf(&["edge.store.test"]);
    let (ca_der, leaf_der) = (dir.join("ca.der"), dir.join("leaf.der"));
    fs::write(&ca_der, ca.cert.as_ref()).unwrap();
    fs::write(&leaf_der, leaf.chain[0].as_ref()).unwrap();
    let verify = || {
        let out = wine.run(
            &probe,
            &[Path::new("verify"), &leaf_der, Path::new("edge.store.test")],
        );
        (out.status.code(), text(&out.stdout))
    };

    let (code, said) = verify();
    assert_eq!(code, Some(1), "{said}");
    assert!(said.starts_with("untrusted: "), "{said}");
    let out = wine.run(&probe, &[Path::new("add-root"), &ca_der]);
    out.assert_success("probe.exe add-root");
    assert_eq!(verify(), (Some(0), "trusted\n".to_string()));
}

#[test]
fn a_windows_exe_built_here_runs_under_wine_with_the_shim_and_copies_8_mib_intact() {
    let dir = temp_dir("wine-probe");
    let probe = dir.join("probe.exe");
    fs::copy(probe_exe(), &probe).unwrap();
    let wine = Wine::shared(Path::new(env!("CARGO_TARGET_TMPDIR")));

    // Without the shim Wine 8.0 cannot even start it.
    let bare = run_within(
        wine.command(&probe).env("WINEDEBUG", "err+module"),
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
    let out = run_within(&mut wine.command(&probe), &input, WINE_DEADLINE);
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
