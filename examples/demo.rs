//! A Vers VM on this machine, no account needed: a throwaway sshd on `[::1]`
//! behind the test TLS edge, reached as `demo.vm.vers.sh` through vers-tunnel
//! just as `ProxyCommand vers-tunnel %h` reaches a real VM.
//!
//! ```text
//! cargo run --example demo               # an interactive shell; `exit` leaves
//! cargo run --example demo -- uname -a   # one command
//! ```
//!
//! sshd, the edge, the keys and the certificates live only as long as the
//! ssh session: they are removed when it ends, on Ctrl-C and on SIGTERM.
// The demo shares the integration tests' helpers and uses only some of them.
#![allow(dead_code)]
#![cfg_attr(not(unix), allow(unused_imports))]

// It runs sshd, so on Unix only; elsewhere it says so.
#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("demo: runs on Linux and macOS (it starts sshd)");
    std::process::ExitCode::FAILURE
}

#[cfg(unix)]
#[path = "../tests/common/mod.rs"]
mod common;
#[cfg(unix)]
#[path = "../tests/tunnel/util/sshd.rs"]
mod sshd;

use std::env;
use std::path::PathBuf;
use std::process::{Child, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;

#[cfg(unix)]
use common::pki;
#[cfg(unix)]
use common::tempdir::TempDir;

const HOST: &str = "demo.vm.vers.sh";

/// The stop signal received, if any (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP.store(signal, Ordering::SeqCst);
}

#[cfg(unix)]
fn main() -> ExitCode {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; children get the default action back at exec.
        unsafe { libc::signal(signal, handler as libc::sighandler_t) };
    }
    let tunnel = match tunnel_binary() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("demo: {why}");
            return ExitCode::from(1);
        }
    };
    let dir = TempDir::new("demo");
    let ca = pki::Ca::new(dir.path(), "demo-ca");
    let vm = sshd::Vm::start(dir.path(), &ca, HOST);
    let proxy_command = vm.proxy_command(&tunnel, &ca);
    let client = vm.client(dir.path(), &proxy_command);
    let edge = vm.edge.addr6();
    eprintln!(
        "demo: sshd on {} plays the VM; a TLS edge on {edge} routes SNI {HOST} to it",
        vm.sshd.addr()
    );
    eprintln!("demo: files in {} (removed on exit)", dir.path().display());
    eprintln!(
        "demo: ssh -F {} {}, where the ssh_config says\n\
         demo:     ProxyCommand {proxy_command}\n\
         demo: (for a real VM it is just: ProxyCommand vers-tunnel %h)",
        client.config.display(),
        client.login
    );
    let status = match STOP.load(Ordering::SeqCst) {
        0 => {
            let mut ssh = client.command("ssh");
            ssh.arg(&client.login).args(env::args_os().skip(1));
            match ssh.spawn() {
                Ok(child) => Some(wait_or_stop(child)),
                Err(e) => {
                    eprintln!("demo: cannot run ssh: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    drop(vm);
    drop(dir);
    let signal = STOP.load(Ordering::SeqCst);
    let code = match status {
        _ if signal != 0 => 128 + signal,
        Some(status) => status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        None => 1,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Waits for ssh; a stop signal for the demo alone is passed on to ssh, which
/// then closes the session and its ProxyCommand.
#[cfg(unix)]
fn wait_or_stop(mut child: Child) -> ExitStatus {
    let mut passed_on = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => {
                eprintln!("demo: waiting for ssh: {e}");
                let _ = child.kill();
                return child.wait().unwrap_or_default();
            }
        }
        if STOP.load(Ordering::SeqCst) != 0 && !passed_on {
            let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
            // SAFETY: kill(2) has no memory effects; `pid` is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            passed_on = true;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The vers-tunnel binary: `$VERS_TUNNEL_BIN`, or the one cargo builds for
/// this package (`cargo run --example demo` builds only the example).
#[cfg(unix)]
fn tunnel_binary() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("VERS_TUNNEL_BIN") {
        return Ok(path.into());
    }
    eprintln!("demo: cargo build --bin vers-tunnel");
    // With the example in the same build, features resolve as they did for
    // this example (and for `cargo test`), so nothing is built twice.
    common::cargo::build(
        &["--bin", "vers-tunnel", "--example", "demo"],
        "bin",
        "vers-tunnel",
    )
}
