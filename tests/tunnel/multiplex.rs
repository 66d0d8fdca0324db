//! ssh connection sharing through vers-tunnel, configured by the block
//! `vers-tunnel ssh-config --multiplex` prints: a second ssh to the VM rides on
//! the first one's connection (one TLS connection at the edge, one login at
//! sshd, one tunnel), `ssh -O exit` ends it, and what a failure looks like then.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::session::{bin, Session};
use crate::util::sshd::Client;
use crate::util::{self, Run, HOST};

/// The longest home directory the README says the ControlPath fits under on
/// Linux (108-byte socket paths): 39 + `/.ssh/vers-` + 40 + ssh's 17 = 107.
const LONGEST_HOME: usize = 39;

/// How long the tunnel may outlive `ssh -O exit`.
const GONE: Duration = Duration::from_secs(5);

/// The `--multiplex` block's lines, as the binary prints them.
fn multiplex_block() -> String {
    let out = util::run(
        Command::new(bin())
            .args(["ssh-config", "--multiplex", "--path"])
            .arg(bin()),
        b"",
    );
    out.assert_clean();
    String::from_utf8(out.stdout).unwrap()
}

/// A client of the session's VM whose config is the test client's lines (key,
/// known_hosts, the ProxyCommand pointed at the test edge) followed by the
/// `--multiplex` block, with its `~` standing for `home`: ssh takes the first
/// value of each option, so ControlMaster and ControlPersist come from the block.
fn sharing_client(s: &Session, home: &Path) -> Client {
    let block = multiplex_block();
    let control_path = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("ControlPath "))
        .unwrap_or_else(|| panic!("no ControlPath in {block}"));
    let rest = control_path
        .strip_prefix("~/")
        .unwrap_or_else(|| panic!("{control_path} is not in the home directory"));
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let own = std::fs::read_to_string(&s.client.config).unwrap();
    let config = s.path("multiplex_config");
    std::fs::write(
        &config,
        format!(
            "Host *.vm.vers.sh\n    ControlPath {}/{rest}\n{own}{block}",
            home.display()
        ),
    )
    .unwrap();
    Client {
        config,
        login: s.client.login.clone(),
    }
}

/// A directory exactly [`LONGEST_HOME`] bytes long, standing in for `~`.
fn longest_home(s: &Session) -> PathBuf {
    let base = s.w.dir.path();
    let pad = LONGEST_HOME
        .checked_sub(base.as_os_str().len() + 1)
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            panic!(
                "{} is too long to build a {LONGEST_HOME}-byte path in",
                base.display()
            )
        });
    let home = base.join("h".repeat(pad));
    assert_eq!(home.as_os_str().len(), LONGEST_HOME);
    home
}

/// Ends the shared connection if a test did not get to (ssh -O exit).
struct Master<'a>(&'a Client);

impl Master<'_> {
    fn control(&self, command: &str) -> Run {
        util::run(
            self.0
                .command("ssh")
                .args(["-O", command])
                .arg(&self.0.login),
            b"",
        )
    }
}

impl Drop for Master<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .command("ssh")
            .args(["-O", "exit"])
            .arg(&self.0.login)
            .output();
    }
}

fn logins(s: &Session) -> usize {
    s.vm.sshd.log().matches("Accepted publickey").count()
}

#[test]
#[cfg(target_os = "linux")]
fn second_ssh_rides_on_the_first_connection_until_ssh_o_exit() {
    let s = Session::new();
    let home = longest_home(&s);
    let client = sharing_client(&s, &home);
    let master = Master(&client);

    let first = util::run(&mut client.ssh("echo one"), b"");
    s.assert_quiet_success(&first, "the first ssh, which becomes the master");
    assert_eq!(first.stdout, b"one\n");
    let tunnel = s.tunnel_pid();
    // The socket is where the block says, under a home directory of the longest
    // length the README promises.
    let sockets: Vec<PathBuf> = std::fs::read_dir(home.join(".ssh"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let socket = &sockets[0];
    assert!(
        socket
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("vers-"),
        "{socket:?}"
    );

    let check = master.control("check");
    assert_eq!(check.code(), 0, "ssh -O check: {}", check.stderr);
    assert!(
        check.stderr.starts_with("Master running"),
        "{}",
        check.stderr
    );

    let second = util::run(&mut client.ssh("echo two; exit 3"), b"");
    assert_eq!(second.code(), 3, "{}", second.stderr);
    assert_eq!(second.stdout, b"two\n");
    assert_eq!(second.stderr, "");
    let copy = s.path("copied");
    let scp = util::run(
        client
            .command("scp")
            .arg(&client.config)
            .arg(client.remote(&copy)),
        b"",
    );
    s.assert_quiet_success(&scp, "scp over the shared connection");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&client.config).unwrap()
    );

    assert_eq!(
        s.vm.edge.sni_seen(),
        vec![Some(HOST.to_string())],
        "ssh, ssh and scp: one TLS connection through the edge"
    );
    assert_eq!(logins(&s), 1, "one login: {}", s.vm.sshd.log());
    assert_eq!(s.tunnel_pid(), tunnel, "the same tunnel carries them all");

    let exit = master.control("exit");
    assert_eq!(exit.code(), 0, "ssh -O exit: {}", exit.stderr);
    assert!(
        util::wait_gone(tunnel, GONE).is_some(),
        "the tunnel outlived ssh -O exit by {GONE:?}"
    );
    util::wait_until(GONE, "the control socket to go", || !socket.exists());
    let check = master.control("check");
    assert_ne!(check.code(), 0, "no master after ssh -O exit");

    // The next ssh opens a new connection and becomes the master again.
    let again = util::run(&mut client.ssh("echo three"), b"");
    s.assert_quiet_success(&again, "ssh after ssh -O exit");
    assert_eq!(s.vm.edge.sni_seen().len(), 2);
}

#[test]
fn with_control_persist_a_tunnel_failure_shows_only_as_ssh_s_own_message() {
    let s = Session::new();
    // A ProxyCommand that does not trust the test CA: the TLS handshake fails.
    let untrusting =
        s.vm.proxy_command(bin(), &s.w.ca)
            .replace(&format!("--cacert {} ", s.w.ca.pem_path.display()), "");
    assert!(!untrusting.contains("--cacert"), "{untrusting}");
    let plain = s.client_via("plain", &untrusting);
    let run = util::run(&mut plain.ssh("true"), b"");
    assert_eq!(run.code(), 255);
    assert!(
        run.stderr
            .contains("vers-tunnel: TLS handshake with x.vm.vers.sh"),
        "without sharing, the tunnel's line reaches the terminal: {}",
        run.stderr
    );

    let home = s.path("home");
    let shared = sharing_client(&s, &home);
    let text = std::fs::read_to_string(&shared.config)
        .unwrap()
        .replace(&s.vm.proxy_command(bin(), &s.w.ca), &untrusting);
    std::fs::write(&shared.config, text).unwrap();
    let _master = Master(&shared);
    let run = util::run(&mut shared.ssh("true"), b"");
    assert_eq!(run.code(), 255);
    assert!(
        !run.stderr.contains("vers-tunnel"),
        "ssh sent the tunnel's stderr to /dev/null: {}",
        run.stderr
    );
    assert!(!run.stderr.is_empty(), "ssh says something");

    // The README's way to get the tunnel's line back: no sharing for this run.
    let run = util::run(
        shared
            .command("ssh")
            .args(["-o", "ControlPath=none"])
            .arg(&shared.login)
            .arg("true"),
        b"",
    );
    assert_eq!(run.code(), 255);
    assert!(
        run.stderr
            .contains("vers-tunnel: TLS handshake with x.vm.vers.sh"),
        "{}",
        run.stderr
    );
}
