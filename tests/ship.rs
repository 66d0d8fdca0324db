//! Shipping vers-tunnel: the `ssh-config` block as ssh itself reads it, `--version`,
//! install.sh on a throwaway HOME, prefix and /etc/ssh, the static musl binaries
//! reaching a loopback TLS edge by name, and the docs agreeing with the binary.
//!
//! Needs `ssh` (openssh-client), `file` and root, and for
//! the static builds the musl targets (install.sh adds them with rustup), `musl-tools`
//! or the GNU gcc, and for arm64 `gcc-aarch64-linux-gnu`, `libc6-dev-arm64-cross` and
//! `qemu-user`. A missing piece fails the test, never skips it.

// Windows runs none of these natively: its binary is tested from Linux,
// under Wine (tests/ship/windows.rs).
#![cfg(unix)]
// Elsewhere the Linux-only tests are compiled out (see `not_built_here`),
// leaving imports and helpers that only they use.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

// Shared with tests/tunnel and the demo; this crate uses only part of it.
#[allow(dead_code)]
#[path = "common/mod.rs"]
mod common;
#[path = "../examples/gen_docs/docs.rs"]
mod docs;
#[path = "ship/elf.rs"]
mod elf;
#[path = "ship/install_macos.rs"]
mod install_macos;
#[path = "../build/lockfile.rs"]
mod lockfile;
#[path = "ship/macho.rs"]
mod macho;
#[path = "ship/manpage.rs"]
mod manpage;
#[path = "ship/multiplex.rs"]
mod multiplex;
#[path = "ship/net.rs"]
mod net;
#[path = "ship/pages.rs"]
mod pages;
#[path = "ship/runner.rs"]
mod runner;
#[path = "ship/ssh_install.rs"]
mod ssh_install;
#[path = "ship/util.rs"]
mod util;
// Wine runs the Windows binary here on Linux only (tests/common/wine.rs).
#[cfg(target_os = "linux")]
#[path = "ship/windows.rs"]
mod windows;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[cfg(target_os = "linux")]
use common::dns::{in_private_network, Dns};
#[cfg(target_os = "linux")]
use common::private_etc::with_etc;
use common::process::run_within;
use elf::{assert_static, EM_AARCH64, EM_X86_64};
use net::{hosts_file, relay_through_edge};
use util::{
    assert_vms_go_through, install_sh, mode, ssh_g, ssh_option, static_target_dir, temp_dir, text,
    BIN, BUILD_DEADLINE, REPO, RUN_DEADLINE,
};

const START_MARKER: &str = "# >>> vers-tunnel >>>";
/// The edge's name for the static binaries: only 127.0.0.1, in their own /etc/hosts.
const EDGE_NAME: &str = "edge.ship.test";

/// Off Linux the tests that need it are compiled out: those that use network
/// or mount namespaces (a DNS server and `/etc` files of their own), `/proc`,
/// prctl, TCP_INFO, static Linux builds. This one puts that in every run's list and count
/// as ignored, so that none of them passes unseen; `grep -rn
/// 'target_os = "linux"' tests/` lists them.
#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "NOT RUN: the tests that need Linux (namespaces, /proc, prctl, TCP_INFO, static Linux builds) are not built here; grep -rn 'target_os = \"linux\"' tests/ lists them"]
fn _linux_only_tests_are_not_built_on_this_platform() {
    panic!("the Linux-only tests are not built on this platform");
}

// ---- vers-tunnel ssh-config and --version ------------------------------------------

#[test]
fn ssh_config_prints_a_block_ssh_reads_with_this_binary() {
    let dir = temp_dir("block");
    let out = run_within(Command::new(BIN).arg("ssh-config"), b"", RUN_DEADLINE);
    out.assert_success("vers-tunnel ssh-config");
    assert_eq!(out.stderr, "");
    let block = text(&out.stdout);
    let me = fs::canonicalize(BIN).unwrap();
    let lines: Vec<&str> = block.lines().collect();
    assert!(
        lines[0].starts_with(&format!("# vers-tunnel {}", env!("CARGO_PKG_VERSION"))),
        "{block}"
    );
    assert_eq!(
        lines[1..],
        [
            "Host *.vm.vers.sh".to_string(),
            "    User root".to_string(),
            format!("    ProxyCommand {} %h", me.display()),
            "    ServerAliveInterval 30".to_string(),
        ]
    );

    let config = dir.join("config");
    fs::write(&config, &block).unwrap();
    let resolved = ssh_g(&config, "abc123.vm.vers.sh");
    assert_eq!(ssh_option(&resolved, "user").as_deref(), Some("root"));
    assert_eq!(
        ssh_option(&resolved, "proxycommand"),
        Some(format!("{} %h", me.display()))
    );
    assert_eq!(
        ssh_option(&resolved, "serveraliveinterval").as_deref(),
        Some("30")
    );
    let checking = ssh_option(&resolved, "stricthostkeychecking");
    assert!(
        !matches!(checking.as_deref(), Some("false" | "no")),
        "host-key checking must stay on, got {checking:?}"
    );
    let other = ssh_g(&config, "example.com");
    assert_eq!(ssh_option(&other, "proxycommand"), None, "{other}");
}

#[test]
fn ssh_runs_the_proxy_command_from_a_path_with_spaces_quotes_and_percent() {
    let dir = temp_dir("quoting");
    let odd = dir.join("it's a 100%h dir");
    fs::create_dir_all(&odd).unwrap();
    let script = odd.join("vers-tunnel");
    let seen = dir.join("seen");
    fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n", seen.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();

    let out = run_within(
        Command::new(BIN)
            .args(["ssh-config", "--host", "*.example.test", "--path"])
            .arg(&script),
        b"",
        RUN_DEADLINE,
    );
    out.assert_success("vers-tunnel ssh-config --path");
    let config = dir.join("config");
    fs::write(&config, &out.stdout).unwrap();
    // The fake ProxyCommand exits at once, so ssh fails; what matters is that
    // ssh and the shell found it and passed it the host.
    let ssh = run_within(
        Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args(["-o", "BatchMode=yes", "vm1.example.test", "true"])
            .env("SHELL", "/bin/sh"),
        b"",
        RUN_DEADLINE,
    );
    assert_eq!(
        fs::read_to_string(&seen).unwrap_or_else(|e| panic!(
            "the ProxyCommand did not run ({e}); ssh said: {}",
            ssh.stderr
        )),
        "vm1.example.test\n"
    );
}

#[test]
fn ssh_config_refuses_what_it_cannot_write() {
    for args in [
        &["ssh-config", "--host", " "][..],
        &["ssh-config", "--path", "/opt/a\nb"],
        &["ssh-config", "--path", ""],
        &["ssh-config", "extra"],
    ] {
        let out = run_within(Command::new(BIN).args(args), b"", RUN_DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
        let err = out.stderr;
        assert!(
            err.starts_with("vers-tunnel: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn version_names_rustls_provider_roots_and_target() {
    let lock = fs::read_to_string(Path::new(REPO).join("Cargo.lock")).unwrap();
    let rustls = lockfile::locked_version(&lock, "rustls").unwrap();
    let out = run_within(Command::new(BIN).arg("--version"), b"", RUN_DEADLINE);
    out.assert_success("vers-tunnel --version");
    let version = text(&out.stdout);
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(
        lines[0],
        format!("vers-tunnel {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        lines[1],
        format!("rustls {rustls}, crypto provider ring"),
        "{version}"
    );
    let roots: usize = lines[2]
        .split(", ")
        .nth(1)
        .and_then(|s| s.strip_suffix(" built-in roots"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no root count in {version}"));
    assert!(roots > 100, "{roots} roots");
    assert!(lines[3].starts_with("built for "), "{version}");

    let short = run_within(Command::new(BIN).arg("-V"), b"", RUN_DEADLINE);
    assert_eq!(text(&short.stdout).lines().count(), 1);
}

// ---- install.sh ------------------------------------------------------------------

const USER_CONFIG: &str = "\
# my own settings
ServerAliveInterval 60

Host foo
    User bar
    HostName foo.example.test";

#[test]
fn install_ssh_config_is_idempotent_keeps_user_lines_and_uninstall_restores_them() {
    let dir = temp_dir("user-config");
    let home = dir.join("home");
    let ssh_dir = home.join(".ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let config = ssh_dir.join("config");
    // No final newline: it must survive byte for byte.
    fs::write(&config, USER_CONFIG).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let installed = prefix.join("vers-tunnel");
    let install = ["--binary", BIN, "--prefix", prefix_arg, "--ssh-config"];

    let out = install_sh(&home, &install, &[], RUN_DEADLINE);
    out.assert_success("install.sh --ssh-config");
    assert_eq!(mode(&installed) & 0o111, 0o111, "installed binary runs");
    let first = fs::read_to_string(&config).unwrap();
    assert!(first.starts_with(START_MARKER), "{first}");
    assert!(first.ends_with(USER_CONFIG), "user lines kept:\n{first}");
    assert_eq!(mode(&config), 0o640, "mode kept");

    assert_vms_go_through(&config, &installed);
    let foo = ssh_g(&config, "foo");
    assert_eq!(
        ssh_option(&foo, "serveraliveinterval").as_deref(),
        Some("60"),
        "the user's global line still applies to every host"
    );

    let out = install_sh(&home, &install, &[], RUN_DEADLINE);
    out.assert_success("install.sh --ssh-config, again");
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        first,
        "a re-run changes nothing"
    );
    assert!(out.stderr.contains("nothing changed"));

    // An edit outside the markers is the user's: a re-run keeps it and one block.
    let edited = format!("{first}\nHost bar\n    User baz\n");
    fs::write(&config, &edited).unwrap();
    let out = install_sh(&home, &install, &[], RUN_DEADLINE);
    out.assert_success("install.sh --ssh-config after an edit");
    let rerun = fs::read_to_string(&config).unwrap();
    assert_eq!(rerun.matches(START_MARKER).count(), 1, "{rerun}");
    assert_eq!(rerun, edited);

    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall");
    assert!(!installed.exists(), "binary removed");
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        format!("{USER_CONFIG}\nHost bar\n    User baz\n"),
        "uninstall leaves exactly the user's lines"
    );
    assert_eq!(mode(&config), 0o640);
}

#[test]
fn install_ssh_config_creates_ssh_dir_0700_and_config_0600() {
    let dir = temp_dir("fresh-home");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let out = install_sh(
        &home,
        &["--binary", BIN, "--prefix", prefix_arg, "--ssh-config"],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --ssh-config on a fresh HOME");
    assert_eq!(mode(&home.join(".ssh")), 0o700);
    let config = home.join(".ssh/config");
    assert_eq!(mode(&config), 0o600);
    let vm = ssh_g(&config, "x.vm.vers.sh");
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!("{} %h", prefix.join("vers-tunnel").display()))
    );

    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall");
    assert_eq!(fs::read_to_string(&config).unwrap(), "");
}

#[test]
fn install_ssh_config_edits_a_symlinked_config_where_it_points() {
    let dir = temp_dir("symlink");
    let home = dir.join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let real = dir.join("dotfiles-ssh-config");
    fs::write(&real, USER_CONFIG).unwrap();
    let link = home.join(".ssh/config");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let out = install_sh(
        &home,
        &["--binary", BIN, "--prefix", prefix_arg, "--ssh-config"],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --ssh-config with a symlinked config");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(fs::read_to_string(&real).unwrap().starts_with(START_MARKER));
    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(fs::read_to_string(&real).unwrap(), USER_CONFIG);
}

#[test]
fn install_refuses_a_config_with_unmatched_markers_and_changes_nothing() {
    let dir = temp_dir("broken-markers");
    let home = dir.join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let config = home.join(".ssh/config");
    let broken = format!("Host a\n    User b\n{START_MARKER}\nHost c\n");
    fs::write(&config, &broken).unwrap();
    let prefix = dir.join("bin");
    for args in [
        &[
            "--binary",
            BIN,
            "--prefix",
            prefix.to_str().unwrap(),
            "--ssh-config",
        ][..],
        // Nothing is installed: --binary names the vers-tunnel that edits the config.
        &[
            "--uninstall",
            "--binary",
            BIN,
            "--prefix",
            prefix.to_str().unwrap(),
        ],
    ] {
        let out = install_sh(&home, args, &[], RUN_DEADLINE);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            out.stderr.contains(
                "markers that do not form one block (start at line(s) 3, end at line(s) none)"
            ),
            "{}",
            out.stderr
        );
        assert_eq!(fs::read_to_string(&config).unwrap(), broken);
        // Refused before anything was installed, not half-way.
        assert!(!prefix.exists(), "{args:?}: {:?} was created", prefix);
    }
}

#[test]
fn install_system_ssh_config_writes_a_drop_in_and_checks_the_include() {
    let dir = temp_dir("system");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let etc = dir.join("etc/ssh");
    fs::create_dir_all(&etc).unwrap();
    let main_config = etc.join("ssh_config");
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let env = [("VERS_TUNNEL_SSH_ETC", etc.as_path())];
    let install = [
        "--binary",
        BIN,
        "--prefix",
        prefix_arg,
        "--system-ssh-config",
    ];

    // Without an Include line, ssh would never read the drop-in: say so.
    fs::write(&main_config, "Host *\n    SendEnv LANG\n").unwrap();
    let out = install_sh(&home, &install, &env, RUN_DEADLINE);
    out.assert_success("install.sh --system-ssh-config");
    let err = out.stderr;
    assert!(err.contains("does not include"), "{err}");

    fs::write(
        &main_config,
        format!(
            "Include {}/ssh_config.d/*.conf\n\nHost *\n    SendEnv LANG\n",
            etc.display()
        ),
    )
    .unwrap();
    let out = install_sh(&home, &install, &env, RUN_DEADLINE);
    out.assert_success("install.sh --system-ssh-config, with Include");
    assert!(!out.stderr.contains("does not include"));
    let drop_in = etc.join("ssh_config.d/vers-tunnel.conf");
    assert_eq!(mode(&drop_in), 0o644);
    let vm = ssh_g(&main_config, "x.vm.vers.sh");
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!("{} %h", prefix.join("vers-tunnel").display()))
    );
    assert!(
        !home.join(".ssh").exists(),
        "--system-ssh-config alone leaves HOME alone"
    );

    let out = install_sh(
        &home,
        &["--uninstall", "--system-ssh-config", "--prefix", prefix_arg],
        &env,
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall --system-ssh-config");
    assert!(!drop_in.exists());
}

#[test]
fn install_help_and_usage_errors() {
    let dir = temp_dir("help");
    let out = install_sh(dir.path(), &["--help"], &[], RUN_DEADLINE);
    out.assert_success("install.sh --help");
    let help = text(&out.stdout);
    for flag in [
        "--prefix DIR",
        "--static",
        "--ssh-config",
        "--system-ssh-config",
        "--uninstall",
        "VERS_TUNNEL_SSH_ETC",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    for args in [&["--bogus"][..], &["--prefix"], &["--target", "x"]] {
        let out = install_sh(dir.path(), args, &[], RUN_DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stderr.contains("see --help"), "{args:?}");
    }
}

#[test]
fn install_static_fails_clearly_when_the_musl_target_cannot_be_added() {
    let dir = temp_dir("no-target");
    let fake_bin = dir.join("fake-bin");
    let sysroot = dir.join("sysroot");
    fs::create_dir_all(&fake_bin).unwrap();
    fs::create_dir_all(sysroot.join("lib/rustlib")).unwrap();
    // A toolchain without the musl standard library, whose rustup cannot fetch it.
    for (name, body) in [
        ("cargo", "exit 0".to_string()),
        ("rustc", format!("echo '{}'", sysroot.display())),
        (
            "rustup",
            "echo 'error: could not download' >&2; exit 1".to_string(),
        ),
    ] {
        let path = fake_bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = install_sh(
        dir.path(),
        &["--static", "--prefix", dir.join("bin").to_str().unwrap()],
        &[("PATH", Path::new(&path))],
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = out.stderr;
    assert!(
        err.contains("could not add the Rust target") && err.contains("-unknown-linux-musl"),
        "{err}"
    );
    assert!(!dir.join("bin/vers-tunnel").exists());
}

// ---- static builds -----------------------------------------------------------------

/// The "done when": `./install.sh --static --ssh-config --prefix DIR`
/// gives a static binary that reaches an edge by name, ssh uses it, a re-run
/// changes nothing and --uninstall restores the config.
#[test]
#[cfg(target_os = "linux")]
fn static_install_is_static_small_configures_ssh_and_connects_by_name() {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "this test expects an x86_64 machine"
    );
    let dir = temp_dir("static");
    let home = dir.join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let config = home.join(".ssh/config");
    fs::write(&config, USER_CONFIG).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let target_dir = static_target_dir();
    let env = [("CARGO_TARGET_DIR", target_dir.as_path())];
    let install = ["--static", "--ssh-config", "--prefix", prefix_arg];

    let out = install_sh(&home, &install, &env, BUILD_DEADLINE);
    out.assert_success("install.sh --static --ssh-config");
    let bin = prefix.join("vers-tunnel");
    assert_static(&bin, EM_X86_64);
    let version = run_within(Command::new(&bin).arg("--version"), b"", RUN_DEADLINE);
    assert!(
        text(&version.stdout).contains("built for x86_64-unknown-linux-musl"),
        "{}",
        text(&version.stdout)
    );

    // musl's own resolver reads /etc/hosts.
    hosts_file(&dir, &[EDGE_NAME]);
    let mut cmd = Command::new(&bin);
    with_etc(&mut cmd, dir.path(), &["hosts"]);
    relay_through_edge(cmd, &dir, EDGE_NAME);

    let vm = ssh_g(&config, "x.vm.vers.sh");
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!("{} %h", bin.display()))
    );
    let configured = fs::read(&config).unwrap();
    let out = install_sh(&home, &install, &env, BUILD_DEADLINE);
    out.assert_success("install.sh --static --ssh-config, again");
    assert_eq!(
        fs::read(&config).unwrap(),
        configured,
        "a re-run changes nothing"
    );

    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall");
    assert_eq!(fs::read_to_string(&config).unwrap(), USER_CONFIG);
    assert!(!bin.exists());
}

/// The arm64 static build, cross-compiled here, runs (under qemu-user) and relays.
#[test]
#[cfg(target_os = "linux")]
fn static_aarch64_build_runs_and_connects() {
    let dir = temp_dir("static-arm64");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let prefix = dir.join("bin");
    let target_dir = static_target_dir();
    let out = install_sh(
        &home,
        &[
            "--static",
            "--target",
            "aarch64-unknown-linux-musl",
            "--prefix",
            prefix.to_str().unwrap(),
        ],
        &[("CARGO_TARGET_DIR", target_dir.as_path())],
        BUILD_DEADLINE,
    );
    out.assert_success("install.sh --static --target aarch64-unknown-linux-musl");
    let bin = prefix.join("vers-tunnel");
    assert_static(&bin, EM_AARCH64);
    let qemu = Path::new("qemu-aarch64");
    let version = run_within(
        Command::new(qemu).arg(&bin).arg("--version"),
        b"",
        RUN_DEADLINE,
    );
    version.assert_success("qemu-aarch64 vers-tunnel --version (Debian package qemu-user)");
    assert!(text(&version.stdout).contains("built for aarch64-unknown-linux-musl"));
    hosts_file(&dir, &[EDGE_NAME]);
    let mut cmd = Command::new(qemu);
    cmd.arg(&bin);
    with_etc(&mut cmd, dir.path(), &["hosts"]);
    relay_through_edge(cmd, &dir, EDGE_NAME);
}

/// Name resolution in the static binary is musl's own: it must read /etc/hosts
/// and ask the nameservers in /etc/resolv.conf (no NSS, no glibc). Both files are
/// replaced for the binary alone (a private mount namespace), and the DNS server
/// listens on port 53 of a private network namespace that also holds the edge.
#[test]
#[cfg(target_os = "linux")]
fn static_binary_resolves_names_from_etc_hosts_and_resolv_conf() {
    const HOSTS_NAME: &str = "edge-from-hosts.ship.test";
    const DNS_NAME: &str = "edge-from-dns.ship.test";
    let dir = temp_dir("static-resolve");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let prefix = dir.join("bin");
    let out = install_sh(
        &home,
        &["--static", "--prefix", prefix.to_str().unwrap()],
        &[("CARGO_TARGET_DIR", static_target_dir().as_path())],
        BUILD_DEADLINE,
    );
    out.assert_success("install.sh --static");
    let bin = prefix.join("vers-tunnel");

    in_private_network(move || {
        let dns = Dns::start(&[DNS_NAME]);
        hosts_file(&dir, &["localhost", HOSTS_NAME]);
        fs::write(
            dir.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n",
        )
        .unwrap();
        let in_private_etc = || {
            let mut cmd = Command::new(&bin);
            with_etc(&mut cmd, dir.path(), &["hosts", "resolv.conf"]);
            cmd
        };
        relay_through_edge(in_private_etc(), &dir, HOSTS_NAME);
        assert_eq!(
            dns.asked(HOSTS_NAME),
            0,
            "{HOSTS_NAME} came from /etc/hosts, not the nameserver"
        );
        relay_through_edge(in_private_etc(), &dir, DNS_NAME);
        assert!(
            dns.asked(DNS_NAME) > 0,
            "{DNS_NAME} was asked of the nameserver"
        );
    });
}
