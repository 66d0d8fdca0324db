//! The real clients through vers-tunnel: OpenSSH's ssh, scp and sftp, and
//! `rsync -e ssh`, reaching a real sshd on `[::1]` through the TLS edge by SNI,
//! as users do with `ProxyCommand vers-tunnel %h`. Also an interactive session
//! under a terminal, and ssh dying mid-transfer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::sshd::{require, Client, Vm};
use crate::util::tmux::Tmux;
use crate::util::{self, Prng, Run, World};

const MIB: usize = 1024 * 1024;
const HOST: &str = "x.vm.vers.sh";

/// How soon the tunnel must be gone once ssh is.
const PROMPT_EXIT: Duration = Duration::from_secs(1);

/// A VM behind the edge and a client whose ProxyCommand is vers-tunnel.
struct Session {
    w: World,
    vm: Vm,
    client: Client,
}

impl Session {
    fn new() -> Session {
        require("ssh", "openssh-client");
        let w = World::new();
        let vm = Vm::start(w.dir.path(), &w.ca, HOST);
        let client = vm.client(w.dir.path(), &vm.proxy_command(bin(), &w.ca));
        Session { w, vm, client }
    }

    /// Another client of the same VM, in `dir/name`, through `proxy_command`.
    fn client_via(&self, name: &str, proxy_command: &str) -> Client {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.vm.client(&dir, proxy_command)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.w.dir.path().join(name)
    }

    /// `ssh -F CONFIG root@x.vm.vers.sh COMMAND`.
    fn ssh(&self, remote_command: &str) -> Command {
        ssh(&self.client, remote_command)
    }

    /// `user@x.vm.vers.sh:PATH`.
    fn remote(&self, path: &Path) -> String {
        remote(&self.client, path)
    }

    /// The running vers-tunnel of this session (its --cacert is in our dir).
    fn tunnel_pid(&self) -> u32 {
        let needle = self.w.dir.path().to_str().unwrap();
        util::wait_single_pid(bin(), needle, Duration::from_secs(10))
    }

    /// Asserts `run` succeeded without a word on stderr (from ssh or the tunnel).
    fn assert_quiet_success(&self, run: &Run, what: &str) {
        assert_eq!(
            run.code(),
            0,
            "{what}: {}\nsshd log:\n{}",
            run.stderr,
            self.vm.sshd.log()
        );
        assert_eq!(run.stderr, "", "{what} must print nothing on stderr");
    }
}

/// `ssh -F CONFIG user@x.vm.vers.sh COMMAND`.
fn ssh(client: &Client, remote_command: &str) -> Command {
    let mut cmd = client.command("ssh");
    cmd.arg(&client.login).arg(remote_command);
    cmd
}

/// `user@x.vm.vers.sh:PATH`.
fn remote(client: &Client, path: &Path) -> String {
    format!("{}:{}", client.login, path.display())
}

fn bin() -> &'static Path {
    Path::new(util::bin())
}

#[test]
fn ssh_command_output_and_exit_status_come_back() {
    let s = Session::new();
    let run = util::run(
        &mut s.ssh("echo \"hello from $(whoami)\"; echo to-stderr >&2; exit 7"),
        b"",
    );
    assert_eq!(run.code(), 7, "stderr: {}", run.stderr);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("hello from {}\n", util::sshd::login_user())
    );
    // Only the remote command's own stderr: nothing from ssh or the tunnel.
    assert_eq!(run.stderr, "to-stderr\n");
    assert_eq!(s.vm.edge.sni_seen(), vec![Some(HOST.to_string())]);
}

#[test]
fn ssh_stdin_reaches_the_remote_command_and_its_answer_comes_back() {
    let s = Session::new();
    let input = Prng::bytes(21, 3 * MIB);
    let run = util::run(&mut s.ssh("sha256sum | cut -d' ' -f1"), &input);
    s.assert_quiet_success(&run, "ssh sha256sum");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        util::sha256(&input)
    );
}

#[test]
fn scp_of_64_mib_up_and_back_matches_digests() {
    let s = Session::new();
    let local = s.path("local.bin");
    let remote = s.path("remote.bin");
    let back = s.path("back.bin");
    let data = Prng::bytes(22, 64 * MIB);
    std::fs::write(&local, &data).unwrap();
    let expected = util::sha256(&data);

    let up = util::run(
        s.client.command("scp").arg(&local).arg(s.remote(&remote)),
        b"",
    );
    s.assert_quiet_success(&up, "scp up");
    // The "VM" is this machine: the uploaded file is right there.
    assert_eq!(util::sha256(&std::fs::read(&remote).unwrap()), expected);

    let down = util::run(
        s.client.command("scp").arg(s.remote(&remote)).arg(&back),
        b"",
    );
    s.assert_quiet_success(&down, "scp down");
    assert_eq!(util::sha256(&std::fs::read(&back).unwrap()), expected);
    eprintln!(
        "scp 64 MiB through vers-tunnel: up {:.2?}, down {:.2?}",
        up.elapsed, down.elapsed
    );
}

#[test]
fn sftp_batch_put_ls_get_round_trips() {
    let s = Session::new();
    let local = s.path("local.bin");
    let remote_dir = s.path("remote");
    let back = s.path("back.bin");
    let data = Prng::bytes(23, 5 * MIB + 3);
    std::fs::write(&local, &data).unwrap();
    let batch = s.path("batch");
    std::fs::write(
        &batch,
        format!(
            "mkdir {dir}\nput {local} {dir}/up.bin\nls -l {dir}\nget {dir}/up.bin {back}\n",
            dir = remote_dir.display(),
            local = local.display(),
            back = back.display(),
        ),
    )
    .unwrap();
    let run = util::run(
        s.client
            .command("sftp")
            .arg("-b")
            .arg(&batch)
            .arg(&s.client.login),
        b"",
    );
    s.assert_quiet_success(&run, "sftp -b");
    let listing = String::from_utf8_lossy(&run.stdout);
    let line = listing
        .lines()
        .find(|l| l.ends_with("up.bin") && !l.starts_with("sftp>"))
        .unwrap_or_else(|| panic!("ls did not list up.bin:\n{listing}"));
    assert!(line.contains(&data.len().to_string()), "{line}");
    assert_eq!(std::fs::read(back).unwrap(), data);
}

#[test]
fn rsync_tree_arrives_intact_and_a_rerun_transfers_nothing() {
    require("rsync", "rsync");
    let s = Session::new();
    let src = s.path("src");
    let dst = s.path("dst");
    let mut prng = Prng::new(24);
    let mut files = 0;
    for d in 0..25 {
        let dir = src.join(format!("dir{d:02}")).join("sub");
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..20 {
            let mut len = [0; 2];
            prng.fill(&mut len);
            let mut data = vec![0; usize::from(u16::from_le_bytes(len)) % 4096];
            prng.fill(&mut data);
            std::fs::write(dir.join(format!("f{f:02}.txt")), data).unwrap();
            files += 1;
        }
    }
    std::fs::write(src.join("large.bin"), Prng::bytes(25, 32 * MIB)).unwrap();
    files += 1;

    let rsync = || {
        let mut cmd = Command::new("rsync");
        cmd.env_remove("SSH_AUTH_SOCK")
            .args(["-a", "--checksum", "--stats", "-e"])
            .arg(s.client.rsh())
            .arg(format!("{}/", src.display()))
            .arg(format!("{}/", s.remote(&dst)));
        cmd
    };
    let first = util::run(&mut rsync(), b"");
    s.assert_quiet_success(&first, "rsync");
    let stats = String::from_utf8_lossy(&first.stdout);
    assert!(
        stats.contains(&format!("Number of regular files transferred: {files}\n")),
        "{stats}"
    );
    assert_eq!(tree_digests(&src), tree_digests(&dst));

    let again = util::run(&mut rsync(), b"");
    s.assert_quiet_success(&again, "rsync re-run");
    let stats = String::from_utf8_lossy(&again.stdout);
    assert!(
        stats.contains("Number of regular files transferred: 0\n")
            && stats.contains("Total transferred file size: 0 bytes\n"),
        "the re-run transferred something:\n{stats}"
    );
    eprintln!(
        "rsync of {files} files through vers-tunnel: {:.2?}, re-run {:.2?}",
        first.elapsed, again.elapsed
    );
}

#[test]
fn proxy_command_given_with_dash_o_works_in_ssh_scp_and_rsync_e() {
    // The config's own ProxyCommand fails: only the -o one can connect.
    let s = Session::new();
    let broken = s.client_via("dash-o", "false");
    let proxy = format!("ProxyCommand={}", s.vm.proxy_command(bin(), &s.w.ca));
    let run = util::run(
        broken
            .command("ssh")
            .arg("-o")
            .arg(&proxy)
            .arg(&broken.login)
            .arg("echo ok"),
        b"",
    );
    s.assert_quiet_success(&run, "ssh -o ProxyCommand=...");
    assert_eq!(run.stdout, b"ok\n");

    let local = s.path("local.bin");
    std::fs::write(&local, Prng::bytes(27, MIB)).unwrap();
    let copy = s.path("copy.bin");
    let run = util::run(
        broken
            .command("scp")
            .arg("-o")
            .arg(&proxy)
            .arg(&local)
            .arg(remote(&broken, &copy)),
        b"",
    );
    s.assert_quiet_success(&run, "scp -o ProxyCommand=...");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&local).unwrap()
    );

    // rsync splits -e itself, keeping single-quoted words whole.
    require("rsync", "rsync");
    let dst = s.path("dst");
    let run = util::run(
        Command::new("rsync")
            .env_remove("SSH_AUTH_SOCK")
            .arg("-a")
            .arg("-e")
            .arg(format!("{} -o '{proxy}'", broken.rsh()))
            .arg(&local)
            .arg(format!("{}/", remote(&broken, &dst))),
        b"",
    );
    s.assert_quiet_success(&run, "rsync -e \"ssh -o 'ProxyCommand=...'\"");
    assert_eq!(
        std::fs::read(dst.join("local.bin")).unwrap(),
        std::fs::read(&local).unwrap()
    );
}

/// Every file under `root` (relative path) with its SHA-256, sorted.
fn tree_digests(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                let digest = util::sha256(&std::fs::read(&path).unwrap());
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), digest));
            }
        }
    }
    out.sort();
    out
}

/// What the terminal shows once ssh has exited, before its status.
const EXITED: &str = "[ssh exited] ";

#[test]
fn interactive_session_echoes_at_once_and_exits_without_leftovers() {
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
    assert!(
        median < Duration::from_millis(200),
        "typing feels slow: median echo {median:?}"
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
    let gone = util::wait_gone(tunnel, PROMPT_EXIT);
    assert!(
        gone.is_some(),
        "vers-tunnel still running 1 s after ssh exited"
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
fn ssh_killed_mid_download_leaves_no_tunnel_behind() {
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
    stdout.read_exact(&mut buf).unwrap();
    let tunnel = s.tunnel_pid();
    ssh.kill().unwrap();
    let killed = Instant::now();
    ssh.wait().unwrap();
    drop(stdout);
    let gone = util::wait_gone(tunnel, PROMPT_EXIT);
    assert!(
        gone.is_some(),
        "vers-tunnel still running {:?} after ssh was killed mid-download",
        killed.elapsed()
    );
    eprintln!("tunnel gone {:.1?} after ssh was killed", killed.elapsed());
}

#[test]
fn ssh_killed_mid_upload_leaves_no_tunnel_behind() {
    let s = Session::new();
    let mut ssh = s
        .ssh("cat > /dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = ssh.stdin.take().unwrap();
    // Enough to be sure the transfer is under way through the tunnel.
    let chunk = vec![0; MIB];
    for _ in 0..4 {
        stdin.write_all(&chunk).unwrap();
    }
    let tunnel = s.tunnel_pid();
    let feeder = thread::spawn(move || while stdin.write_all(&chunk).is_ok() {});
    ssh.kill().unwrap();
    let killed = Instant::now();
    ssh.wait().unwrap();
    feeder.join().unwrap();
    let gone = util::wait_gone(tunnel, PROMPT_EXIT);
    assert!(
        gone.is_some(),
        "vers-tunnel still running {:?} after ssh was killed mid-upload",
        killed.elapsed()
    );
    eprintln!("tunnel gone {:.1?} after ssh was killed", killed.elapsed());
}

// Side by side with the recipe vers-tunnel replaces, against the same edge.

/// The recipe from the docs, `openssl s_client -connect %h:443 -servername %h
/// -quiet 2>/dev/null`, pointed at the test edge instead of %h:443.
fn s_client_recipe(vm: &Vm, stderr: &str) -> String {
    require("openssl", "openssl");
    let edge = vm.edge.addr6();
    format!(
        "openssl s_client -connect [{}]:{} -servername %h -quiet {stderr}",
        edge.ip(),
        edge.port()
    )
}

#[test]
fn ssh_and_scp_work_through_both_vers_tunnel_and_openssl_s_client() {
    let s = Session::new();
    let recipe = s.client_via("openssl", &s_client_recipe(&s.vm, "2>/dev/null"));
    let data = Prng::bytes(26, 64 * MIB);
    let local = s.path("local.bin");
    std::fs::write(&local, &data).unwrap();
    let expected = util::sha256(&data);
    let mut timings = Vec::new();
    for (name, client) in [("vers-tunnel", &s.client), ("openssl s_client", &recipe)] {
        let run = util::run(&mut ssh(client, "true"), b"");
        s.assert_quiet_success(&run, &format!("ssh true via {name}"));
        let ssh_true = run.elapsed;

        let remote_path = s.path(&format!("remote-{}", name.replace(' ', "-")));
        let up = util::run(
            client
                .command("scp")
                .arg(&local)
                .arg(remote(client, &remote_path)),
            b"",
        );
        s.assert_quiet_success(&up, &format!("scp up via {name}"));
        let back = s.path("back.bin");
        let down = util::run(
            client
                .command("scp")
                .arg(remote(client, &remote_path))
                .arg(&back),
            b"",
        );
        s.assert_quiet_success(&down, &format!("scp down via {name}"));
        assert_eq!(
            util::sha256(&std::fs::read(&remote_path).unwrap()),
            expected
        );
        assert_eq!(util::sha256(&std::fs::read(&back).unwrap()), expected);
        timings.push((name, ssh_true, up.elapsed, down.elapsed));
    }
    assert_eq!(s.vm.edge.sni_seen(), vec![Some(HOST.to_string()); 6]);
    for (name, ssh_true, up, down) in timings {
        eprintln!(
            "{name:>16}: ssh true {ssh_true:>8.1?}, scp 64 MiB up {up:>8.1?}, down {down:>8.1?}"
        );
    }
}

#[test]
fn only_openssl_s_client_lets_ssh_through_an_edge_it_cannot_verify() {
    // Neither proxy is told about the test CA: the edge could be anyone.
    let s = Session::new();
    let tunnel = s.client_via(
        "untrusting",
        &format!(
            "{} --connect-to {} %h",
            bin().display(),
            util::connect_to("%h", s.vm.edge.addr6())
        ),
    );
    let run = util::run(&mut ssh(&tunnel, "true"), b"");
    assert_eq!(run.code(), 255, "ssh must fail: {}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("vers-tunnel: "))
        .unwrap_or_else(|| panic!("no vers-tunnel line in {:?}", run.stderr));
    assert!(
        line.contains(HOST) && line.contains("certificate"),
        "{line}"
    );
    eprintln!("ssh through vers-tunnel, CA unknown: exit 255, {line}");

    // The recipe as documented hides its stderr: the session just works.
    let recipe = s.client_via("recipe", &s_client_recipe(&s.vm, "2>/dev/null"));
    let run = util::run(&mut ssh(&recipe, "echo root shell"), b"");
    s.assert_quiet_success(&run, "ssh via the recipe");
    assert_eq!(run.stdout, b"root shell\n");

    // Without 2>/dev/null it also talks on every connection.
    let chatty = s.client_via("chatty", &s_client_recipe(&s.vm, ""));
    let run = util::run(&mut ssh(&chatty, "true"), b"");
    assert_eq!(run.code(), 0, "{}", run.stderr);
    assert!(run.stderr.contains("verify error"), "{:?}", run.stderr);
    eprintln!(
        "ssh through the recipe, CA unknown: exit 0, stderr {:?}",
        run.stderr
    );
}
