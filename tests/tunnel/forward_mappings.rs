//! `vers-tunnel forward` with several mappings in one process, for a working
//! day: real clients (psql, curl, socat) on three ports at once, mappings read
//! `--from` a file, every mapping checked before any listens, one `-v` line
//! per finished connection, a stderr that is full or gone, and an edge that
//! restarts under open sessions.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::forward::{connect_to, read_all, reset, Forwarder};
use crate::util::front::Front;
use crate::util::http::{curl, HttpServer};
use crate::util::postgres::Postgres;
use crate::util::{self, backend, bare_tunnel, Behaviour, EdgeBuilder, Mode, Prng, World, MIB};

const DB: &str = "db.vm.vers.sh";
const WEB: &str = "web.vm.vers.sh";
const ECHO: &str = "echo.vm.vers.sh";

/// `vers-tunnel forward --cacert CA --connect-to ::EDGE`: every mapping
/// reaches the test edge at `edge`, whatever its host and port.
fn forward_to(w: &World, edge: SocketAddr) -> Command {
    let mut cmd = bare_tunnel();
    cmd.arg("forward")
        .arg("--cacert")
        .arg(&w.ca.pem_path)
        .arg("--connect-to")
        .arg(format!("::{}:{}", edge.ip(), edge.port()));
    cmd
}

/// `socat` sending `input` to `port`, its half-close passed on, and what came back.
fn socat(port: u16, input: &[u8]) -> Vec<u8> {
    let run = util::run(
        Command::new("socat")
            .args(["-t", "30", "-"])
            .arg(format!("TCP:127.0.0.1:{port}")),
        input,
    );
    assert_eq!(run.code(), 0, "socat: {}", run.stderr);
    run.stdout
}

/// The finished-connection lines (`-v`) of the mapping named `mapping`.
fn finished_on(fwd: &Forwarder, mapping: &str) -> Vec<String> {
    fwd.stderr()
        .into_iter()
        .filter(|l| l.contains(&format!(" on {mapping} ")) && l.contains(" bytes sent, "))
        .collect()
}

#[cfg(target_os = "linux")] // psql, curl and socat are Debian packages of the suite
#[test]
fn psql_curl_and_socat_use_three_mappings_of_one_forwarder_at_once() {
    let w = World::new();
    let pg = Postgres::start(w.dir.path());
    let root = w.dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    let page = Prng::bytes(21, MIB + 3);
    std::fs::write(root.join("page.bin"), &page).unwrap();
    let http = HttpServer::start(&root);
    // One edge routes each VM's name to its service, as the Vers edge does.
    let edge = EdgeBuilder::new(w.ca.leaf(&[DB, WEB, ECHO]))
        .route(DB, pg.addr)
        .route(WEB, http.addr)
        .route(ECHO, backend::start(Behaviour::Echo))
        .start();
    let mut cmd = forward_to(&w, edge.addr());
    cmd.args(["-v", &format!("0:{DB}:5432"), &format!("0:{WEB}:80")]);
    cmd.arg(format!("0:{ECHO}:7"));
    let fwd = Forwarder::start_mappings(&mut cmd, 3);
    let ports: Vec<u16> = fwd.mappings.iter().map(|m| m[0].port()).collect();
    let listening: Vec<String> = fwd
        .stderr()
        .into_iter()
        .filter(|l| l.contains("listening on"))
        .collect();
    for (line, target) in listening.iter().zip([DB, WEB, ECHO]) {
        assert!(
            line.contains(&format!(", forwarding to {target}:")),
            "{line}"
        );
    }
    // All three at once: psql's session is open while curl and socat run.
    let mut psql = pg
        .psql(fwd.mappings[0][0])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sql = psql.stdin.take().unwrap();
    sql.write_all(b"CREATE TABLE vms (id int PRIMARY KEY, name text);\n")
        .unwrap();
    assert_eq!(curl(ports[1], "page.bin"), page);
    assert_eq!(socat(ports[2], b"ping\n"), b"ping\n");
    sql.write_all(b"INSERT INTO vms VALUES (1, 'alpha');\nSELECT name FROM vms;\n")
        .unwrap();
    drop(sql);
    let out = util::read_to_end_within(psql.stdout.as_mut().unwrap(), util::HANG);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "CREATE TABLE\nINSERT 0 1\nalpha\n"
    );
    assert!(psql.wait().unwrap().success());
    assert_eq!(edge.sni_seen().len(), 3, "{:?}", edge.sni_seen());
    // Each mapping's connection ended with one line naming it.
    for (port, target) in ports.iter().zip([
        format!("{DB}:5432"),
        format!("{WEB}:80"),
        format!("{ECHO}:7"),
    ]) {
        let mapping = format!("{port}:{target}");
        util::wait_until(util::HANG, &format!("a line for {mapping}"), || {
            finished_on(&fwd, &mapping).len() == 1
        });
        let line = &finished_on(&fwd, &mapping)[0];
        assert!(line.contains("connection from 127.0.0.1:"), "{line}");
        assert!(line.contains(" ended cleanly after "), "{line}");
    }
}

#[cfg(target_os = "linux")] // curl and socat
#[test]
fn mappings_come_from_a_file_with_comments_and_blank_lines_and_from_the_words_too() {
    let w = World::new();
    let root = w.dir.path().join("www");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from the VM\n").unwrap();
    let http = HttpServer::start(&root);
    let edge = EdgeBuilder::new(w.ca.leaf(&[WEB, ECHO]))
        .route(WEB, http.addr)
        .route(ECHO, backend::start(Behaviour::Echo))
        .start();
    let list = w.dir.path().join("mappings");
    std::fs::write(
        &list,
        format!(
            "# the web UI\n0:{WEB}:80\n\n   \n127.0.0.1:0:{ECHO}:7   # echo, IPv4 only\n[::1]:0:{ECHO}:7\n"
        ),
    )
    .unwrap();
    let mut cmd = forward_to(&w, edge.addr());
    cmd.arg("--from").arg(&list).arg(format!("0:{ECHO}:7"));
    let fwd = Forwarder::start_mappings(&mut cmd, 4);
    // The words' mapping first, then the file's, in order.
    let m = &fwd.mappings;
    assert_eq!(m[0].len(), 2, "{m:?}");
    assert_eq!(m[1].len(), 2, "{m:?}");
    assert_eq!(
        m[2],
        vec![SocketAddr::from(([127, 0, 0, 1], m[2][0].port()))]
    );
    assert_eq!(m[3].len(), 1);
    assert!(
        m[3][0].ip().is_ipv6() && m[3][0].ip().is_loopback(),
        "{m:?}"
    );
    assert_eq!(curl(m[1][0].port(), "hello.txt"), b"hello from the VM\n");
    for port in [m[0][0].port(), m[2][0].port()] {
        assert_eq!(socat(port, b"through the file\n"), b"through the file\n");
    }
    let mut s = connect_to(m[3][0]);
    s.write_all(b"v6").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s).0, b"v6");
    assert_eq!(fwd.stderr().len(), 4, "{:?}", fwd.stderr());
}

#[test]
fn a_mapping_that_cannot_listen_is_named_and_none_listens() {
    let w = World::new();
    let edge = w.edge(ECHO, Behaviour::Echo);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut cmd = forward_to(&w, edge.addr());
    cmd.args([format!("0:{ECHO}:7"), format!("{port}:{WEB}:80")]);
    let run = util::run(&mut cmd, b"");
    run.assert_failure(
        2,
        &[&format!(
            "forward {port}:{WEB}:80: cannot listen on 127.0.0.1:{port}"
        )],
    );
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
}

#[test]
fn a_bad_line_in_the_mappings_file_is_named_by_its_number() {
    let w = World::new();
    let list = w.dir.path().join("mappings");
    std::fs::write(&list, format!("# ok\n0:{WEB}:80\n0:{WEB}\n")).unwrap();
    let run = util::run(bare_tunnel().arg("forward").arg("--from").arg(&list), b"");
    run.assert_failure(2, &[&format!("mappings line 3: '0:{WEB}': ")]);
    let missing = w.dir.path().join("nothing-here");
    let run = util::run(
        bare_tunnel().arg("forward").arg("--from").arg(&missing),
        b"",
    );
    run.assert_failure(2, &["cannot read --from file", "no such file"]);
    let run = util::run(bare_tunnel().arg("forward"), b"");
    run.assert_failure(2, &["no mapping given"]);
}

#[test]
fn each_finished_connection_gets_one_line_saying_how_it_ended() {
    const CLEAN: &str = "clean.vm.vers.sh";
    const CUT: &str = "cut.vm.vers.sh";
    const GONE: &str = "gone.vm.vers.sh";
    const SILENT: &str = "silent.vm.vers.sh";
    let w = World::new();
    let clean = w.edge(CLEAN, Behaviour::Echo);
    let cut = EdgeBuilder::new(w.ca.leaf(&[CUT]))
        .backend(backend::start(Behaviour::Download {
            len: 4 * MIB as u64,
            seed: 3,
        }))
        .mode(Mode::ResetAfter(100_000))
        .start();
    let silent = w
        .edge_builder(SILENT, Behaviour::Echo)
        .mode(Mode::Silent)
        .start();
    let closed = crate::util::net::ClosedPort::new();
    let mut cmd = bare_tunnel();
    cmd.arg("forward")
        .arg("-v")
        .arg("--cacert")
        .arg(&w.ca.pem_path);
    for (host, addr) in [
        (CLEAN, clean.addr()),
        (CUT, cut.addr()),
        (GONE, closed.addr),
        (SILENT, silent.addr()),
    ] {
        cmd.arg("--connect-to").arg(util::connect_to(host, addr));
        cmd.arg(format!("0:{host}:443"));
    }
    let fwd = Forwarder::start_mappings(&mut cmd, 4);
    let port = |i: usize| fwd.mappings[i][0].port();
    let line_for = |i: usize, host: &str, n: usize| {
        let mapping = format!("{}:{host}:443", port(i));
        util::wait_until(util::HANG, &format!("line {n} of {mapping}"), || {
            finished_on(&fwd, &mapping).len() >= n
        });
        finished_on(&fwd, &mapping)[n - 1].clone()
    };
    // Clean: 4 bytes each way, half-closed.
    let mut s = connect_to(fwd.mappings[0][0]);
    s.write_all(b"ping").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut s).0, b"ping");
    let from = s.local_addr().unwrap();
    let line = line_for(0, CLEAN, 1);
    assert!(line.starts_with("vers-tunnel: ["), "{line}");
    let said = line.split("] ").nth(1).unwrap();
    let (start, end) = said.split_once(" after ").unwrap();
    assert_eq!(
        start,
        format!(
            "connection from {from} on {}:{CLEAN}:443 ended cleanly",
            port(0)
        )
    );
    assert!(end.ends_with("s, 4 bytes sent, 4 received"), "{line}");
    // Reset by the client, after its echo.
    let mut s = connect_to(fwd.mappings[0][0]);
    s.write_all(b"pong").unwrap();
    let mut got = [0; 4];
    s.read_exact(&mut got).unwrap();
    reset(s);
    let line = line_for(0, CLEAN, 2);
    assert!(line.contains(" was reset by the client after "), "{line}");
    assert!(line.ends_with(", 4 bytes sent, 4 received"), "{line}");
    // An unclean end of the edge: a warning, with why.
    let mut s = connect_to(fwd.mappings[1][0]);
    let (got, err) = read_all(&mut s);
    assert!(
        err.is_some() && got.len() <= 100_000,
        "{err:?}, {}",
        got.len()
    );
    let line = line_for(1, CUT, 1);
    assert!(line.starts_with("vers-tunnel: connection from "), "{line}");
    // "... ended uncleanly after 1.3ms, 0 bytes sent, N received: connection
    // to cut.vm.vers.sh ended uncleanly after N bytes received: ..."
    let received = line
        .split(" bytes sent, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(line.contains(" ended uncleanly after "), "{line}");
    let why = format!(" received: connection to {CUT} ended uncleanly after {received} bytes");
    assert!(line.contains(&why), "{line}");
    // A failed setup.
    let mut s = connect_to(fwd.mappings[2][0]);
    let (_, err) = read_all(&mut s);
    assert!(err.is_some());
    let line = line_for(2, GONE, 1);
    assert!(
        line.contains(" failed during setup after ") && line.contains("connection refused"),
        "{line}"
    );
    assert!(
        line.contains(", 0 bytes sent, 0 received: could not connect"),
        "{line}"
    );
    // Abandoned while the edge does not answer.
    let s = connect_to(fwd.mappings[3][0]);
    util::wait_until(util::HANG, "the silent edge to be reached", || {
        silent.accepted() == 1
    });
    reset(s);
    let line = line_for(3, SILENT, 1);
    assert!(
        line.contains(" was abandoned by the client before the connection to the edge was ready"),
        "{line}"
    );
}

/// The ports process `pid` listens on, as `ss` sees them.
#[cfg(target_os = "linux")]
fn listening_ports(pid: u32) -> Vec<SocketAddr> {
    let ss = Command::new("ss")
        .args(["-Hltnp"])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3)?.parse().ok())
        .collect()
}

#[cfg(target_os = "linux")] // /dev/full and ss
#[test]
fn a_full_or_closed_stderr_never_stops_the_forwarder() {
    let w = World::new();
    let edge = w.edge(ECHO, Behaviour::Echo);
    let closed = crate::util::net::ClosedPort::new();
    for stderr in ["/dev/full", "a pipe nobody reads", "closed (2>&-)"] {
        let mut cmd = forward_to(&w, edge.addr());
        // -vv: a line at every step, and failures too, all lost.
        cmd.args(["-vv", &format!("0:{ECHO}:7")]);
        cmd.arg("--connect-to")
            .arg(util::connect_to(WEB, closed.addr))
            .arg(format!("0:{WEB}:80"));
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        let mut child = match stderr {
            "/dev/full" => {
                cmd.stderr(File::options().write(true).open("/dev/full").unwrap());
                cmd.spawn().unwrap()
            }
            "a pipe nobody reads" => {
                cmd.stderr(Stdio::piped());
                let mut child = cmd.spawn().unwrap();
                drop(child.stderr.take()); // Its writes fail with EPIPE.
                child
            }
            _ => {
                use std::os::unix::process::CommandExt;
                // SAFETY: close(2) is async-signal-safe, as pre_exec requires.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::close(2);
                        Ok(())
                    });
                }
                cmd.spawn().unwrap()
            }
        };
        let pid = child.id();
        let mut ports = Vec::new();
        util::poll_until(util::HANG, || {
            ports = listening_ports(pid);
            let exited = child.try_wait().unwrap();
            assert!(exited.is_none(), "{stderr}: it exited {exited:?}");
            (ports.len() == 4).then_some(())
        })
        .unwrap_or_else(|| panic!("{stderr}: listening on {ports:?}"));
        ports.sort_by_key(|a| (a.port(), a.is_ipv6()));
        for round in 0..3 {
            for addr in &ports {
                let mut s = connect_to(*addr);
                let sent = format!("round {round}");
                let _ = s.write_all(sent.as_bytes());
                let _ = s.shutdown(Shutdown::Write);
                let (got, err) = read_all(&mut s);
                // The echo whole, or the refused edge's reset: never silence, never a hang.
                assert!(
                    got == sent.as_bytes() && err.is_none() || got.is_empty() && err.is_some(),
                    "{stderr}, {addr}: {got:?} {err:?}"
                );
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "{stderr}: it stopped");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn an_edge_restart_resets_open_sessions_and_the_next_connection_works_at_once() {
    let w = World::new();
    let edge = w.edge(ECHO, Behaviour::Echo);
    let mut front = Front::start("127.0.0.1:0".parse().unwrap(), edge.addr());
    let mut cmd = forward_to(&w, front.addr());
    cmd.arg(format!("0:{ECHO}:7"));
    let fwd = Forwarder::start(&mut cmd);
    let mut open: Vec<TcpStream> = (0..3).map(|_| fwd.connect()).collect();
    for s in &mut open {
        s.write_all(b"before").unwrap();
        let mut got = [0; 6];
        s.read_exact(&mut got).unwrap();
    }
    front.restart(Duration::ZERO);
    for s in &mut open {
        // Each ended as the unclean end it is: a reset, never an EOF.
        let (got, err) = read_all(s);
        assert!(got.is_empty(), "{got:?}");
        assert!(
            err.as_ref()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
    }
    util::wait_until(util::HANG, "three unclean lines", || {
        fwd.lines_with(" ended uncleanly after ") == 3
    });
    // At once: no back-off holds the next one.
    let mut s = fwd.connect();
    s.write_all(b"after").unwrap();
    let mut got = [0; 5];
    util::read_exact_within(&mut s, &mut got, util::slack(Duration::from_secs(2)));
    assert_eq!(&got, b"after");
}

#[cfg(target_os = "linux")] // ss
#[test]
fn every_mapping_s_connection_to_the_edge_has_keepalive_so_a_dead_edge_is_noticed() {
    // A session whose edge vanished without a reset (a laptop asleep, a VM
    // gone) would otherwise be kept for Linux's default two hours.
    let w = World::new();
    let edge = EdgeBuilder::new(w.ca.leaf(&[ECHO, WEB]))
        .backend(backend::start(Behaviour::Echo))
        .start();
    let mut cmd = forward_to(&w, edge.addr());
    cmd.args([format!("0:{ECHO}:7"), format!("0:{WEB}:80")]);
    let fwd = Forwarder::start_mappings(&mut cmd, 2);
    let open: Vec<TcpStream> = fwd
        .mappings
        .iter()
        .map(|m| {
            let mut s = connect_to(m[0]);
            s.write_all(b"ping").unwrap();
            let mut got = [0; 4];
            s.read_exact(&mut got).unwrap();
            s
        })
        .collect();
    let filter = format!("( dst {} )", edge.addr());
    let ss = util::run(
        Command::new("ss").args(["-tnoH", "state", "established", &filter]),
        b"",
    );
    let sockets = String::from_utf8_lossy(&ss.stdout).into_owned();
    assert_eq!(sockets.lines().count(), open.len(), "{sockets}");
    for socket in sockets.lines() {
        // "timer:(keepalive,59sec,0)": the first probe within a minute idle.
        let timer = socket.split("timer:(keepalive,").nth(1);
        assert!(
            timer.is_some_and(|t| t.starts_with("1min,")
                || t.split(',').next().is_some_and(|d| d.ends_with("sec"))),
            "keepalive off or late: {socket}"
        );
    }
}
