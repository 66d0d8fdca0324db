//! Relaying through the test edge (tests/common) on loopback, by a name the
//! test's own `/etc/hosts` gives it.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::process::Command;
use std::thread;

use crate::common::clean_env;
use crate::common::edge::{Edge, EdgeBuilder};
use crate::common::pki::Ca;
use crate::common::process::run_within;
use crate::common::tempdir::TempDir;
use crate::util::{text, RUN_DEADLINE};

/// The test edge for `name`, with a CA whose PEM is in `dir`, in front of a
/// one-connection backend that reads to the end, answers with the bytes
/// upper-cased, and closes: its thread gives back what it read.
fn start_edge(dir: &TempDir, name: &str) -> (Edge, Ca, thread::JoinHandle<io::Result<Vec<u8>>>) {
    let ca = Ca::new(dir.path(), "ship-ca");
    let (backend, served) = upper_case_once();
    let edge = EdgeBuilder::new(ca.leaf(&[name])).backend(backend).start();
    (edge, ca, served)
}

/// A plaintext backend on 127.0.0.1 for one connection; see [`start_edge`].
fn upper_case_once() -> (SocketAddr, thread::JoinHandle<io::Result<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = thread::spawn(move || {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(RUN_DEADLINE))?;
        let mut got = Vec::new();
        sock.read_to_end(&mut got)?;
        sock.write_all(&got.to_ascii_uppercase())?;
        sock.shutdown(Shutdown::Write)?;
        Ok(got)
    });
    (addr, served)
}

/// Sends a line through a vers-tunnel to a fresh edge for `x.vm.vers.sh`, reached
/// as `connect_host` (a name the binary must resolve itself), and checks the answer.
/// `cmd` runs the binary: the binary itself, or qemu or unshare with it as argument.
pub fn relay_through_edge(mut cmd: Command, dir: &TempDir, connect_host: &str) {
    let (edge, ca, served) = start_edge(dir, "x.vm.vers.sh");
    clean_env(&mut cmd);
    let rule = format!("x.vm.vers.sh:443:{connect_host}:{}", edge.addr().port());
    cmd.arg("--cacert")
        .arg(&ca.pem_path)
        .args(["--connect-to", &rule, "--connect-timeout", "20"])
        .arg("x.vm.vers.sh");
    let out = run_within(&mut cmd, b"hello from a static binary\n", RUN_DEADLINE);
    out.assert_success(&format!("{cmd:?} through the edge"));
    assert_eq!(text(&out.stdout), "HELLO FROM A STATIC BINARY\n");
    assert_eq!(out.stderr, "", "a clean session prints nothing");
    let got = served.join().unwrap().unwrap();
    assert_eq!(got, b"hello from a static binary\n");
}

/// `dir/hosts`, giving each of `names` the address 127.0.0.1 only, where the
/// edge listens: for [`with_etc`](crate::common::private_etc::with_etc).
pub fn hosts_file(dir: &TempDir, names: &[&str]) {
    let lines: String = names.iter().map(|n| format!("127.0.0.1 {n}\n")).collect();
    fs::write(dir.join("hosts"), lines).unwrap();
}
