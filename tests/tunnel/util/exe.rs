//! The Windows build under Wine: the release `vers-tunnel.exe` built once per
//! run with mingw, placed with the bcryptprimitives.dll shim in a folder whose
//! name has a space (as `C:\Program Files` has), and run in the Wine prefix
//! that the run's Windows tests share.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::clean_env;
use super::common::cargo::build_release_for;
use super::common::wine::{shim_beside, Wine, TARGET, WINE64};

/// Names another .exe to test instead of this checkout's release build: one
/// built from a change being judged, or with a fix taken out.
pub const EXE_VAR: &str = "VERS_TUNNEL_TEST_EXE";

/// The .exe under test, beside the shim (in `CARGO_TARGET_TMPDIR`, where
/// files may be run).
pub fn exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let built = match std::env::var_os(EXE_VAR).filter(|path| !path.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => build_release_for(TARGET, "vers-tunnel").unwrap_or_else(|e| {
                panic!(
                    "{e}\nthe Windows build needs `rustup target add {TARGET}` and the \
                     Debian package gcc-mingw-w64-x86-64 (./test.sh adds both)"
                )
            }),
        };
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("windows/Program Files/vers-tunnel");
        fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("vers-tunnel.exe");
        fs::copy(&built, &exe).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", built.display(), exe.display())
        });
        shim_beside(&exe);
        exe
    })
}

/// The Wine prefix the Windows tests share; built first, so that no test's
/// deadline counts the build.
pub fn wine() -> Wine {
    exe();
    Wine::shared(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// `wine64 vers-tunnel.exe` in `wine`, with a clean environment.
pub fn tunnel(wine: &Wine) -> Command {
    let mut cmd = wine.command(exe());
    clean_env(&mut cmd);
    cmd
}

/// `/usr/lib/wine/wine64 '/.../vers-tunnel.exe'`: the start of a
/// ProxyCommand that runs the .exe, as sh reads it (ssh runs the line with
/// `sh -c`); ssh's environment must name the prefix ([`Wine::env`]).
pub fn proxy_program() -> String {
    let exe = exe().to_str().expect("the build's path is UTF-8");
    assert!(!exe.contains('\''), "{exe}: a quote in the path");
    format!("{WINE64} '{exe}'")
}
