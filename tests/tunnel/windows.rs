//! The Windows build, `vers-tunnel.exe` (release, built here with mingw), run
//! under Wine 8 against the test edge as a Windows user runs it: bytes both
//! ways through its pipes, stdin's end passed on while the answer still
//! comes, the statuses of an untrusted certificate and a refused port, Linux's
//! ssh and scp with the .exe as their ProxyCommand (a real client driving it),
//! `forward` serving curl, `doctor`, Ctrl-C, ssh-config's Windows rules, and
//! the unit tests built for Windows. One Wine prefix serves them all
//! (`util::exe`). What Wine cannot show, docs/windows.md says.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::doctor::support::{doctor_run_by, Diagnosis, Service};
use crate::util::common::cargo::build_unit_tests_for;
use crate::util::common::wine::{shim_beside, TARGET, WINE64};
use crate::util::exe::{self, proxy_program};
use crate::util::forward::{command_run_by, Forwarder};
use crate::util::http::Site;
use crate::util::net::ClosedPort;
use crate::util::session::Session;
use crate::util::{self, Behaviour, Ca, Exit, Piped, Prng, World, HOST, MIB};

/// What each transfer moves: more than every buffer on the way holds.
const SIZE: usize = 8 * MIB;

/// Runs `cmd` (the .exe under Wine) as [`util::run`] does, without the lines
/// Wine's own client writes about its connection to wineserver (`wine client
/// error:...`, seen when the shared server stops as another test's process
/// exits): they are Wine's, not the binary's, and Windows has no such line.
fn run_exe(cmd: &mut std::process::Command, input: &[u8]) -> util::common::process::Run {
    let mut out = util::run(cmd, input);
    out.stderr = out
        .stderr
        .lines()
        .filter(|line| !line.starts_with("wine client error:"))
        .map(|line| format!("{line}\n"))
        .collect();
    out
}

#[test]
fn the_exe_relays_8_mib_both_ways_through_its_pipes_exactly() {
    let wine = exe::wine();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let input = Prng::bytes(191, SIZE);
    let run = run_exe(
        &mut w.tunnel_run_by(exe::tunnel(&wine), edge.addr(), HOST),
        &input,
    );
    run.assert_clean();
    assert_eq!(run.stdout.len(), input.len(), "stdout's length");
    assert_eq!(util::sha256(&run.stdout), util::sha256(&input));
    assert_eq!(edge.sni_seen(), vec![Some(HOST.to_string())]);
}

/// The service answers only once it has seen stdin's end: the .exe passes the
/// EOF on (close_notify) and keeps relaying until the answer is in.
#[test]
fn stdin_eof_reaches_the_service_and_its_answer_comes_back_whole() {
    let wine = exe::wine();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::DigestAfterEof);
    let input = Prng::bytes(192, SIZE);
    let mut cmd = w.tunnel_run_by(exe::tunnel(&wine), edge.addr(), HOST);
    let run = run_exe(cmd.arg("-v"), &input);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{} {SIZE}\n", util::sha256(&input))
    );
    assert!(
        run.stderr.contains("both directions closed cleanly"),
        "{}",
        run.stderr
    );
}

/// A reader that stops near the end while the server finishes: the .exe has
/// read the server's end and holds the last bytes for a full stdout, and
/// must wait for its stdout thread to write them before exiting. stdin ends
/// at once: the download still comes.
#[test]
fn a_reader_stalling_at_the_end_still_gets_every_byte() {
    let wine = exe::wine();
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: SIZE as u64,
            seed: 195,
        },
    );
    let Piped {
        child,
        stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel_run_by(exe::tunnel(&wine), edge.addr(), HOST));
    drop(stdin);
    let mut got = vec![0; SIZE - STALL_BEFORE_LAST];
    util::read_exact_within(&mut stdout, &mut got, util::HANG);
    // Time for the rest to reach the .exe, not a wait for anything: the
    // test passes however long it takes, but with less, a binary that exits
    // without waiting for its stdout could pass too.
    thread::sleep(Duration::from_millis(500));
    got.extend(util::read_to_end_within(&mut stdout, util::HANG));
    let status = util::wait(child, util::HANG);
    let said = util::stderr_text(stderr);
    assert_eq!(status.code(), Some(0), "{said}");
    assert_eq!(said, "");
    assert_eq!(got.len(), SIZE, "stdout's length");
    assert_eq!(util::sha256(&got), util::sha256(&Prng::bytes(195, SIZE)));
}

/// How much of the download is left when the reader stalls: what the pipe
/// (64 KiB under Wine) and the .exe's stdout queue (64 KiB, the relay's
/// budget) hold, so that the .exe reads the server's end during the stall
/// with the queue full. (With 64 KiB left the queue is empty by then, and a
/// binary that exits without waiting for it loses nothing; with 128 KiB it
/// loses the queue.)
const STALL_BEFORE_LAST: usize = 128 * 1024;

#[test]
fn an_untrusted_certificate_is_refused_with_status_4() {
    let wine = exe::wine();
    let w = World::new();
    let stranger = Ca::new(w.dir.path(), "stranger-ca");
    let edge = util::EdgeBuilder::new(stranger.leaf(&[HOST]))
        .backend(util::backend::start(Behaviour::Echo))
        .start();
    let run = run_exe(
        &mut w.tunnel_run_by(exe::tunnel(&wine), edge.addr(), HOST),
        b"secret\n",
    );
    run.assert_failure(4, &[HOST, "unknown issuer", "--cacert"]);
    assert!(edge.sni_seen().is_empty(), "no session may be established");
}

#[test]
fn a_refused_port_is_status_3_naming_the_address() {
    let wine = exe::wine();
    let closed = ClosedPort::new();
    let target = closed.addr.to_string();
    let run = run_exe(exe::tunnel(&wine).arg(&target), b"");
    run.assert_failure(3, &[&format!("{target}: connection refused")]);
}

/// Linux's ssh and scp run `wine64 vers-tunnel.exe ... %h` as their
/// ProxyCommand, to a real sshd behind the edge: a real client drives the
/// Windows binary's pipes, both ways, until ssh closes them.
#[test]
fn ssh_and_scp_through_the_exe_as_proxy_command() {
    let wine = exe::wine();
    let s = Session::run_by(&proxy_program());
    let input = Prng::bytes(193, SIZE);
    let run = run_exe(
        wine.env(&mut s.ssh("echo \"hello from $(whoami)\"; sha256sum | cut -d' ' -f1")),
        &input,
    );
    s.assert_quiet_success(&run, "ssh through vers-tunnel.exe");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!(
            "hello from {}\n{}\n",
            util::sshd::login_user(),
            util::sha256(&input)
        )
    );

    let (local, remote, back) = (
        s.path("local.bin"),
        s.path("remote.bin"),
        s.path("back.bin"),
    );
    fs::write(&local, &input).unwrap();
    let up = run_exe(
        wine.env(&mut s.client.command("scp"))
            .arg(&local)
            .arg(s.remote(&remote)),
        b"",
    );
    s.assert_quiet_success(&up, "scp up through vers-tunnel.exe");
    let down = run_exe(
        wine.env(&mut s.client.command("scp"))
            .arg(s.remote(&remote))
            .arg(&back),
        b"",
    );
    s.assert_quiet_success(&down, "scp down through vers-tunnel.exe");
    assert_eq!(
        util::sha256(&fs::read(&back).unwrap()),
        util::sha256(&input)
    );
    eprintln!(
        "scp 8 MiB through vers-tunnel.exe under Wine: up {:.2?}, down {:.2?}",
        up.elapsed, down.elapsed
    );
}

#[test]
fn forward_serves_curl_byte_for_byte() {
    let wine = exe::wine();
    let w = World::new();
    let site = Site::start(w.dir.path());
    let edge = util::EdgeBuilder::new(w.ca.leaf(&[HOST]))
        .backend(site.server.addr)
        .start();
    let mut cmd = command_run_by(exe::tunnel(&wine), edge.addr(), "0");
    let fwd = Forwarder::start(cmd.arg("--cacert").arg(&w.ca.pem_path));
    site.assert_fetched_through(fwd.addr().port());
    // Only the "listening on" line: nothing about the connections.
    assert_eq!(fwd.stderr().len(), 1, "{:?}", fwd.stderr());

    // No open-files limit on Windows: the default is what a fully raised one
    // (65,536) gives on Linux, less 14 kept for the process, 3 descriptors a
    // connection (the accepted socket and two attempts to the edge).
    let mut cmd = command_run_by(exe::tunnel(&wine), edge.addr(), "0");
    let verbose = Forwarder::start(cmd.arg("--cacert").arg(&w.ca.pem_path).arg("-vv"));
    let said = verbose.wait_for_line("connections at once", util::HANG);
    assert!(
        said.ends_with("at most 21840 connections at once"),
        "{said}"
    );
}

/// Wine delivers SIGINT to a Windows program as the console's Ctrl-C event
/// (CTRL_C_EVENT, to the handlers the program set): the session ends at
/// once, quietly, with status 130 (128 + SIGINT), as on Linux.
#[test]
fn ctrl_c_mid_session_ends_it_at_once_with_status_130() {
    let _timed = util::timed();
    let wine = exe::wine();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel_run_by(exe::tunnel(&wine), edge.addr(), HOST));
    stdin.write_all(b"ping\n").unwrap();
    let mut pong = [0; 5];
    util::read_exact_within(&mut stdout, &mut pong, util::HANG);
    assert_eq!(&pong, b"ping\n");

    let pid = child.id();
    let exit = Exit::watch(child);
    let sent = Instant::now();
    util::signal(pid, libc::SIGINT);
    let status = exit.wait(util::slack(Duration::from_secs(10)), "of Ctrl-C");
    let took = sent.elapsed();
    let said = util::stderr_text(stderr);
    assert_eq!(status.code(), Some(130), "{said}");
    let bound = util::slack(Duration::from_secs(1));
    assert!(took < bound, "took {took:?}, more than {bound:?}");
    assert_eq!(said, "", "Ctrl-C is quiet");
}

/// The doctor, as a Windows user runs it when ssh does not connect: every
/// step and the service's banner when all is well; status 6 when nothing on
/// the VM accepted the connection.
#[test]
fn doctor_reports_a_working_route_and_a_missing_service() {
    let wine = exe::wine();
    let w = World::new();
    let service = Service::start(b"SSH-2.0-OpenSSH_9.6 pretend\r\n");
    let closed = ClosedPort::new();
    for (backend, code, words) in [
        (
            service.addr,
            0,
            &[
                "x.vm.vers.sh:443 works",
                "SSH server answers (SSH-2.0-OpenSSH_9.6",
            ][..],
        ),
        (
            closed.addr,
            6,
            &["nothing on the VM accepted the connection on port 443"],
        ),
    ] {
        let edge = util::EdgeBuilder::new(w.ca.leaf(&[HOST]))
            .backend(backend)
            .start();
        let d = Diagnosis::of(|| {
            let mut cmd = doctor_run_by(exe::tunnel(&wine), edge.addr(), 443);
            cmd.arg("--cacert").arg(&w.ca.pem_path);
            cmd
        });
        d.assert_verdict(code, words);
        assert_eq!(d.steps(), ["config", "dns", "tcp", "tls", "service"]);
    }
}

/// `C:\...` as Wine names a Linux path: the drive `Z:` is `/`.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// The block names the .exe by its full Windows path in double quotes, which
/// ssh keeps and sh (Git for Windows' ssh runs the line with `sh -c`) reads
/// back intact, folder with a space and backslashes included; `--multiplex`
/// is refused.
#[test]
fn ssh_config_names_the_exe_by_its_windows_path_in_double_quotes() {
    let wine = exe::wine();
    let w = World::new();
    let out = run_exe(exe::tunnel(&wine).arg("ssh-config"), b"");
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let block = String::from_utf8_lossy(&out.stdout).into_owned();
    let quoted = format!("\"{}\"", windows_path(exe::exe()));
    assert!(quoted.contains(r"\Program Files\vers-tunnel\vers-tunnel.exe"));
    assert_eq!(
        block.lines().skip(1).collect::<Vec<_>>(),
        [
            "Host *.vm.vers.sh",
            "    User root",
            &format!("    ProxyCommand {quoted} %h"),
            "    ServerAliveInterval 30",
        ]
    );

    let config = w.dir.path().join("config");
    fs::write(&config, &block).unwrap();
    let resolved = run_exe(
        util::clean_env(&mut Command::new("ssh"))
            .arg("-G")
            .arg("-F")
            .arg(&config)
            .arg("x.vm.vers.sh"),
        b"",
    );
    assert_eq!(resolved.code(), 0, "ssh -G: {}", resolved.stderr);
    let line = String::from_utf8_lossy(&resolved.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("proxycommand ").map(str::to_string))
        .unwrap_or_else(|| panic!("no proxycommand in ssh -G's output"));
    assert_eq!(line, format!("{quoted} %h"));
    // As Git for Windows' ssh runs it, %h expanded (here to an argument that
    // needs no edge); wine64 in front, since Linux runs no .exe itself.
    let sh = run_exe(
        wine.env(&mut Command::new("sh"))
            .arg("-c")
            .arg(format!("exec {WINE64} {}", line.replace("%h", "--version"))),
        b"",
    );
    assert_eq!(sh.code(), 0, "{}", sh.stderr);
    let version = String::from_utf8_lossy(&sh.stdout);
    assert!(
        version.starts_with(&format!("vers-tunnel {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );

    let refused = run_exe(exe::tunnel(&wine).args(["ssh-config", "--multiplex"]), b"");
    refused.assert_failure(
        2,
        &["--multiplex is not available on Windows: Windows' OpenSSH has no connection sharing"],
    );
}

/// `ssh-config --install` edits `%USERPROFILE%\.ssh\config` (Wine's profile
/// folder in the prefix), creating the folder; every byte of the user's own
/// lines is kept, CRLF line ends included, and `--uninstall` gives them back.
#[test]
fn ssh_config_install_edits_the_config_in_the_windows_profile() {
    let wine = exe::wine();
    let profile = wine.windows_var("USERPROFILE");
    let ssh_dir = wine.unix_path(&format!(r"{profile}\.ssh"));
    let config = ssh_dir.join("config");
    // From an earlier run that stopped half-way.
    let _ = fs::remove_dir_all(&ssh_dir);
    let run = |action: &str| {
        let out = run_exe(exe::tunnel(&wine).args(["ssh-config", action]), b"");
        assert_eq!(out.code(), 0, "ssh-config {action}: {}", out.stderr);
        out.stderr
    };

    let said = run("--install");
    assert!(
        said.contains(&format!("vers-tunnel: created {profile}\\.ssh\n"))
            && said.contains(&format!(
                "vers-tunnel: added the vers-tunnel block at the top of {profile}\\.ssh\\config"
            )),
        "paths as Windows writes them: {said}"
    );
    let fresh = fs::read_to_string(&config).unwrap();
    let quoted = format!("\"{}\"", windows_path(exe::exe()));
    assert!(
        fresh.contains(&format!("\n    ProxyCommand {quoted} %h\n")),
        "{fresh}"
    );
    run("--uninstall");
    assert_eq!(fs::read_to_string(&config).unwrap(), "");

    let own = "Host foo\r\n    User bar\r\n";
    fs::write(&config, own).unwrap();
    run("--install");
    let installed = fs::read_to_string(&config).unwrap();
    assert!(installed.ends_with(own), "{installed:?}");
    assert!(
        installed.contains(&format!("\r\n    ProxyCommand {quoted} %h\r\n")),
        "the block's lines end as the file's do: {installed:?}"
    );
    assert!(run("--install").contains("nothing changed"));
    assert_eq!(fs::read_to_string(&config).unwrap(), installed);
    run("--uninstall");
    assert_eq!(fs::read_to_string(&config).unwrap(), own);
    fs::remove_dir_all(&ssh_dir).unwrap();
}

/// The library's unit tests, built for Windows and run under Wine: the pump
/// in memory, the error words for Winsock's and Windows' codes, the console's
/// events as signals, on the code paths the .exe takes.
#[test]
fn the_unit_tests_pass_as_built_for_windows() {
    let wine = exe::wine();
    let tests = build_unit_tests_for(TARGET, "vers_tunnel")
        .unwrap_or_else(|e| panic!("the unit tests for {TARGET}: {e}"));
    shim_beside(&tests);
    let run = run_exe(&mut wine.command(&tests), b"");
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.code(), 0, "{said}\n{}", run.stderr);
    let passed: usize = said
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test result line in:\n{said}"));
    // All but the few that are Unix's (`#[cfg(unix)]`): a count far below
    // means the harness found few, not that few exist.
    assert!(passed > 100, "only {passed} unit tests ran:\n{said}");
}
