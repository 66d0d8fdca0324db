//! The benchmark's floor: the cheapest relay between stdio and a plain TCP
//! connection (blocking, one thread per direction, 256 KiB reads, no TLS), so
//! `benches/compare.sh` can show how far each TLS client is from the limit of
//! the same pipe and socket path.
//!
//! Usage: `plain_relay HOST:PORT`. It exits when the server closes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::fd::AsFd;
#[cfg(windows)]
use std::os::windows::io::AsHandle;
use std::{env, process, thread};

const CHUNK: usize = 256 * 1024;

fn main() {
    let Some(addr) = env::args().nth(1) else {
        eprintln!("usage: plain_relay HOST:PORT");
        process::exit(2);
    };
    if let Err(e) = relay(&addr) {
        eprintln!("plain_relay: {addr}: {e}");
        process::exit(1);
    }
}

fn relay(addr: &str) -> io::Result<()> {
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    // Unbuffered handles on fds 0 and 1 (std's Stdout would line-buffer).
    #[cfg(unix)]
    let (stdin, stdout) = (
        io::stdin().as_fd().try_clone_to_owned()?,
        io::stdout().as_fd().try_clone_to_owned()?,
    );
    #[cfg(windows)]
    let (stdin, stdout) = (
        io::stdin().as_handle().try_clone_to_owned()?,
        io::stdout().as_handle().try_clone_to_owned()?,
    );
    let (stdin, stdout) = (File::from(stdin), File::from(stdout));
    let up = sock.try_clone()?;
    thread::spawn(move || {
        let _ = copy(stdin, &up);
        let _ = up.shutdown(Shutdown::Write);
    });
    // The process ends (closing stdout) once the server is done.
    copy(&sock, stdout)
}

fn copy(mut from: impl Read, mut to: impl Write) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write_all(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
