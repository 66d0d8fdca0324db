//! HTTP proxies on loopback for the proxy tests: a real tinyproxy and a real
//! squid from Debian with generated configs, and a scripted stub proxy written here for the
//! answers no real proxy gives on demand (hostile, broken, slow ones).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::poll_until;
use super::sshd::{check, die_with_parent, require};

/// How long tinyproxy may take to start listening.
const STARTUP: Duration = Duration::from_secs(10);

/// What tinyproxy is told to allow.
#[derive(Default)]
pub struct TinyproxyConfig {
    /// Ports CONNECT may reach (tinyproxy's `ConnectPort`; the edge's port).
    pub connect_ports: Vec<u16>,
    /// `BasicAuth USER PASSWORD`. tinyproxy 1.11 accepts only `[-a-z0-9._]`
    /// in both (anything else is a syntax error in its config).
    pub basic_auth: Option<(String, String)>,
}

/// A running tinyproxy on 127.0.0.1, with its log; killed when dropped.
pub struct Tinyproxy {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Tinyproxy {
    /// Writes a config into `dir` and starts `tinyproxy -d` on a free port,
    /// retrying when another process takes the port first.
    pub fn start(dir: &Path, config: &TinyproxyConfig) -> Tinyproxy {
        let dir = dir.join("tinyproxy");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("tinyproxy.log");
        let conf = dir.join("tinyproxy.conf");
        let launch = Launch {
            program: require("tinyproxy", "tinyproxy"),
            args: vec!["-d".into(), "-c".into(), conf.clone().into()],
            conf,
            log: log.clone(),
            // Logged once its socket listens; it exits (71) when the port is taken.
            ready: "Starting main loop. Accepting connections.",
            taken: "Could not create listening sockets",
        };
        let (child, addr) = launch.start(&dir, |port| tinyproxy_conf(port, &log, config));
        Tinyproxy { child, addr, log }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or with `userinfo@` before the host.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("http://{userinfo}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The request lines of the CONNECTs it logged: `CONNECT 127.0.0.1:P HTTP/1.1`.
    pub fn connects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("): CONNECT "))
            .map(|(_, request)| format!("CONNECT {request}"))
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tinyproxy_conf(port: u16, log: &Path, config: &TinyproxyConfig) -> String {
    let mut c = String::new();
    writeln!(c, "Port {port}").unwrap();
    writeln!(c, "Listen 127.0.0.1").unwrap();
    writeln!(c, "LogFile \"{}\"", log.display()).unwrap();
    c.push_str("LogLevel Info\nTimeout 60\nMaxClients 20\n");
    for port in &config.connect_ports {
        writeln!(c, "ConnectPort {port}").unwrap();
    }
    if let Some((user, password)) = &config.basic_auth {
        writeln!(c, "BasicAuth {user} {password}").unwrap();
    }
    c
}

/// A running squid (Debian's `squid`, the most common corporate proxy) on
/// 127.0.0.1, allowing CONNECT to one port, caching nothing; killed when dropped.
pub struct Squid {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Squid {
    /// Writes a config into `dir` (its logs and pid file there too) and starts
    /// `squid -N` on a free port, retrying when another process takes the
    /// port first; returns once it accepts connections.
    pub fn start(dir: &Path, connect_port: u16) -> Squid {
        let dir = dir.join("squid");
        std::fs::create_dir_all(&dir).unwrap();
        // squid started as root runs as its `proxy` user, which must write here.
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            check(Command::new("chown").arg("proxy:proxy").arg(&dir));
        }
        let conf = dir.join("squid.conf");
        let launch = Launch {
            program: require("squid", "squid"),
            // -N: in the foreground, one process, no kid to outlive the test.
            args: vec!["-N".into(), "-f".into(), conf.clone().into()],
            conf,
            log: dir.join("cache.log"),
            ready: "Accepting HTTP Socket connections at",
            taken: "Address already in use",
        };
        let (child, addr) = launch.start(&dir, |port| squid_conf(port, &dir, connect_port));
        Squid { child, addr, dir }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The CONNECTs it has finished, from its access log: `CONNECT 127.0.0.1:P`
    /// with squid's result (`TCP_TUNNEL/200`).
    pub fn connects(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let at = fields.iter().position(|f| *f == "CONNECT")?;
                Some(format!(
                    "{} CONNECT {}",
                    fields.get(3)?,
                    fields.get(at + 1)?
                ))
            })
            .collect()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn squid_conf(port: u16, dir: &Path, connect_port: u16) -> String {
    let d = dir.display();
    format!(
        "http_port 127.0.0.1:{port}\n\
         pid_filename {d}/squid.pid\n\
         cache_log {d}/cache.log\n\
         access_log stdio:{d}/access.log\n\
         cache_store_log none\n\
         coredump_dir {d}\n\
         cache deny all\n\
         cache_mem 8 MB\n\
         pinger_enable off\n\
         shutdown_lifetime 0 seconds\n\
         acl edge port {connect_port}\n\
         acl CONNECT method CONNECT\n\
         http_access allow CONNECT edge\n\
         http_access deny all\n"
    )
}

/// How to start a proxy program that cannot be given port 0: the port is
/// picked here and written into its config, and taken again if another
/// process got it first.
struct Launch {
    program: PathBuf,
    args: Vec<std::ffi::OsString>,
    /// Where the config goes.
    conf: PathBuf,
    /// The log that says when it is ready.
    log: PathBuf,
    /// What the log or stderr says once it listens.
    ready: &'static str,
    /// What they say when the port was taken.
    taken: &'static str,
}

impl Launch {
    /// Starts it with `config(port)` on a free port; its stderr goes to `dir`.
    fn start(&self, dir: &Path, config: impl Fn(u16) -> String) -> (Child, SocketAddr) {
        let errors = dir.join("stderr");
        let said = || {
            let err = std::fs::read_to_string(&errors).unwrap_or_default();
            err + &std::fs::read_to_string(&self.log).unwrap_or_default()
        };
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(&self.conf, config(port)).unwrap();
            let _ = std::fs::remove_file(&self.log);
            let mut cmd = Command::new(&self.program);
            cmd.args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&errors).unwrap());
            die_with_parent(&mut cmd);
            let mut child = cmd.spawn().unwrap();
            let outcome = poll_until(STARTUP, || {
                if said().contains(self.ready) {
                    return Some(true);
                }
                child.try_wait().unwrap().map(|_| false)
            });
            let program = self.program.display();
            match outcome {
                Some(true) => return (child, SocketAddr::from(([127, 0, 0, 1], port))),
                Some(false) if said().contains(self.taken) => last = said(),
                Some(false) => panic!("{program} exited: {}", said()),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{program} did not listen within {STARTUP:?}: {}", said());
                }
            }
        }
        panic!(
            "{} could not get a port on 127.0.0.1 in 5 tries: {last}",
            self.program.display()
        );
    }
}

/// A port that was free on 127.0.0.1 a moment ago: tinyproxy and squid cannot
/// be given port 0 and report the one they got, so the caller retries if it
/// is taken.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the stub proxy does with each connection, once it has read the
/// request's header.
#[derive(Clone, Debug)]
pub enum Script {
    /// Writes these bytes in one write, then waits for the client to close.
    Answer(Vec<u8>),
    /// Answers `200 Connection established` (one byte per write when
    /// `byte_by_byte`) and relays to the CONNECT target, or to `to` instead
    /// (an impostor, as a TLS-inspecting proxy is). With `require`, answers
    /// 407 unless `Proxy-Authorization` is exactly that.
    Tunnel {
        byte_by_byte: bool,
        to: Option<SocketAddr>,
        require: Option<String>,
    },
    /// Says nothing, and holds the connection until the client closes it.
    Silent,
    /// Closes the connection.
    Close,
    /// A status line, then header lines without end.
    EndlessHeader,
}

/// The stub proxy: a listener on 127.0.0.1 following a [`Script`], recording
/// each request's header.
pub struct StubProxy {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    accepted: Arc<AtomicUsize>,
}

impl StubProxy {
    pub fn start(script: Script) -> StubProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (seen, count) = (Arc::clone(&requests), Arc::clone(&accepted));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let (script, seen) = (script.clone(), Arc::clone(&seen));
                thread::spawn(move || {
                    // A client that gives up mid-script is the test's business.
                    let _ = serve(stream, &script, &seen);
                });
            }
        });
        StubProxy {
            addr,
            requests,
            accepted,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The header of every request so far, lines joined with `\n`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, script: &Script, seen: &Mutex<Vec<String>>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    // The client must wait for the answer: anything it sent early shows here.
    if !reader.buffer().is_empty() {
        lines.push(format!(
            "!! {} bytes before the answer",
            reader.buffer().len()
        ));
    }
    seen.lock().unwrap().push(lines.join("\n"));
    let mut stream = stream;
    match script {
        Script::Answer(bytes) => {
            stream.write_all(bytes)?;
            drain(&mut stream)
        }
        Script::Silent => drain(&mut stream),
        Script::Close => Ok(()),
        Script::EndlessHeader => {
            stream.write_all(b"HTTP/1.1 200 Connection established\r\n")?;
            loop {
                stream
                    .write_all(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")?;
            }
        }
        Script::Tunnel {
            byte_by_byte,
            to,
            require,
        } => {
            if let Some(expected) = require {
                let header = format!("Proxy-Authorization: {expected}");
                if !lines.contains(&header) {
                    stream.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                          Proxy-Authenticate: Basic realm=\"stub\"\r\nContent-Length: 0\r\n\r\n",
                    )?;
                    return drain(&mut stream);
                }
            }
            let target = match to {
                Some(addr) => *addr,
                None => connect_target(&lines[0]),
            };
            let upstream = TcpStream::connect(target)?;
            let answer = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 stub\r\n\r\n";
            if *byte_by_byte {
                for byte in answer {
                    stream.write_all(&[*byte])?;
                }
            } else {
                stream.write_all(answer)?;
            }
            relay(stream, upstream)
        }
    }
}

/// The address a `CONNECT ADDR HTTP/1.1` line names: loopback only, since
/// these tests send nothing anywhere else, and never a name to resolve.
fn connect_target(request_line: &str) -> SocketAddr {
    let authority = request_line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .unwrap_or_else(|| panic!("not a CONNECT request: {request_line:?}"));
    let addr: SocketAddr = authority
        .parse()
        .unwrap_or_else(|_| panic!("the stub only connects to IP:PORT, not {authority:?}"));
    assert!(addr.ip().is_loopback(), "CONNECT to {addr}, off loopback");
    addr
}

/// Reads until the client closes, so that our close is a FIN after theirs.
fn drain(stream: &mut TcpStream) -> io::Result<()> {
    io::copy(stream, &mut io::sink())?;
    Ok(())
}

/// Copies both ways, passing each half-close on.
fn relay(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut client_read, mut upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
