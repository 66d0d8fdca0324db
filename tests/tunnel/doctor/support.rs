//! What the doctor tests need beyond `util`: running the doctor both ways
//! (text and `--json`) and checking they agree, services that record what
//! they were sent, and a port held bound but not listening on `[::1]`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use socket2::{Domain, Socket, Type};

use crate::util::pki::Leaf;
use crate::util::sshd::{die_with_parent, require};
use crate::util::{self, World, HOST};

/// What one doctor run printed and how it ended, in both output forms.
pub struct Diagnosis {
    /// The text report.
    pub text: String,
    /// The `--json` report, parsed.
    pub json: serde_json::Value,
    /// The exit status (the same for both runs).
    pub code: i32,
}

impl Diagnosis {
    /// Runs `vers-tunnel doctor ARGS` twice, as text and with `--json`,
    /// each command built by `cmd` (so each gets its own namespaces or
    /// environment); asserts both end with the same status and verdict, print
    /// nothing on stderr, and that the JSON is one object that says the same.
    pub fn of(cmd: impl Fn() -> Command) -> Diagnosis {
        let text_run = util::run(&mut cmd(), b"");
        let json_run = util::run(cmd().arg("--json"), b"");
        let text = String::from_utf8(text_run.stdout.clone()).expect("the report is UTF-8");
        let out = String::from_utf8(json_run.stdout.clone()).expect("the JSON is UTF-8");
        let code = text_run.code();
        // `-- --nocapture` shows the reports (the README's come from here).
        eprintln!("{text}");
        assert_eq!(text_run.stderr, "", "the doctor logs nothing by default");
        assert_eq!(json_run.stderr, "", "the doctor logs nothing by default");
        assert!(!text.contains('\x1b'), "no colour on a pipe: {text}");
        eprintln!("{out}");
        assert_eq!(json_run.code(), code, "text:\n{text}\njson: {out}");
        assert!(
            out.ends_with('\n') && out.matches('\n').count() == 1,
            "one line of JSON: {out}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        assert_eq!(json["exit"], code, "{out}");
        assert_eq!(json["ok"], code == 0, "{out}");
        let d = Diagnosis { text, json, code };
        assert_eq!(
            d.json["verdict"].as_str().map(without_the_time),
            Some(without_the_time(d.verdict())),
            "the JSON verdict differs from the text's:\n{}\n{out}",
            d.text
        );
        for step in d.json["steps"].as_array().expect("steps") {
            let name = step["step"].as_str().expect("a step name");
            assert!(
                ["config", "dns", "tcp", "proxy", "tls", "service"].contains(&name),
                "{name}"
            );
            assert!(step["ok"].is_boolean() && step["ms"].is_number(), "{step}");
            assert!(step["detail"].is_string(), "{step}");
        }
        d
    }

    /// The text after `verdict: `.
    pub fn verdict(&self) -> &str {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("verdict: "))
            .unwrap_or_else(|| panic!("no verdict line in:\n{}", self.text))
    }

    /// Asserts the exit status and that the verdict contains each of `words`.
    pub fn assert_verdict(&self, code: i32, words: &[&str]) {
        assert_eq!(self.code, code, "{}", self.text);
        for w in words {
            assert!(
                self.verdict().contains(w),
                "{w:?} not in the verdict:\n{}",
                self.text
            );
        }
    }

    /// The JSON object of step `name`; panics if it did not run.
    pub fn step(&self, name: &str) -> &serde_json::Value {
        self.json["steps"]
            .as_array()
            .and_then(|steps| steps.iter().find(|s| s["step"] == name))
            .unwrap_or_else(|| panic!("no {name} step in {}", self.json))
    }

    /// The names of the steps that ran, in order.
    pub fn steps(&self) -> Vec<String> {
        self.json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["step"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Asserts the text report has a line containing all of `words`.
    pub fn assert_line(&self, words: &[&str]) {
        assert!(
            self.text
                .lines()
                .any(|l| words.iter().all(|w| l.contains(w))),
            "no line with all of {words:?} in:\n{}",
            self.text
        );
    }
}

/// `text` without the clock reading of a certificate error (`(it is now
/// ...)`), which may differ by a second between the two runs.
fn without_the_time(text: &str) -> String {
    match text.split_once(" (it is now ") {
        Some((before, after)) => {
            let rest = after.split_once(')').map_or("", |(_, rest)| rest);
            format!("{before}{rest}")
        }
        None => text.to_string(),
    }
}

/// `vers-tunnel doctor --cacert CA --connect-to HOST:PORT:EDGE HOST:PORT`:
/// the doctor pointed at a test edge, with a clean environment.
pub fn doctor(w: &World, edge: SocketAddr, port: u16) -> Command {
    let mut cmd = doctor_without_ca(edge, port);
    cmd.arg("--cacert").arg(&w.ca.pem_path);
    cmd
}

/// [`doctor`] trusting only the built-in roots.
pub fn doctor_without_ca(edge: SocketAddr, port: u16) -> Command {
    doctor_run_by(util::bare_tunnel(), edge, port)
}

/// [`doctor_without_ca`] run by `cmd` (Wine running the Windows binary).
pub fn doctor_run_by(mut cmd: Command, edge: SocketAddr, port: u16) -> Command {
    cmd.arg("doctor")
        .arg("--connect-to")
        .arg(format!("{HOST}:{port}:{}:{}", edge.ip(), edge.port()))
        .arg(format!("{HOST}:{port}"));
    cmd
}

/// A service on 127.0.0.1 (port 0) behind the edge that sends `greeting` on
/// every connection as soon as it is accepted, then keeps the connection
/// open, recording what it receives, until the client closes.
pub struct Service {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Service {
    pub fn start(greeting: &'static [u8]) -> Service {
        Service::on(TcpListener::bind("127.0.0.1:0").unwrap(), greeting)
    }

    /// The same on a listener of the caller's.
    pub fn on(listener: TcpListener, greeting: &'static [u8]) -> Service {
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let _ = stream.write_all(greeting);
                    let mut buf = [0; 1024];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Service { addr, received }
    }

    /// Everything every connection has sent the service so far.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

/// A port on `[::1]` bound by a socket that never listens: the edge's
/// connection to it is refused, and nothing else can take it while held.
pub struct ClosedPort6 {
    pub addr: SocketAddr,
    _socket: Socket,
}

impl ClosedPort6 {
    /// `[::1]:port`, or `None` if something holds that port already.
    pub fn bind(port: u16) -> Option<ClosedPort6> {
        let socket = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        socket.set_only_v6(true).unwrap();
        let addr = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        socket.bind(&addr.into()).ok()?;
        Some(ClosedPort6 {
            addr,
            _socket: socket,
        })
    }
}

/// The UTC date (y, m, d) `days` from today, for certificate validity.
pub fn date_in(days: i64) -> (i32, u8, u8) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = (now + days * 86_400).div_euclid(86_400) + 719_468;
    // Howard Hinnant's civil_from_days.
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((yoe + era * 400 + i64::from(m <= 2)) as i32, m, d)
}

/// How long a test allows for something that should be immediate.
pub const PROMPT: Duration = Duration::from_secs(10);

/// haproxy as the edge: TLS with `leaf` on 127.0.0.1, every session passed
/// to one backend, as the measurements in issue 12 were made. Killed when dropped.
pub struct Haproxy {
    child: Child,
    pub addr: SocketAddr,
}

impl Haproxy {
    /// Starts haproxy (files in `dir`) on a free port, retrying when another
    /// process takes the port first.
    pub fn start(dir: &Path, leaf: &Leaf, backend: SocketAddr) -> Haproxy {
        let haproxy = require("haproxy", "haproxy");
        let pem = dir.join("haproxy-edge.pem");
        std::fs::write(&pem, format!("{}{}", leaf.cert_pem, leaf.key_pem)).unwrap();
        let log = dir.join("haproxy.log");
        for _ in 0..5 {
            // haproxy cannot be given port 0 and say which it got.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = dir.join("haproxy.cfg");
            std::fs::write(
                &config,
                format!(
                    "global\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
                     timeout client 60s\n  timeout server 60s\nfrontend edge\n  \
                     bind {addr} ssl crt {}\n  default_backend vm\nbackend vm\n  server vm {backend}\n",
                    pem.display()
                ),
            )
            .unwrap();
            let mut cmd = Command::new(&haproxy);
            cmd.arg("-db")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap());
            die_with_parent(&mut cmd);
            let mut child = cmd.spawn().unwrap();
            let listening = util::poll_until(PROMPT, || {
                if TcpStream::connect(addr).is_ok() {
                    return Some(true);
                }
                child.try_wait().unwrap().map(|_| false)
            });
            match listening {
                Some(true) => return Haproxy { child, addr },
                Some(false) => continue,
                None => panic!(
                    "haproxy did not listen on {addr}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        }
        panic!(
            "haproxy could not get a port in 5 tries: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
