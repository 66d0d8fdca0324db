//! One test's ssh setup: a VM (sshd behind the edge) and a client whose
//! ProxyCommand is the vers-tunnel under test, all in the test's temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::sshd::{require, Client, Vm};
use super::{Run, World, HOST};

/// A VM behind the edge and a client whose ProxyCommand is vers-tunnel.
pub struct Session {
    pub w: World,
    pub vm: Vm,
    pub client: Client,
}

impl Session {
    pub fn new() -> Session {
        Session::run_by(&bin().display().to_string())
    }

    /// [`Session::new`] with `program` (shell words: Wine and the Windows
    /// binary) in place of the binary in the ProxyCommand.
    pub fn run_by(program: &str) -> Session {
        require("ssh", "openssh-client");
        let w = World::new();
        let vm = Vm::start(w.dir.path(), &w.ca, HOST);
        let client = vm.client(w.dir.path(), &vm.proxy_command_run_by(program, &w.ca));
        Session { w, vm, client }
    }

    /// Another client of the same VM, in `dir/name`, through `proxy_command`.
    pub fn client_via(&self, name: &str, proxy_command: &str) -> Client {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.vm.client(&dir, proxy_command)
    }

    /// `name` in the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.w.dir.path().join(name)
    }

    /// `ssh -F CONFIG user@x.vm.vers.sh COMMAND`.
    pub fn ssh(&self, remote_command: &str) -> Command {
        self.client.ssh(remote_command)
    }

    /// `user@x.vm.vers.sh:PATH`.
    pub fn remote(&self, path: &Path) -> String {
        self.client.remote(path)
    }

    /// The running vers-tunnel of this session (its --cacert is in our dir).
    #[cfg(target_os = "linux")]
    pub fn tunnel_pid(&self) -> u32 {
        let needle = self.w.dir.path().to_str().unwrap();
        super::wait_single_pid(bin(), needle, Duration::from_secs(10))
    }

    /// Asserts `run` succeeded without a word on stderr (from ssh or the tunnel).
    pub fn assert_quiet_success(&self, run: &Run, what: &str) {
        assert_eq!(
            run.code(),
            0,
            "{what}: {}\nsshd log:\n{}",
            run.stderr,
            self.vm.sshd.log()
        );
        assert_eq!(run.stderr, "", "{what} must print nothing on stderr");
    }
}

/// The binary under test, as a path.
pub fn bin() -> &'static Path {
    Path::new(super::bin())
}
