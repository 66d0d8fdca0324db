//! Windows programs under Wine on this machine (Debian's `wine64`, Wine 8.0):
//! the bcryptprimitives.dll shim beside an .exe, and Wine prefixes whose
//! wineserver and services run apart from any test's pipes. Needs the Debian
//! packages `wine64` and, for the shim, `gcc-mingw-w64-x86-64`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::cargo::BUILD_DEADLINE;
use super::process::{run_within, wait, Run};

/// The Rust target of the Windows builds.
pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// Debian's wine64 package installs its loader here, not on PATH.
pub const WINE64: &str = "/usr/lib/wine/wine64";
/// And the server every program of a prefix talks to.
const WINESERVER: &str = "/usr/lib/wine/wineserver";
/// Bound on one program under Wine; the first in a new prefix creates it
/// (about 17 s here).
pub const WINE_DEADLINE: Duration = Duration::from_secs(180);

/// Prefixes are created one at a time: two first runs at once can hang.
static BOOTING: Mutex<()> = Mutex::new(());
/// How many tests hold the shared prefix: its server stops with the last.
static SHARING: Mutex<usize> = Mutex::new(0);

/// Builds the bcryptprimitives.dll shim (tests/windows/build-shim.sh) into the
/// directory of `exe`, where Windows' loader looks first: Rust's std imports
/// `ProcessPrng` from it, and Wine 8.0 has no such DLL.
pub fn shim_beside(exe: &Path) {
    let out = run_within(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/windows/build-shim.sh"))
            .arg(exe.parent().unwrap()),
        b"",
        BUILD_DEADLINE,
    );
    out.assert_success("tests/windows/build-shim.sh");
}

/// A Wine prefix in use. Its wineserver and Wine's own services
/// (services.exe, winedevice.exe, explorer.exe) are started with no pipes of
/// a test's: started by a test's first program instead, they would hold its
/// stdout and stderr open for as long as they outlive it. Dropping the last
/// user of a prefix stops them.
pub struct Wine {
    prefix: PathBuf,
    shared: bool,
}

impl Wine {
    /// The prefix that the tests of one run share, in `dir` (cargo's
    /// `CARGO_TARGET_TMPDIR`, kept between runs, so that only a machine's
    /// first run creates it): started by its first user, stopped with its
    /// last. Programs of several tests run in it at once.
    pub fn shared(dir: &Path) -> Wine {
        let mut users = SHARING.lock().unwrap_or_else(PoisonError::into_inner);
        let prefix = dir.join("wine-prefix");
        if *users == 0 {
            boot(&prefix);
        }
        *users += 1;
        Wine {
            prefix,
            shared: true,
        }
    }

    /// A prefix at `prefix` for one test alone (one whose Windows settings it
    /// changes), created if new; stopped when dropped.
    pub fn own(prefix: PathBuf) -> Wine {
        boot(&prefix);
        Wine {
            prefix,
            shared: false,
        }
    }

    /// Points `cmd` (wine64, or a program that runs it: ssh with a
    /// ProxyCommand) at this prefix, with Wine's own chatter off.
    pub fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("WINEPREFIX", &self.prefix).env("WINEDEBUG", "-all")
    }

    /// `wine64 EXE`, in this prefix.
    pub fn command(&self, exe: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(WINE64);
        cmd.arg(exe);
        self.env(&mut cmd);
        cmd
    }

    /// Runs `wine64 EXE ARGS` with empty stdin.
    pub fn run(&self, exe: &Path, args: &[&Path]) -> Run {
        run_within(self.command(exe).args(args), b"", WINE_DEADLINE)
    }

    /// What `wine64 cmd /c echo %VAR%` says `VAR` is, as Windows programs see
    /// it in this prefix (Wine sets some itself, e.g. `USERPROFILE`).
    pub fn windows_var(&self, var: &str) -> String {
        let out = run_within(
            self.command("cmd")
                .args(["/c", "echo", &format!("%{var}%")]),
            b"",
            WINE_DEADLINE,
        );
        out.assert_success(&format!("wine64 cmd /c echo %{var}%"));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// The Linux path of a Windows path in this prefix (`winepath -u`).
    pub fn unix_path(&self, windows: &str) -> PathBuf {
        let out = run_within(
            self.command("winepath").args(["-u", windows]),
            b"",
            WINE_DEADLINE,
        );
        out.assert_success(&format!("wine64 winepath -u {windows}"));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end())
    }

    fn server(prefix: &Path) -> Command {
        let mut cmd = Command::new(WINESERVER);
        cmd.env("WINEPREFIX", prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        // Held while the server stops, so that no new user of the shared
        // prefix can start one for it in the meantime.
        let mut users = SHARING.lock().unwrap_or_else(PoisonError::into_inner);
        if self.shared {
            *users -= 1;
            if *users > 0 {
                return;
            }
        }
        let _ = Wine::server(&self.prefix).arg("--kill").status();
    }
}

/// Starts `prefix`'s wineserver and services with no test's pipes, creating
/// the prefix if it is new.
fn boot(prefix: &Path) {
    let _one_at_a_time = BOOTING.lock().unwrap_or_else(PoisonError::into_inner);
    fs::create_dir_all(prefix).unwrap();
    // One left by a run that was killed may hold that run's pipes; this
    // waits until it is gone.
    let _ = Wine::server(prefix).arg("--kill").status();
    let status = Wine::server(prefix)
        .arg("--persistent")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {WINESERVER} (Debian package wine64): {e}"));
    assert!(status.success(), "{WINESERVER} --persistent: {status}");
    // The services start with the first program and live as long as the
    // server: that is this one, with nothing of the tests' to hold.
    let boot = Command::new(WINE64)
        .arg("wineboot")
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {WINE64} (Debian package wine64): {e}"));
    let booted = wait(boot, WINE_DEADLINE);
    assert!(booted.success(), "wine64 wineboot: {booted}");
}
