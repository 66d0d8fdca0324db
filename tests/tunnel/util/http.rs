//! A real HTTP server playing a web service on a VM: Python's
//! `http.server` (Debian's `python3`) serving a directory on `[::1]`, on a
//! port it picks itself, killed when dropped.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{read_line_within, Exit, HANG};

/// A running `python3 -m http.server`.
pub struct HttpServer {
    /// Where it listens: `[::1]:PORT`.
    pub addr: SocketAddr,
    exit: Exit,
}

impl HttpServer {
    /// Serves the files in `root`; returns once it says where it listens.
    pub fn start(root: &Path) -> HttpServer {
        let mut child = Command::new("python3")
            // Unbuffered, so its "Serving HTTP on" line reaches the pipe now.
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "::1",
                "--directory",
            ])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (Debian package python3)");
        let mut stdout = child.stdout.take().unwrap();
        let exit = Exit::watch(child);
        // "Serving HTTP on ::1 port 40123 (http://[::1]:40123/) ..."
        let line = read_line_within(&mut stdout, HANG);
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in http.server's line {line:?}"));
        HttpServer {
            addr: SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            exit,
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.exit.kill();
    }
}
