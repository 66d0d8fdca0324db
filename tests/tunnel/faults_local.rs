//! The local side: stdin and stdout of every kind (tty, socket, closed), a
//! parent that dies, and stop signals. The tunnel exits promptly, says the
//! right thing (usually nothing), and leaves shared descriptors as it found them.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::pty::Pty;
use crate::util::{self, slack, wait_until, Behaviour, EdgeBuilder, Exit, Mode, Prng, World, HOST};

const SIGNALS: [(libc::c_int, &str); 3] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
];

/// Spawns `cmd` with stdin on the pty's terminal, stdout piped and stderr drained.
fn spawn_on_tty(cmd: &mut Command, pty: &Pty) -> (Child, ChildStdout, thread::JoinHandle<Vec<u8>>) {
    let mut child = cmd
        .stdin(pty.slave_handle())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = util::drain(child.stderr.take().unwrap());
    (child, stdout, stderr)
}

#[test]
fn stdin_a_tty_relays_typed_lines_and_restores_the_terminal() {
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let pty = Pty::open();
    let before = pty.slave_flags();
    let (child, mut stdout, stderr) = spawn_on_tty(&mut w.tunnel(edge.addr(), HOST), &pty);
    let mut master = &pty.master;
    master.write_all(b"typed at a terminal\n").unwrap();
    let mut line = [0; 20];
    util::read_exact_within(&mut stdout, &mut line, util::HANG);
    assert_eq!(&line, b"typed at a terminal\n");
    assert_ne!(pty.slave_flags() & libc::O_NONBLOCK, 0, "the tty is shared");
    // ^D at the start of a line: end of input on a terminal.
    master.write_all(&[4]).unwrap();
    let rest = util::read_to_end_within(&mut stdout, util::HANG);
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
    assert!(rest.is_empty());
    assert_eq!(pty.slave_flags(), before, "O_NONBLOCK left on the terminal");
}

#[test]
fn stdin_a_tty_ends_once_the_server_has_finished() {
    // Used by hand like nc: a person has no EOF to give once the server is
    // done, so the tunnel must not wait for one.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Download { len: 5000, seed: 3 });
    let pty = Pty::open();
    let before = pty.slave_flags();
    let (child, mut stdout, stderr) = spawn_on_tty(&mut w.tunnel(edge.addr(), HOST), &pty);
    let got = util::read_to_end_within(&mut stdout, util::HANG);
    assert_eq!(got, Prng::bytes(3, 5000));
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
    assert_eq!(pty.slave_flags(), before, "O_NONBLOCK left on the terminal");
}

#[test]
fn stdin_and_stdout_one_socket_relays_and_half_closes() {
    // ssh may hand its ProxyCommand one socket for both directions.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut child = w
        .tunnel(edge.addr(), HOST)
        .stdin(File::from(std::os::fd::OwnedFd::from(
            theirs.try_clone().unwrap(),
        )))
        .stdout(File::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = util::drain(child.stderr.take().unwrap());
    let input = Prng::bytes(21, 3 << 20);
    let mut writer = ours.try_clone().unwrap();
    let expected = input.clone();
    let feeder = thread::spawn(move || {
        writer.write_all(&input).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let got = util::read_to_end_within(&mut ours, util::HANG);
    feeder.join().unwrap();
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the echoed stream differs");
}

#[test]
fn stdout_a_pipe_already_closed_exits_quietly_at_once() {
    let _timed = util::timed();
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1 << 30,
            seed: 22,
        },
    );
    let (reader, writer) = util::pipe();
    drop(reader);
    let run = util::run_as_set(
        w.tunnel(edge.addr(), HOST)
            .stdin(Stdio::null())
            .stdout(writer),
    );
    run.assert_clean();
    let bound = slack(Duration::from_secs(5));
    assert!(
        run.elapsed < bound,
        "{:?}, more than {bound:?}",
        run.elapsed
    );
}

#[test]
fn stdin_closed_descriptor_reads_as_empty() {
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1000,
            seed: 23,
        },
    );
    let mut cmd = w.tunnel(edge.addr(), HOST);
    // SAFETY: close(2) between fork and exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let run = util::run_as_set(cmd.stdin(Stdio::null()).stdout(Stdio::piped()));
    run.assert_clean();
    assert_eq!(run.stdout, Prng::bytes(23, 1000));
}

/// Sends `sig` to the child and returns its exit status and how long it took.
fn stop(child: std::process::Child, sig: libc::c_int) -> (std::process::ExitStatus, Duration) {
    let pid = child.id();
    let exit = Exit::watch(child);
    let sent = Instant::now();
    util::signal(pid, sig);
    let status = exit.wait(slack(Duration::from_secs(10)), &format!("of signal {sig}"));
    (status, sent.elapsed())
}

fn assert_stopped(
    name: &str,
    sig: libc::c_int,
    status: std::process::ExitStatus,
    took: Duration,
    stderr: String,
) {
    eprintln!("{name}: exited {:?} after {took:?}", status.code());
    assert_eq!(status.code(), Some(128 + sig), "{name}");
    let bound = slack(Duration::from_secs(1));
    assert!(took < bound, "{name}: took {took:?}, more than {bound:?}");
    assert_eq!(stderr, "", "{name}: stop signals are quiet");
}

#[test]
fn stop_signals_during_the_handshake_exit_promptly_and_restore_the_tty() {
    let _timed = util::timed();
    for (sig, name) in SIGNALS {
        let w = World::new();
        let edge = EdgeBuilder::new(w.ca.leaf(&[HOST]))
            .mode(Mode::Silent)
            .start();
        let pty = Pty::open();
        let before = pty.slave_flags();
        let (child, stdout, stderr) = spawn_on_tty(&mut w.tunnel(edge.addr(), HOST), &pty);
        let stdout = util::drain(stdout);
        wait_until(Duration::from_secs(10), "the handshake to start", || {
            edge.accepted() == 1 && pty.slave_flags() & libc::O_NONBLOCK != 0
        });
        let (status, took) = stop(child, sig);
        assert_stopped(
            &format!("{name} in handshake"),
            sig,
            status,
            took,
            util::stderr_text(stderr),
        );
        assert!(stdout.join().unwrap().is_empty());
        assert_eq!(
            pty.slave_flags(),
            before,
            "{name}: O_NONBLOCK left on the terminal"
        );
    }
}

#[test]
fn stop_signals_during_transfer_exit_promptly_and_restore_the_tty() {
    let _timed = util::timed();
    for (sig, name) in SIGNALS {
        let w = World::new();
        let edge = w.edge(HOST, Behaviour::Echo);
        let pty = Pty::open();
        let before = pty.slave_flags();
        let (child, mut stdout, stderr) = spawn_on_tty(&mut w.tunnel(edge.addr(), HOST), &pty);
        (&pty.master).write_all(b"ping\n").unwrap();
        let mut pong = [0; 5];
        util::read_exact_within(&mut stdout, &mut pong, util::HANG);
        assert_eq!(&pong, b"ping\n");
        let (status, took) = stop(child, sig);
        assert_stopped(
            &format!("{name} in transfer"),
            sig,
            status,
            took,
            util::stderr_text(stderr),
        );
        assert_eq!(
            pty.slave_flags(),
            before,
            "{name}: O_NONBLOCK left on the terminal"
        );
    }
}

/// Makes this test process the reaper of orphans it starts, so a tunnel whose
/// parent was killed can still be waited for and its status read.
#[cfg(target_os = "linux")]
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
}

/// Waits for an adopted orphan; its exit code, or `None` after `limit`.
fn wait_orphan(pid: libc::pid_t, limit: Duration) -> Option<i32> {
    util::poll_until(limit, || {
        let mut status = 0;
        // SAFETY: waitpid on one pid with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            assert!(libc::WIFEXITED(status), "ended by a signal: {status:#x}");
            return Some(libc::WEXITSTATUS(status));
        }
        assert_eq!(rc, 0, "waitpid: {}", std::io::Error::last_os_error());
        None
    })
}

#[test]
#[cfg(target_os = "linux")]
fn parent_killed_mid_transfer_ends_the_tunnel_promptly() {
    // The parent (standing in for ssh) holds the far ends of the tunnel's
    // stdin and stdout pipes; SIGKILL closes them without a word.
    let _timed = util::timed();
    become_subreaper();
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::Download {
            len: 1 << 30,
            seed: 24,
        },
    );
    let (in_r, in_w) = util::pipe();
    let (out_r, out_w) = util::pipe();
    let err_path = w.dir.path().join("tunnel.stderr");
    let tunnel = w.tunnel(edge.addr(), HOST);
    let mut command = Command::new("sh");
    util::clean_env(&mut command)
        .arg("-c")
        .arg(r#""$@" <&3 >&4 2>"$TUNNEL_STDERR" 3<&- 4>&- & echo "$!" >&2; exec sleep 600 3<&- 4>&-"#)
        .arg("sh")
        .arg(tunnel.get_program())
        .args(tunnel.get_args())
        .env("TUNNEL_STDERR", &err_path)
        .stdin(in_w)
        .stdout(out_r)
        .stderr(Stdio::piped());
    let (child_in, child_out) = (in_r.as_raw_fd(), out_w.as_raw_fd());
    // SAFETY: only fcntl, dup2 and close between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let a = libc::fcntl(child_in, libc::F_DUPFD, 100);
            let b = libc::fcntl(child_out, libc::F_DUPFD, 100);
            if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a);
            libc::close(b);
            Ok(())
        });
    }
    let mut parent = command.spawn().unwrap();
    // Only the parent may hold the far ends: the Command keeps its copies.
    drop((in_r, out_w, tunnel, command));
    let pid_line = util::read_line_within(parent.stderr.as_mut().unwrap(), util::HANG);
    let pid: libc::pid_t = pid_line.trim().parse().unwrap();
    wait_until(Duration::from_secs(10), "the session to start", || {
        edge.sni_seen().len() == 1
    });
    let killed = Instant::now();
    parent.kill().unwrap();
    parent.wait().unwrap();
    let code = wait_orphan(pid, slack(Duration::from_secs(5)));
    let took = killed.elapsed();
    if code.is_none() {
        util::signal(pid as u32, libc::SIGKILL);
        wait_orphan(pid, Duration::from_secs(5));
    }
    eprintln!("parent killed: tunnel exited {code:?} after {took:?}");
    assert_eq!(
        code,
        Some(0),
        "{}",
        std::fs::read_to_string(&err_path).unwrap()
    );
    let bound = slack(Duration::from_secs(1));
    assert!(took < bound, "took {took:?}, more than {bound:?}");
    assert_eq!(std::fs::read_to_string(&err_path).unwrap(), "");
}

#[test]
fn stop_signal_while_data_pours_both_ways_exits_promptly() {
    // The loop is never idle here: the signal must still be seen between rounds.
    let _timed = util::timed();
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let util::Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    let feeder = thread::spawn(move || {
        let chunk = Prng::bytes(25, 64 * 1024);
        // Ends with EPIPE once the tunnel is gone.
        while stdin.write_all(&chunk).is_ok() {}
    });
    let mut buf = vec![0; 8 << 20];
    util::read_exact_within(&mut stdout, &mut buf, util::HANG);
    // Ends at EOF once the tunnel is gone.
    let reader = thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let (status, took) = stop(child, libc::SIGTERM);
    assert_stopped(
        "SIGTERM in a busy transfer",
        libc::SIGTERM,
        status,
        took,
        util::stderr_text(stderr),
    );
    feeder.join().unwrap();
    reader.join().unwrap().unwrap();
}

#[test]
fn stdin_and_stdout_the_same_tty_leave_the_terminal_as_found() {
    // Run by hand in a terminal: both ends share one file description.
    let w = World::new();
    let edge = w.edge(HOST, Behaviour::Echo);
    let pty = Pty::open();
    let before = pty.slave_flags();
    let mut child = w
        .tunnel(edge.addr(), HOST)
        .stdin(pty.slave_handle())
        .stdout(pty.slave_handle())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = util::drain(child.stderr.take().unwrap());
    let mut master = pty.master.try_clone().unwrap();
    master.write_all(b"hello\n").unwrap();
    // The terminal shows the typed line (echo) and then the tunnel's copy.
    let deadline = Instant::now() + util::HANG;
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    while seen.windows(5).filter(|w| w == b"hello").count() < 2 {
        let n = util::read_by(&mut master, &mut buf, deadline);
        assert_ne!(n, 0);
        seen.extend_from_slice(&buf[..n]);
    }
    master.write_all(&[4]).unwrap();
    let status = util::wait(child, util::HANG);
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
    assert_eq!(pty.slave_flags(), before, "O_NONBLOCK left on the terminal");
}
