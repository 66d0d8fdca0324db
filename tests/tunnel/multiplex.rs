//! ssh connection sharing through vers-tunnel, configured by the block
//! `vers-tunnel ssh-config --multiplex` prints: a second ssh to the VM rides on
//! the first one's connection (one TLS connection at the edge, one login at
//! sshd, one tunnel), `ssh -O exit` ends it, and what a failure looks like then.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::account::Account;
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

/// The value of the block's first `name` line.
fn block_option<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {block}"))
}

/// A client of the session's VM whose config is the test client's lines (key,
/// known_hosts, the ProxyCommand pointed at the test edge) followed by the
/// `--multiplex` block, with its `~` standing for `home`: ssh takes the first
/// value of each option, so ControlMaster and ControlPersist come from the block.
fn sharing_client(s: &Session, home: &Path) -> Client {
    let block = multiplex_block();
    let control_path = block_option(&block, "ControlPath");
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

/// `ssh ARGS` as a user would type it, from some configuration.
type Ssh<'a> = &'a dyn Fn(&[&str]) -> Command;

/// The files a throwaway account's ssh needs, in a directory it owns: its
/// key, the VM's host key as the *global* known_hosts (its own is /dev/null,
/// so ssh never writes, and never makes `~/.ssh`), and the test CA.
fn account_files(s: &Session, account: &Account) -> PathBuf {
    let dir = account.home.join("vt-client");
    std::fs::create_dir(&dir).unwrap();
    account.own(&dir);
    let key = dir.join("id_ed25519");
    std::fs::copy(&s.vm.sshd.client_key, &key).unwrap();
    account.own(&key);
    std::fs::write(
        dir.join("known_hosts"),
        format!("{HOST} {}\n", s.vm.sshd.host_key_pub),
    )
    .unwrap();
    std::fs::copy(&s.w.ca.pem_path, dir.join("ca.pem")).unwrap();
    dir
}

/// The test's ssh options for the account, ahead of a block (ssh takes the
/// first value of each option): the block's own ProxyCommand, flags and all,
/// with the test edge and CA added.
fn account_lines(s: &Session, dir: &Path, block: &str) -> String {
    let command = block_option(block, "ProxyCommand");
    let command = command
        .strip_suffix(" %h")
        .unwrap_or_else(|| panic!("{command} does not end in %h"));
    let edge = s.vm.edge.addr6();
    format!(
        "\
Host *.vm.vers.sh
    IdentityFile {dir}/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile /dev/null
    GlobalKnownHostsFile {dir}/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ProxyCommand {command} --cacert {dir}/ca.pem --connect-to %h:443:[{ip}]:{port} %h
",
        dir = dir.display(),
        ip = edge.ip(),
        port = edge.port(),
    )
}

/// Ends an account's shared connection if a test did not get to.
struct AccountMaster<'a>(Ssh<'a>);

impl Drop for AccountMaster<'_> {
    fn drop(&mut self) {
        let _ = (self.0)(&["-O", "exit", HOST]).output();
    }
}

/// What the account's user sees: the first ssh works and becomes the master
/// (its ProxyCommand made `~/.ssh`, private), a second rides on it (one TLS
/// connection, one login), `ssh -O exit` ends it, and the next ssh, with
/// `~/.ssh` now there, is a master again.
#[cfg(target_os = "linux")]
fn first_ssh_of_an_account_shares_its_connection(
    s: &Session,
    account: &Account,
    tunnel_bin: &Path,
    ssh: Ssh,
) {
    let dot_ssh = account.home.join(".ssh");
    assert!(
        !dot_ssh.exists(),
        "a fresh account has no ~/.ssh: {dot_ssh:?}"
    );
    let master = AccountMaster(ssh);

    let first = util::run(&mut ssh(&[HOST, "echo one"]), b"");
    s.assert_quiet_success(&first, "the account's first ssh");
    assert_eq!(first.stdout, b"one\n");
    let meta = std::fs::symlink_metadata(&dot_ssh).unwrap();
    assert!(meta.is_dir(), "{dot_ssh:?}");
    assert_eq!(meta.uid(), account.uid, "~/.ssh belongs to the account");
    assert_eq!(meta.mode() & 0o777, 0o700, "~/.ssh is private");
    let sockets: Vec<PathBuf> = std::fs::read_dir(&dot_ssh)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    assert!(
        sockets[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("vers-"),
        "{sockets:?}"
    );
    let tunnel = util::wait_single_pid(tunnel_bin, account.home.to_str().unwrap(), GONE);

    let check = util::run(&mut ssh(&["-O", "check", HOST]), b"");
    assert_eq!(check.code(), 0, "ssh -O check: {}", check.stderr);
    assert!(
        check.stderr.starts_with("Master running"),
        "{}",
        check.stderr
    );
    let second = util::run(&mut ssh(&[HOST, "echo two"]), b"");
    s.assert_quiet_success(&second, "the account's second ssh");
    assert_eq!(second.stdout, b"two\n");
    assert_eq!(
        s.vm.edge.sni_seen(),
        vec![Some(HOST.to_string())],
        "two ssh runs, one TLS connection through the edge"
    );
    assert_eq!(logins(s), 1, "one login: {}", s.vm.sshd.log());

    let exit = util::run(&mut ssh(&["-O", "exit", HOST]), b"");
    assert_eq!(exit.code(), 0, "ssh -O exit: {}", exit.stderr);
    assert!(
        util::wait_gone(tunnel, GONE).is_some(),
        "the tunnel outlived ssh -O exit by {GONE:?}"
    );
    util::wait_until(GONE, "the control socket to go", || !sockets[0].exists());

    let again = util::run(&mut ssh(&[HOST, "echo three"]), b"");
    s.assert_quiet_success(&again, "ssh after ssh -O exit, with ~/.ssh there");
    assert_eq!(s.vm.edge.sni_seen().len(), 2);
    let exit = util::run(&mut ssh(&["-O", "exit", HOST]), b"");
    assert_eq!(exit.code(), 0, "ssh -O exit: {}", exit.stderr);
    drop(master);

    // ssh sends a sharing tunnel's stderr to /dev/null; without a ControlPath
    // it reaches the terminal, and making ~/.ssh says nothing there.
    std::fs::remove_dir_all(&dot_ssh).unwrap();
    let unshared = util::run(&mut ssh(&["-o", "ControlPath=none", HOST, "true"]), b"");
    s.assert_quiet_success(&unshared, "ssh without sharing, making ~/.ssh");
    assert!(dot_ssh.is_dir(), "{dot_ssh:?}");
}

#[test]
#[cfg(target_os = "linux")]
fn an_account_without_dot_ssh_shares_a_connection_from_its_first_ssh() {
    let s = Session::new();
    let account = Account::create();
    let dir = account_files(&s, &account);
    let bin_copy = dir.join("vers-tunnel");
    account.copy_of_bin(&bin_copy);
    let block = util::run(
        Command::new(&bin_copy)
            .args(["ssh-config", "--multiplex", "--path"])
            .arg(&bin_copy),
        b"",
    );
    block.assert_clean();
    let block = String::from_utf8(block.stdout).unwrap();
    let config = dir.join("ssh_config");
    std::fs::write(&config, account_lines(&s, &dir, &block) + &block).unwrap();
    let ssh = |args: &[&str]| {
        let mut cmd = account.command("ssh");
        cmd.arg("-F").arg(&config).args(args);
        cmd
    };
    first_ssh_of_an_account_shares_its_connection(&s, &account, &bin_copy, &ssh);
}

#[test]
#[cfg(target_os = "linux")]
fn the_system_wide_block_shares_a_connection_from_a_new_account_s_first_ssh_whatever_its_home() {
    let s = Session::new();
    let account = Account::create();
    let dir = account_files(&s, &account);
    // install.sh writes the drop-in into a private etc/ssh, whose ssh_config
    // (the test's lines, then the drop-ins, as Debian's includes them) ssh
    // reads as /etc/ssh/ssh_config, through a private mount for it alone.
    let etc = s.path("etc");
    let ssh_etc = etc.join("ssh");
    std::fs::create_dir_all(&ssh_etc).unwrap();
    let drop_ins = ssh_etc.join("ssh_config.d");
    let include = format!("Include {}/*.conf\n", drop_ins.display());
    std::fs::write(ssh_etc.join("ssh_config"), &include).unwrap();
    let prefix = dir.join("bin");
    let install = util::run(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
            .args(["--binary", util::bin(), "--prefix"])
            .arg(&prefix)
            .args(["--system-ssh-config", "--multiplex"])
            .env("VERS_TUNNEL_SSH_ETC", &ssh_etc),
        b"",
    );
    assert_eq!(install.code(), 0, "install.sh: {}", install.stderr);
    let block = std::fs::read_to_string(drop_ins.join("vers-tunnel.conf")).unwrap();
    std::fs::write(
        ssh_etc.join("ssh_config"),
        account_lines(&s, &dir, &block) + &include,
    )
    .unwrap();
    // As in a CI runner's container, HOME is not the passwd entry's home
    // directory, where ssh puts the socket: the tunnel makes ~/.ssh there.
    let other_home = dir.clone();
    let ssh = |args: &[&str]| {
        let mut cmd = account.command("env");
        cmd.arg(format!("HOME={}", other_home.display())).arg("ssh");
        util::with_etc(&mut cmd, &etc, &["ssh/ssh_config"]);
        cmd.args(args);
        cmd
    };
    first_ssh_of_an_account_shares_its_connection(&s, &account, &prefix.join("vers-tunnel"), &ssh);
    assert!(
        !other_home.join(".ssh").exists(),
        "nothing made under $HOME"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_dot_ssh_that_belongs_to_another_user_is_refused_before_connecting() {
    let account = Account::create();
    let bin_copy = account.home.join("vers-tunnel");
    account.copy_of_bin(&bin_copy);
    // Nothing listens on the edge's port: a tunnel that got past the check
    // would fail to connect (exit 3) instead.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let edge = closed.local_addr().unwrap();
    drop(closed);
    let tunnel = || {
        let mut cmd = account.command(&bin_copy);
        cmd.args(["--make-ssh-dir", "--connect-to"])
            .arg(format!("{HOST}:443:127.0.0.1:{}", edge.port()))
            .arg(HOST);
        cmd
    };
    let dot_ssh = account.home.join(".ssh");

    // Another user's, directly or through a symlink: whoever owns it could put
    // a socket of their own where ssh looks for the shared connection.
    const NOBODY: u32 = 65534;
    let elsewhere = account.home.join("elsewhere");
    for (what, setup) in [
        ("a directory", None),
        ("a symlink to a directory", Some(&elsewhere)),
    ] {
        let dir = setup.unwrap_or(&dot_ssh);
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(NOBODY), None).unwrap();
        if let Some(target) = setup {
            std::os::unix::fs::symlink(target, &dot_ssh).unwrap();
        }
        let run = util::run(&mut tunnel(), b"");
        assert_eq!(run.code(), 1, "{what} of uid {NOBODY}: {}", run.stderr);
        assert_eq!(
            run.stderr,
            format!(
                "vers-tunnel: {} belongs to uid {NOBODY}, who could take over the connections ssh \
                 shares through it: chown it to yourself\n",
                dot_ssh.display()
            ),
            "{what}"
        );
        std::fs::remove_file(&dot_ssh)
            .or_else(|_| std::fs::remove_dir(&dot_ssh))
            .unwrap();
    }

    // The account's own, through a symlink (dotfiles), or root's: used as it is.
    account.own(&elsewhere);
    std::os::unix::fs::symlink(&elsewhere, &dot_ssh).unwrap();
    let run = util::run(&mut tunnel(), b"");
    assert_eq!(
        run.code(),
        3,
        "past the check, to the closed port: {}",
        run.stderr
    );
    std::fs::remove_file(&dot_ssh).unwrap();
    std::fs::create_dir(&dot_ssh).unwrap();
    let run = util::run(&mut tunnel(), b"");
    assert_eq!(run.code(), 3, "root's ~/.ssh: {}", run.stderr);
}
