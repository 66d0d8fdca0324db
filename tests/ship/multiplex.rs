//! `vers-tunnel ssh-config --multiplex` and `install.sh --ssh-config --multiplex`,
//! as `ssh -G` reads them: connection sharing on, a control socket path that
//! fits, and `--persist` in ssh's own time format.

use std::fs;
use std::process::Command;

use crate::common::process::run_within;
use crate::util::{install_sh, ssh_g, ssh_option, temp_dir, text, BIN, RUN_DEADLINE};

/// What ssh appends to ControlPath while it creates the socket (`.` and 16
/// random characters), before renaming it into place.
const SSH_TEMPORARY_SUFFIX: usize = 17;
/// The smallest socket path limit among the systems ssh runs on (macOS's
/// `sun_path`, 104 bytes with its NUL; Linux has 108).
const SOCKET_PATH_LIMIT: usize = 104;

fn ssh_config(args: &[&str]) -> String {
    let out = run_within(
        Command::new(BIN).arg("ssh-config").args(args),
        b"",
        RUN_DEADLINE,
    );
    out.assert_success(&format!("vers-tunnel ssh-config {args:?}"));
    text(&out.stdout)
}

#[test]
fn multiplex_block_shares_connections_through_a_short_private_socket_path() {
    let dir = temp_dir("multiplex-block");
    let config = dir.join("config");
    fs::write(&config, ssh_config(&["--multiplex"])).unwrap();
    let vm = ssh_g(&config, "abc123.vm.vers.sh");
    assert_eq!(ssh_option(&vm, "controlmaster").as_deref(), Some("auto"));
    assert_eq!(
        ssh_option(&vm, "controlpersist").as_deref(),
        Some("600"),
        "10 minutes by default"
    );
    // ssh -G shows the path expanded: ~ to the user's home, %C to 40 hex digits.
    let path = ssh_option(&vm, "controlpath").unwrap();
    let (home, hash) = path
        .split_once("/.ssh/vers-")
        .unwrap_or_else(|| panic!("{path}"));
    assert!(
        hash.len() == 40 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{path}"
    );
    assert!(home.starts_with('/'), "{path}");
    assert!(
        path.len() + SSH_TEMPORARY_SUFFIX < SOCKET_PATH_LIMIT,
        "{path} is too long for a socket"
    );
    // The hash covers the host: two VMs get two sockets.
    let other = ssh_g(&config, "def456.vm.vers.sh");
    assert_ne!(ssh_option(&other, "controlpath"), Some(path));
    // Everything the plain block sets is still there.
    assert!(ssh_option(&vm, "proxycommand").is_some_and(|c| c.ends_with(" %h")));
    assert_eq!(ssh_option(&vm, "user").as_deref(), Some("root"));
    assert_eq!(
        ssh_option(&ssh_g(&config, "example.com"), "controlmaster").as_deref(),
        Some("false")
    );
}

#[test]
fn persist_durations_mean_to_ssh_what_they_say() {
    let dir = temp_dir("multiplex-persist");
    let config = dir.join("config");
    for (duration, seconds) in [
        ("90", "90"),
        ("30s", "30"),
        ("15m", "900"),
        ("1h30m", "5400"),
        ("2d", "172800"),
        ("1W", "604800"),
    ] {
        fs::write(&config, ssh_config(&["--multiplex", "--persist", duration])).unwrap();
        let vm = ssh_g(&config, "x.vm.vers.sh");
        assert_eq!(
            ssh_option(&vm, "controlpersist").as_deref(),
            Some(seconds),
            "--persist {duration}"
        );
    }
    for (args, reason) in [
        (&["--multiplex", "--persist", "0"][..], "is zero"),
        (&["--multiplex", "--persist", "10x"], "is not a duration"),
        (&["--multiplex", "--persist", "yes"], "is not a duration"),
        (&["--persist", "10m"], "--multiplex"),
    ] {
        let out = run_within(
            Command::new(BIN).arg("ssh-config").args(args),
            b"",
            RUN_DEADLINE,
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
        let err = out.stderr.clone();
        assert!(
            err.starts_with("vers-tunnel: ") && err.lines().count() == 1 && err.contains(reason),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn install_ssh_config_multiplex_writes_the_block_and_a_rerun_without_it_takes_it_out() {
    let dir = temp_dir("multiplex-install");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let config = home.join(".ssh/config");
    let install = |extra: &[&str]| {
        let mut args = vec!["--binary", BIN, "--prefix", prefix_arg, "--ssh-config"];
        args.extend_from_slice(extra);
        let out = install_sh(&home, &args, &[], RUN_DEADLINE);
        out.assert_success(&format!("install.sh {args:?}"));
        ssh_g(&config, "x.vm.vers.sh")
    };

    let vm = install(&["--multiplex", "--persist", "1h"]);
    assert_eq!(ssh_option(&vm, "controlmaster").as_deref(), Some("auto"));
    assert_eq!(ssh_option(&vm, "controlpersist").as_deref(), Some("3600"));
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!(
            "{} --make-ssh-dir %h",
            prefix.join("vers-tunnel").display()
        )),
        "the tunnel makes ~/.ssh, where the control socket goes, when it is missing"
    );
    let vm = install(&[]);
    assert_eq!(
        ssh_option(&vm, "controlmaster").as_deref(),
        Some("false"),
        "re-running without --multiplex turns sharing off again"
    );
    assert_eq!(
        ssh_option(&vm, "proxycommand"),
        Some(format!("{} %h", prefix.join("vers-tunnel").display()))
    );

    for (args, reason) in [
        (
            &["--binary", BIN, "--prefix", prefix_arg, "--multiplex"][..],
            "--multiplex goes with",
        ),
        (
            &[
                "--binary",
                BIN,
                "--prefix",
                prefix_arg,
                "--ssh-config",
                "--persist",
                "1h",
            ],
            "--persist needs --multiplex",
        ),
    ] {
        let out = install_sh(&home, args, &[], RUN_DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            out.stderr.clone().contains(reason),
            "{args:?}: {}",
            out.stderr.clone()
        );
    }

    let etc = dir.join("etc/ssh");
    fs::create_dir_all(&etc).unwrap();
    let out = install_sh(
        &home,
        &[
            "--binary",
            BIN,
            "--prefix",
            prefix_arg,
            "--system-ssh-config",
            "--multiplex",
        ],
        &[("VERS_TUNNEL_SSH_ETC", etc.as_path())],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --system-ssh-config --multiplex");
    let drop_in = etc.join("ssh_config.d/vers-tunnel.conf");
    let vm = ssh_g(&drop_in, "x.vm.vers.sh");
    assert_eq!(ssh_option(&vm, "controlmaster").as_deref(), Some("auto"));
    assert_eq!(ssh_option(&vm, "controlpersist").as_deref(), Some("600"));
}
