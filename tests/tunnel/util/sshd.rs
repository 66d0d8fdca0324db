//! A throwaway OpenSSH server on `[::1]` (the Vers edge reaches VMs over IPv6),
//! and the client side that goes with it: a key, a `known_hosts` pinning the
//! server's host key, and an `ssh_config` whose `ProxyCommand` is vers-tunnel.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::common::clean_env;
use super::common::deadline::poll_until;
use super::common::edge::{Edge, EdgeBuilder};
use super::common::pki::Ca;
use super::common::process::run;

/// How long sshd may take to start listening.
const STARTUP: Duration = Duration::from_secs(10);

/// Returns the path of `program`, or panics saying which Debian package to install.
pub fn require(program: &str, package: &str) -> PathBuf {
    // sshd lives in /usr/sbin, which is not on every PATH.
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed; this test drives the real program: \
             apt-get install -y {package} (.ci/run installs it)"
        )
    })
}

/// Runs `cmd` to completion (within `HANG`) and panics with its stderr unless it succeeds.
pub fn check(cmd: &mut Command) -> Vec<u8> {
    let out = run(cmd, b"");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        out.stderr
    );
    out.stdout
}

/// The account the client logs in as: root when the tests run as root (as in CI),
/// otherwise the current user (a non-root sshd can only log that user in).
pub fn login_user() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return "root".into();
    }
    let out = check(Command::new("id").arg("-un"));
    String::from_utf8_lossy(&out).trim().to_string()
}

/// A running `sshd -D` with keys in its own directory; killed when dropped.
pub struct Sshd {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    /// The client's private key, authorised for [`login_user`].
    pub client_key: PathBuf,
    /// `ssh-ed25519 AAAA...`: the host key clients must see.
    pub host_key_pub: String,
}

impl Sshd {
    /// Generates keys and a config into `dir` and starts sshd on `[::1]` with a
    /// free port, retrying when another process takes the port first.
    pub fn start(dir: &Path) -> Sshd {
        let sshd = require("sshd", "openssh-server");
        require("ssh-keygen", "openssh-client");
        let dir = dir.join("sshd");
        std::fs::create_dir_all(&dir).unwrap();
        let host_key = dir.join("ssh_host_ed25519_key");
        let client_key = dir.join("id_ed25519");
        for (key, comment) in [(&host_key, "test-host"), (&client_key, "test-client")] {
            check(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(key),
            );
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).unwrap();
        let host_key_pub = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let host_key_pub = host_key_pub.split_whitespace().take(2).collect::<Vec<_>>();
        let host_key_pub = host_key_pub.join(" ");
        ensure_privsep_dir();

        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            let config = dir.join("sshd_config");
            std::fs::write(&config, sshd_config(addr, &host_key, &authorized)).unwrap();
            let log = dir.join("sshd.log");
            let mut cmd = Command::new(&sshd);
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                // Out of the terminal's process group: Ctrl-C in the demo
                // must reach the ssh session, not the server.
                .process_group(0);
            die_with_parent(&mut cmd);
            let child = cmd.spawn().unwrap();
            let mut server = Sshd {
                child,
                addr,
                dir: dir.clone(),
                client_key: client_key.clone(),
                host_key_pub: host_key_pub.clone(),
            };
            if server.wait_listening() {
                return server;
            }
            last_log = server.log();
        }
        panic!("sshd could not get a port on [::1] in 5 tries: {last_log}");
    }

    /// Where sshd listens: `[::1]:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What sshd has logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Waits until sshd's own log says it listens on its port: from then on
    /// the port is this sshd's, and nothing else can answer there. `false` if
    /// sshd exited because another process took the port first (the caller
    /// tries another); panics if it failed otherwise or took too long.
    fn wait_listening(&mut self) -> bool {
        let listening = format!(
            "Server listening on {} port {}.",
            self.addr.ip(),
            self.addr.port()
        );
        // Ok once listening, Err(status) if sshd exited.
        let outcome = poll_until(STARTUP, || {
            if self.log().contains(&listening) {
                return Some(Ok(()));
            }
            self.child.try_wait().unwrap().map(Err)
        });
        match outcome {
            Some(Ok(())) => true,
            Some(Err(_)) if self.log().contains("Address already in use") => false,
            Some(Err(status)) => panic!("sshd exited ({status}): {}", self.log()),
            None => panic!(
                "sshd did not listen on {} within {STARTUP:?}: {}",
                self.addr,
                self.log()
            ),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_config(addr: SocketAddr, host_key: &Path, authorized: &Path) -> String {
    let mut c = String::new();
    writeln!(c, "ListenAddress {addr}").unwrap();
    writeln!(c, "HostKey {}", host_key.display()).unwrap();
    writeln!(c, "AuthorizedKeysFile {}", authorized.display()).unwrap();
    c.push_str(
        "\
PidFile none
UsePAM no
# The keys live in a temp dir, not in a home directory sshd would vet.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
LogLevel INFO
",
    );
    c
}

/// A port that was free on `[::1]` a moment ago. sshd cannot be given port 0
/// and report the one it got, so [`Sshd::wait_listening`] reads its log, and
/// the caller retries if another process takes the port in between.
fn free_port() -> u16 {
    let listener = TcpListener::bind("[::1]:0")
        .unwrap_or_else(|e| panic!("cannot bind [::1]:0 ({e}): these tests need IPv6 loopback"));
    listener.local_addr().unwrap().port()
}

/// sshd refuses to start without its privilege separation directory, which a
/// fresh container may not have yet.
fn ensure_privsep_dir() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
}

/// Has the kernel send `cmd`'s process SIGTERM when the thread that spawned it
/// ends, so that a test or demo killed outright leaves no server behind.
/// Linux only: elsewhere a killed test run leaves its servers running.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// There is no parent-death signal outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

/// The client side of a session with `sshd` through vers-tunnel: files in `dir`.
pub struct Client {
    /// The `ssh_config` to pass with `-F` to ssh, scp, sftp, and `rsync -e`.
    pub config: PathBuf,
    /// The `user@host` to log in as.
    pub login: String,
}

impl Client {
    /// Writes `known_hosts` (pinning `sshd`'s key for `host`: host-key checking
    /// stays on through the tunnel) and an `ssh_config` for `*.vm.vers.sh`
    /// whose ProxyCommand is `proxy_command`.
    pub fn new(dir: &Path, sshd: &Sshd, host: &str, proxy_command: &str) -> Client {
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("{host} {}\n", sshd.host_key_pub)).unwrap();
        let user = login_user();
        let config = dir.join("ssh_config");
        let text = format!(
            "\
Host *.vm.vers.sh
    User {user}
    IdentityFile {key}
    IdentitiesOnly yes
    UserKnownHostsFile {known_hosts}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ProxyCommand {proxy_command}
",
            key = sshd.client_key.display(),
            known_hosts = known_hosts.display(),
        );
        std::fs::write(&config, text).unwrap();
        Client {
            config,
            login: format!("{user}@{host}"),
        }
    }

    /// `program -F CONFIG` with an environment that cannot add keys or config.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        clean_env(&mut cmd).arg("-F").arg(&self.config);
        cmd
    }

    /// `ssh -F CONFIG user@host COMMAND`.
    pub fn ssh(&self, remote_command: &str) -> Command {
        let mut cmd = self.command("ssh");
        cmd.arg(&self.login).arg(remote_command);
        cmd
    }

    /// `user@host:PATH`, for scp and rsync.
    pub fn remote(&self, path: &Path) -> String {
        format!("{}:{}", self.login, path.display())
    }

    /// `ssh -F CONFIG`, the string for `rsync -e`.
    pub fn rsh(&self) -> String {
        format!("ssh -F {}", self.config.display())
    }
}

/// A stand-in for a Vers VM: sshd on `[::1]` behind a TLS edge that routes SNI
/// `host` to it, with a certificate for `host` from `ca`.
pub struct Vm {
    /// The VM's name, e.g. `x.vm.vers.sh`.
    pub host: String,
    pub sshd: Sshd,
    pub edge: Edge,
}

impl Vm {
    /// Starts sshd (keys in `dir`) and an edge on `[::1]` in front of it.
    pub fn start(dir: &Path, ca: &Ca, host: &str) -> Vm {
        let sshd = Sshd::start(dir);
        let edge = EdgeBuilder::new(ca.leaf(&[host]))
            .route(host, sshd.addr())
            .ipv6()
            .start();
        Vm {
            host: host.to_string(),
            sshd,
            edge,
        }
    }

    /// `BIN --cacert CA --connect-to %h:443:[::1]:PORT %h`: the real
    /// `ProxyCommand vers-tunnel %h`, pointed at this edge and trusting `ca`.
    pub fn proxy_command(&self, bin: &Path, ca: &Ca) -> String {
        self.proxy_command_run_by(&bin.display().to_string(), ca)
    }

    /// [`Vm::proxy_command`] with `program` (shell words, quoted as
    /// needed: e.g. Wine and the Windows binary) in place of `BIN`.
    pub fn proxy_command_run_by(&self, program: &str, ca: &Ca) -> String {
        let edge = self.edge.addr6();
        format!(
            "{program} --cacert {} --connect-to %h:443:[{}]:{} %h",
            ca.pem_path.display(),
            edge.ip(),
            edge.port()
        )
    }

    /// A client in `dir` logging in to this VM through `proxy_command`.
    pub fn client(&self, dir: &Path, proxy_command: &str) -> Client {
        Client::new(dir, &self.sshd, &self.host, proxy_command)
    }
}
