//! A real HTTP server playing a web service on a VM: Python's
//! `http.server` (Debian's `python3`) serving a directory on `[::1]`, on a
//! port it picks itself, killed when dropped; and `curl` as its client.

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{read_line_within, run, Exit, Prng, HANG, MIB};

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

/// `curl` fetching `path` from `http://127.0.0.1:PORT/`: the body, once curl
/// has succeeded. `--noproxy`: an http_proxy in the environment must not take
/// the request.
pub fn curl(port: u16, path: &str) -> Vec<u8> {
    let run = run(
        Command::new("curl")
            .args(["-sS", "--fail", "--noproxy", "*", "--max-time", "60"])
            .arg(format!("http://127.0.0.1:{port}/{path}")),
        b"",
    );
    assert_eq!(run.code(), 0, "curl {path}: {}", run.stderr);
    run.stdout
}

/// A small site for curl through a forwarder: `hello.txt`, and `blob.bin`
/// (3 MiB of noise, a lost block shows), served by an [`HttpServer`] from
/// `dir/www`.
pub struct Site {
    pub server: HttpServer,
    files: Vec<(&'static str, Vec<u8>)>,
}

impl Site {
    pub fn start(dir: &Path) -> Site {
        let root = dir.join("www");
        std::fs::create_dir(&root).unwrap();
        let files = vec![
            ("hello.txt", b"hello from the VM\n".to_vec()),
            ("blob.bin", Prng::bytes(7, 3 * MIB + 17)),
        ];
        for (name, body) in &files {
            std::fs::write(root.join(name), body).unwrap();
        }
        Site {
            server: HttpServer::start(&root),
            files,
        }
    }

    /// Asserts that curl, through `port` on 127.0.0.1, gets every file byte
    /// for byte.
    pub fn assert_fetched_through(&self, port: u16) {
        for (path, want) in &self.files {
            let body = curl(port, path);
            assert_eq!(body.len(), want.len(), "{path}: length");
            assert!(body == *want, "{path}: the body differs");
        }
    }
}
