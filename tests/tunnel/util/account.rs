//! A throwaway local account (`useradd -m`), for what a program does as a real
//! user other than root: its own uid, a passwd entry and a fresh home directory
//! with nothing in it (no `~/.ssh`). Removed with its home when dropped, also
//! when the test fails. Needs root, as CI has.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use super::sshd::{check, require};

/// useradd and userdel lock /etc/passwd and fail rather than wait when another
/// holds it: the tests of this process take turns.
static PASSWD: Mutex<()> = Mutex::new(());

/// A local account, deleted with its home directory when dropped.
pub struct Account {
    /// Its login name, unique to this process and test.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its home directory, as the passwd database says.
    pub home: PathBuf,
}

impl Account {
    /// Creates `vt-PID-N` with a new home directory and `/bin/sh` as its shell.
    pub fn create() -> Account {
        require("useradd", "passwd");
        require("setpriv", "util-linux");
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test creates a local account and runs ssh as it: run it as root (CI does)"
        );
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let name = format!("vt-{}-{n}", std::process::id());
        {
            let _turn = PASSWD.lock().unwrap_or_else(PoisonError::into_inner);
            // Left over from a killed run of a process with the same pid.
            let _ = Command::new("userdel").args(["-r", "-f", &name]).output();
            check(
                Command::new("useradd")
                    .args(["-m", "-s", "/bin/sh", "-U"])
                    .arg(&name),
            );
        }
        // Owned from here on, so a failure below still removes it.
        let mut account = Account {
            name,
            uid: 0,
            home: PathBuf::new(),
        };
        let entry = check(Command::new("getent").args(["passwd", &account.name]));
        let entry = String::from_utf8_lossy(&entry).trim().to_string();
        let fields: Vec<&str> = entry.split(':').collect();
        assert_eq!(fields.len(), 7, "getent passwd {}: {entry}", account.name);
        account.uid = fields[2].parse().unwrap();
        account.home = PathBuf::from(fields[5]);
        assert!(
            account.home.is_dir(),
            "useradd -m made no {:?}",
            account.home
        );
        account
    }

    /// `program` run as this account, with the environment a login gives it
    /// (HOME, SHELL, USER, LOGNAME, PATH from its passwd entry, nothing else).
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &self.name, "--regid", &self.name])
            .args(["--init-groups", "--reset-env", "--"])
            .arg(program.as_ref());
        cmd
    }

    /// A copy of the binary under test at `to`, which this account can run
    /// wherever the checkout is. Copied by `cp`, not by this process: a
    /// descriptor open for writing here would be inherited by whatever another
    /// test forks meanwhile, and running the copy would fail with ETXTBSY.
    pub fn copy_of_bin(&self, to: &Path) {
        check(Command::new("cp").arg(super::bin()).arg(to));
    }

    /// Gives `path` to this account.
    pub fn own(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), None)
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _turn = PASSWD.lock().unwrap_or_else(PoisonError::into_inner);
        // -f: even if a process of the account is still running.
        let out = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) && !std::thread::panicking() {
            panic!("userdel -r -f {} failed: {out:?}", self.name);
        }
    }
}
