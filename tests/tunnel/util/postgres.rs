//! A real PostgreSQL server (Debian's `postgresql`) playing the service on a
//! VM: a fresh cluster in a test's temp dir, listening on `[::1]` only, on a
//! port picked at run time, stopped when dropped (also when the test fails).

use std::io::{BufRead, BufReader};
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::{poll_until, run, Exit, HANG};

/// How many ports to try when another program takes the one picked for us
/// between our releasing it and postgres binding it.
const PORT_TRIES: usize = 5;

/// The user the server runs as: initdb and postgres refuse to run as root.
const USER: &str = "postgres";

/// A running postmaster and its cluster.
pub struct Postgres {
    /// Where it listens: `[::1]:PORT`.
    pub addr: SocketAddr,
    bin: PathBuf,
    data: PathBuf,
    exit: Exit,
}

impl Postgres {
    /// initdb's a cluster under `dir` (owned by the `postgres` user, trust
    /// authentication, its unix socket in `dir` too) and starts the server,
    /// returning once it is ready to accept connections.
    pub fn start(dir: &Path) -> Postgres {
        let bin = bin_dir();
        let home = dir.join("postgres");
        std::fs::create_dir_all(&home).unwrap();
        let chown = run(
            Command::new("chown")
                .arg(format!("{USER}:{USER}"))
                .arg(&home),
            b"",
        );
        assert!(
            chown.status.success(),
            "chown to the {USER} user (made by Debian's postgresql package; needs root): {}",
            chown.stderr
        );
        let data = home.join("data");
        let init = run(
            as_postgres(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["--auth=trust", "-U", USER, "--no-sync"])
                .args(["-E", "UTF8", "--locale=C"]),
            b"",
        );
        assert!(init.status.success(), "initdb failed: {}", init.stderr);
        for _ in 0..PORT_TRIES {
            if let Some(pg) = Postgres::serve(&bin, &home, &data) {
                return pg;
            }
        }
        panic!("postgres found its port taken {PORT_TRIES} times in a row");
    }

    /// Starts the server on a free port; `None` if the port was taken
    /// before postgres could bind it.
    fn serve(bin: &Path, home: &Path, data: &Path) -> Option<Postgres> {
        let port = free_ipv6_loopback_port();
        let mut child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-h", "::1", "-p", &port.to_string()])
            .arg("-k")
            .arg(home)
            // A throwaway cluster: nothing to keep across a crash.
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runuser (util-linux)");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let stderr = child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        let exit = Exit::watch(child);
        let said = |words: &str| {
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|l| l.contains(words))
        };
        let ready = poll_until(HANG, || {
            if said("ready to accept connections") {
                return Some(true);
            }
            exit.within(Duration::ZERO).map(|_| false)
        });
        if ready == Some(false) {
            // It has exited: its last words are on their way to the reader.
            let _ = reader.join();
        }
        let log = lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n");
        match ready {
            Some(true) => Some(Postgres {
                addr: SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
                bin: bin.to_path_buf(),
                data: data.to_path_buf(),
                exit,
            }),
            Some(false) if log.contains("Address already in use") => None,
            Some(false) => panic!("postgres exited before it was ready:\n{log}"),
            None => {
                exit.kill();
                panic!("postgres was not ready within {HANG:?}:\n{log}")
            }
        }
    }

    /// `psql` from the same installation, with no environment (no PG*
    /// variables, no ~/.psqlrc) and nothing but the rows in its output.
    pub fn psql(&self, addr: SocketAddr) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.env_clear()
            .arg("-X")
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-U", USER, "-d", "postgres"])
            .args(["-At", "-v", "ON_ERROR_STOP=1"]);
        cmd
    }

    /// The postmaster's pid, from the first line of its pid file.
    fn postmaster_pid(&self) -> Option<libc::pid_t> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Signalled directly: runuser would answer SIGTERM with a two-second
        // wait and a SIGKILL. SIGINT is postgres's fast shutdown.
        if let Some(pid) = self.postmaster_pid() {
            // SAFETY: kill(2) has no memory effects; the pid is the
            // postmaster this value started, read from its own pid file.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        if self.exit.within(HANG).is_none() {
            if let Some(pid) = self.postmaster_pid() {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            self.exit.kill();
        }
    }
}

/// The newest `/usr/lib/postgresql/N/bin` that has a server in it.
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("no /usr/lib/postgresql/*/bin/postgres: install Debian's postgresql package")
    })
}

/// `program`, run as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", USER, "--"]).arg(program);
    cmd
}

/// A port free on `[::1]` a moment ago (postgres cannot be told to pick one).
fn free_ipv6_loopback_port() -> u16 {
    let probe = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    probe.local_addr().unwrap().port()
}
