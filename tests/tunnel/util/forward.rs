//! A running `vers-tunnel forward`: started against a test edge, its
//! "listening on" line read for the real addresses, its later log lines kept;
//! and the commands that start one.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::{bare_tunnel, clean_env, World, HOST};
use super::{poll_until, signal, Exit, HANG};

/// `vers-tunnel forward --connect-to ... LISTEN HOST:443 --cacert CA`: every
/// connection goes to the test edge at `edge`, trusting the world's CA.
pub fn command(w: &World, edge: SocketAddr, listen: &str) -> Command {
    let mut cmd = command_without_ca(edge, listen);
    cmd.arg("--cacert").arg(&w.ca.pem_path);
    cmd
}

/// [`command`] trusting only the built-in roots.
pub fn command_without_ca(edge: SocketAddr, listen: &str) -> Command {
    command_run_by(bare_tunnel(), edge, listen)
}

/// [`command_without_ca`] run by `cmd` (the binary, or Wine running the
/// Windows one).
pub fn command_run_by(mut cmd: Command, edge: SocketAddr, listen: &str) -> Command {
    cmd.arg("forward")
        .arg("--connect-to")
        .arg(super::connect_to(HOST, edge))
        .arg(listen)
        .arg(format!("{HOST}:443"));
    cmd
}

/// `cmd` under `sh -c 'ulimit -Sn SOFT && ulimit -Hn HARD && exec ...'`: the
/// same process (sh execs it, so the pid is the forwarder's), started with
/// those open-files limits (`hard` no higher than the test's own).
pub fn with_open_files_limits(cmd: &Command, soft: u32, hard: u32) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!(
            "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    clean_env(&mut sh);
    sh
}

/// A forwarder process and what it has said on stderr so far.
pub struct Forwarder {
    pub pid: u32,
    /// The addresses its (first) "listening on" line names.
    pub listening: Vec<SocketAddr>,
    /// The addresses each of its "listening on" lines names, one per mapping.
    pub mappings: Vec<Vec<SocketAddr>>,
    exit: Exit,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Forwarder {
    /// Starts `cmd` (a `vers-tunnel forward ...`) and waits for its
    /// "listening on" line; panics with what it said if it exits first.
    pub fn start(cmd: &mut Command) -> Forwarder {
        Forwarder::start_mappings(cmd, 1)
    }

    /// [`Forwarder::start`] for a forwarder of `n` mappings: waits for
    /// its `n` "listening on" lines.
    pub fn start_mappings(cmd: &mut Command, n: usize) -> Forwarder {
        let mut child: Child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        // Built before waiting, so that a failed start still kills it (Drop).
        let mut fwd = Forwarder {
            pid,
            listening: Vec::new(),
            mappings: Vec::new(),
            exit: Exit::watch(child),
            lines,
        };
        let said = poll_until(HANG, || {
            if let Some(status) = fwd.exit.within(Duration::ZERO) {
                panic!(
                    "forward exited {status:?} before listening: {:?}",
                    snapshot(&fwd.lines)
                );
            }
            let listening: Vec<String> = snapshot(&fwd.lines)
                .into_iter()
                .filter(|l| l.contains("listening on"))
                .collect();
            (listening.len() >= n).then_some(listening)
        })
        .unwrap_or_else(|| panic!("not {n} 'listening on' lines: {:?}", fwd.stderr()));
        fwd.mappings = said.iter().map(|l| parse_listening(l)).collect();
        fwd.listening = fwd.mappings[0].clone();
        fwd
    }

    /// The first address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listening[0]
    }

    /// A connection to it, with a read deadline.
    pub fn connect(&self) -> TcpStream {
        connect_to(self.addr())
    }

    /// Everything it has written to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        snapshot(&self.lines)
    }

    /// How many of its stderr lines so far contain `words`.
    pub fn lines_with(&self, words: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(words)).count()
    }

    /// Waits until some stderr line contains `words`; panics after `limit`.
    pub fn wait_for_line(&self, words: &str, limit: Duration) -> String {
        poll_until(limit, || {
            self.stderr().into_iter().find(|l| l.contains(words))
        })
        .unwrap_or_else(|| panic!("no line with {words:?} in {:?}", self.stderr()))
    }

    /// Sends `sig` and waits for the exit status, panicking if it does not come.
    pub fn stop(self, sig: libc::c_int, limit: Duration) -> (ExitStatus, Vec<String>) {
        signal(self.pid, sig);
        let status = self.exit.wait(limit, "of the stop signal");
        // The stderr thread ends at EOF, which follows the exit.
        let _ = poll_until(HANG, || (Arc::strong_count(&self.lines) == 1).then_some(()));
        (status, snapshot(&self.lines))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // A test that failed part-way must not leave it running.
        if self.exit.within(Duration::ZERO).is_none() {
            self.exit.kill();
        }
    }
}

/// A connection to `addr` with a read deadline of [`HANG`].
pub fn connect_to(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s
}

/// Reads until EOF or an error; the bytes, and the error if one ended it.
pub fn read_all(s: &mut impl Read) -> (Vec<u8>, Option<io::Error>) {
    let mut got = Vec::new();
    let mut buf = [0; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e)),
        }
    }
}

/// Leaves with a reset (SO_LINGER 0), as a killed client with unread bytes
/// does: unlike a FIN, which may be a half-close, that is the client gone.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

fn snapshot(lines: &Mutex<Vec<String>>) -> Vec<String> {
    lines.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The addresses in "vers-tunnel: listening on A and B, forwarding to T".
fn parse_listening(line: &str) -> Vec<SocketAddr> {
    let rest = line.split("listening on ").nth(1).unwrap();
    let addrs = rest.split(", forwarding to").next().unwrap();
    addrs
        .split(" and ")
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("not an address: {a:?}"))
        })
        .collect()
}
