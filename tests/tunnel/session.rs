//! How interactive sessions feel and how sessions end: a terminal typing into
//! ssh through vers-tunnel, and ssh killed mid-transfer, with the tunnel gone
//! within a second every time.

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::session::Session;
use crate::util::tmux::Tmux;
use crate::util::{self, slack, Behaviour, World, HOST, MIB};

/// How soon the tunnel must be gone once ssh is (times [`slack`]).
const PROMPT_EXIT: Duration = Duration::from_secs(1);

/// What the terminal shows once ssh has exited, before its status.
const EXITED: &str = "[ssh exited] ";

#[test]
#[cfg(target_os = "linux")]
fn interactive_session_echoes_at_once_and_exits_without_leftovers() {
    let _timed = util::timed();
    let s = Session::new();
    let term = Tmux::start(
        s.w.dir.path(),
        &format!("{} {}; echo \"{EXITED}$?\"", s.client.rsh(), s.client.login),
        100,
        30,
    );
    let wait = Duration::from_secs(20);
    // The shell is up once it runs a command (typed keys wait in the pty).
    term.type_text("echo ready-$((1+1))\n");
    term.wait_for(wait, "the shell to answer", |screen| {
        prompt_after(screen, "ready-2")
    });
    let tunnel = s.tunnel_pid();

    // Keystroke echo: each key goes to the VM and its echo comes back.
    let mut echo = Vec::new();
    let word = "vers-tunnel";
    for end in 1..=word.len() {
        let typed = &word[..end];
        let sent = Instant::now();
        term.type_text(&word[end - 1..end]);
        term.wait_for(wait, "the keystroke's echo", |screen| {
            screen.lines().last().is_some_and(|l| l.ends_with(typed))
        });
        echo.push(sent.elapsed());
    }
    term.send(&["C-u"]);
    echo.sort();
    let median = echo[echo.len() / 2];
    eprintln!(
        "keystroke echo through vers-tunnel (incl. tmux polling): median {median:.1?}, max {:.1?}",
        echo[echo.len() - 1]
    );
    let bound = slack(Duration::from_millis(200));
    assert!(
        median < bound,
        "typing feels slow: median echo {median:?}, not under {bound:?}"
    );

    let sent = Instant::now();
    term.type_text("echo hello-$((6*7))\n");
    term.wait_for(wait, "the command's output", |screen| {
        screen.lines().any(|l| l == "hello-42")
    });
    eprintln!("command answered in {:.1?}", sent.elapsed());
    // Typed before the prompt, `exit` would be echoed twice.
    term.wait_for(wait, "the prompt", |screen| {
        prompt_after(screen, "hello-42")
    });

    term.type_text("exit\n");
    // tmux may miss a pane's exit status: the shell around ssh reports it.
    let screen = term.wait_for(wait, "ssh to exit", |screen| {
        screen.lines().any(|l| l.starts_with(EXITED))
    });
    assert!(
        screen.lines().any(|l| l == format!("{EXITED}0")),
        "ssh failed:\n{screen}"
    );
    let gone = util::wait_gone(tunnel, slack(PROMPT_EXIT));
    assert!(
        gone.is_some(),
        "vers-tunnel still running {:?} after ssh exited",
        slack(PROMPT_EXIT)
    );

    // After `exit`: the shell's goodbye, ssh's, tmux's note; nothing else.
    let screen = term.screen();
    let after: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.ends_with("exit"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let expected_end = format!("Connection to {HOST} closed.");
    for line in &after {
        assert!(
            *line == "logout"
                || *line == expected_end
                || *line == format!("{EXITED}0")
                || line.starts_with("Pane is dead"),
            "stray output after exit: {line:?}\nscreen:\n{screen}"
        );
    }
    assert!(!screen.contains("vers-tunnel:"), "screen:\n{screen}");
}

/// Whether the shell printed its prompt after the line `output`.
fn prompt_after(screen: &str, output: &str) -> bool {
    let mut lines = screen.lines().skip_while(|l| *l != output).skip(1);
    lines
        .next()
        .is_some_and(|l| l.ends_with('#') || l.ends_with('$'))
}

#[test]
#[cfg(target_os = "linux")]
fn ssh_killed_mid_download_leaves_no_tunnel_behind() {
    let _timed = util::timed();
    let s = Session::new();
    let mut ssh = s
        .ssh("head -c 4294967296 /dev/zero")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = ssh.stdout.take().unwrap();
    let mut buf = vec![0; 4 * MIB];
    util::read_exact_within(&mut stdout, &mut buf, util::HANG);
    let tunnel = s.tunnel_pid();
    ssh.kill().unwrap();
    let killed = Instant::now();
    util::wait(ssh, util::HANG);
    drop(stdout);
    let gone = util::wait_gone(tunnel, slack(PROMPT_EXIT));
    assert!(
        gone.is_some(),
        "vers-tunnel still running {:?} after ssh was killed mid-download",
        killed.elapsed()
    );
    eprintln!("tunnel gone {:.1?} after ssh was killed", killed.elapsed());
}

#[test]
#[cfg(target_os = "linux")]
fn ssh_killed_mid_upload_leaves_no_tunnel_behind() {
    let _timed = util::timed();
    let s = Session::new();
    let mut ssh = s
        .ssh("cat > /dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = ssh.stdin.take().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    // Ends with EPIPE once ssh is gone.
    let feeder = thread::spawn(move || {
        let chunk = vec![0; MIB];
        while stdin.write_all(&chunk).is_ok() {
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    // Enough to be sure the transfer is under way through the tunnel.
    util::wait_until(util::HANG, "4 MiB to go into ssh", || {
        sent.load(Ordering::SeqCst) >= 4 * MIB
    });
    let tunnel = s.tunnel_pid();
    ssh.kill().unwrap();
    let killed = Instant::now();
    util::wait(ssh, util::HANG);
    feeder.join().unwrap();
    let gone = util::wait_gone(tunnel, slack(PROMPT_EXIT));
    assert!(
        gone.is_some(),
        "vers-tunnel still running {:?} after ssh was killed mid-upload",
        killed.elapsed()
    );
    eprintln!("tunnel gone {:.1?} after ssh was killed", killed.elapsed());
}

#[test]
fn reader_gone_ends_the_tunnel_even_when_the_server_stays_silent() {
    // What a SIGKILLed ssh leaves: stdin at EOF and stdout without a reader.
    // If the far side never answers the half-close (an edge that does not
    // pass it on, a VM that ignores it) nothing is ever written to stdout, so
    // no EPIPE can tell the tunnel: it must notice the reader is gone.
    let _timed = util::timed();
    let w = World::new();
    let edge = w.edge(
        HOST,
        Behaviour::IgnoreEof {
            hold: Duration::from_secs(30),
        },
    );
    let util::Piped {
        child,
        mut stdin,
        stdout,
        stderr,
    } = util::spawn_piped(&mut w.tunnel(edge.addr(), HOST));
    stdin.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    // The session is up once the edge has seen the handshake.
    util::wait_until(Duration::from_secs(10), "the TLS session", || {
        !edge.sni_seen().is_empty()
    });
    let exit = util::Exit::watch(child);
    drop(stdin);
    drop(stdout);
    let status = exit.wait(slack(PROMPT_EXIT), "of its reader going away");
    assert_eq!(status.code(), Some(0));
    assert_eq!(util::stderr_text(stderr), "");
}
