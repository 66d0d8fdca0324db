//! `vers-tunnel ssh-config --install` and `--uninstall` on a throwaway HOME: the
//! block at the top of `~/.ssh/config` as ssh reads it, every other byte of the
//! user's file kept (no final newline, CRLF, bytes that are not UTF-8), the mode
//! kept, a symlinked config edited where it points, and the user's file as it
//! was whenever the edit fails.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::process::{run_within, Run};
use crate::util::{
    assert_vms_go_through, install_sh, mode, ssh_g, ssh_option, temp_dir, text, BIN, RUN_DEADLINE,
};

const START_MARKER: &str = "# >>> vers-tunnel >>>";
const END_MARKER: &str = "# <<< vers-tunnel <<<";

/// `vers-tunnel ssh-config ARGS` with `home` as HOME.
fn ssh_config(home: &Path, args: &[&str]) -> Run {
    run_within(
        Command::new(BIN)
            .arg("ssh-config")
            .args(args)
            .env("HOME", home),
        b"",
        RUN_DEADLINE,
    )
}

/// A HOME with `~/.ssh` (0700) and `content` as its config, at `mode`.
fn home_with_config(dir: &Path, content: &[u8], config_mode: u32) -> (PathBuf, PathBuf) {
    let home = dir.join("home");
    let ssh_dir = home.join(".ssh");
    fs::create_dir_all(&ssh_dir).unwrap();
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let config = ssh_dir.join("config");
    fs::write(&config, content).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(config_mode)).unwrap();
    (home, config)
}

/// The files in `dir` other than `keep`: a temporary file left behind shows here.
fn others(dir: &Path, keep: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != keep)
        .collect()
}

fn ok(out: &Run, what: &str) -> String {
    out.assert_success(what);
    assert_eq!(text(&out.stdout), "", "{what}: nothing on stdout");
    out.stderr.clone()
}

#[test]
fn install_puts_the_block_on_top_keeps_every_byte_and_mode_and_uninstall_restores_them() {
    // No final newline, CRLF in the middle, a byte that is not UTF-8.
    let user: &[u8] = b"# mine\nHost foo\r\n    User bar\n# caf\xe9\nHost last\n    User x";
    let dir = temp_dir("ssh-install");
    let (home, config) = home_with_config(dir.path(), user, 0o640);

    let err = ok(&ssh_config(&home, &["--install"]), "ssh-config --install");
    assert_eq!(
        err,
        format!(
            "vers-tunnel: added the vers-tunnel block at the top of {}\n",
            config.display()
        )
    );
    let installed = fs::read(&config).unwrap();
    assert!(installed.starts_with(START_MARKER.as_bytes()));
    assert!(
        installed.ends_with(user),
        "the user's bytes follow the block"
    );
    assert_eq!(mode(&config), 0o640, "mode kept");
    assert_eq!(others(&home.join(".ssh"), "config"), Vec::<String>::new());

    assert_vms_go_through(&config, &fs::canonicalize(BIN).unwrap());

    let err = ok(
        &ssh_config(&home, &["--install"]),
        "ssh-config --install, again",
    );
    assert!(
        err.ends_with("already has this vers-tunnel block; nothing changed\n"),
        "{err}"
    );
    assert_eq!(
        fs::read(&config).unwrap(),
        installed,
        "a re-run changes nothing"
    );

    // Other options replace the block in place; the user's bytes stay.
    let err = ok(
        &ssh_config(&home, &["--install", "--host", "*.example.test"]),
        "ssh-config --install --host",
    );
    assert!(err.contains("updated the vers-tunnel block in"), "{err}");
    let updated = fs::read(&config).unwrap();
    assert!(updated.ends_with(user));
    let other = ssh_g(&config, "vm.example.test");
    assert!(ssh_option(&other, "proxycommand").is_some(), "{other}");

    let err = ok(
        &ssh_config(&home, &["--uninstall"]),
        "ssh-config --uninstall",
    );
    assert!(err.contains("removed the vers-tunnel block from"), "{err}");
    assert_eq!(fs::read(&config).unwrap(), user, "the exact original bytes");
    assert_eq!(mode(&config), 0o640);
    let err = ok(
        &ssh_config(&home, &["--uninstall"]),
        "ssh-config --uninstall, again",
    );
    assert!(err.contains("no vers-tunnel block in"), "{err}");
    assert_eq!(fs::read(&config).unwrap(), user);
}

#[test]
fn install_writes_a_crlf_block_into_a_crlf_config() {
    let user = "Host foo\r\n    User bar\r\n";
    let dir = temp_dir("ssh-install-crlf");
    let (home, config) = home_with_config(dir.path(), user.as_bytes(), 0o600);
    ok(&ssh_config(&home, &["--install"]), "ssh-config --install");
    let installed = fs::read_to_string(&config).unwrap();
    assert_eq!(
        installed.matches('\n').count(),
        installed.matches("\r\n").count(),
        "every line ends in CRLF: {installed:?}"
    );
    assert!(installed.ends_with(user));
    // ssh reads it (it drops the CR as whitespace).
    let vm = ssh_g(&config, "x.vm.vers.sh");
    assert_eq!(ssh_option(&vm, "user").as_deref(), Some("root"));
    let err = ok(&ssh_config(&home, &["--install"]), "again");
    assert!(err.contains("nothing changed"), "{err}");
    ok(
        &ssh_config(&home, &["--uninstall"]),
        "ssh-config --uninstall",
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), user);
}

#[test]
fn install_on_a_fresh_home_makes_ssh_dir_0700_and_config_0600() {
    let dir = temp_dir("ssh-install-fresh");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let err = ok(&ssh_config(&home, &["--install"]), "ssh-config --install");
    let ssh_dir = home.join(".ssh");
    assert!(
        err.starts_with(&format!(
            "vers-tunnel: created {} (mode 0700)\n",
            ssh_dir.display()
        )),
        "{err}"
    );
    assert_eq!(mode(&ssh_dir), 0o700);
    assert_eq!(mode(&ssh_dir.join("config")), 0o600);
    ok(
        &ssh_config(&home, &["--uninstall"]),
        "ssh-config --uninstall",
    );
    assert_eq!(fs::read(ssh_dir.join("config")).unwrap(), b"");
}

/// A symlinked config (a dotfiles checkout) is edited where the link ends, the
/// link is kept, and a relative link is relative to its own directory; a link
/// to a file not made yet gets the file.
#[test]
fn install_edits_a_symlinked_config_where_it_points_and_keeps_the_link() {
    let dir = temp_dir("ssh-install-link");
    let home = dir.join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let dotfiles = dir.join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    let real = dotfiles.join("ssh-config");
    fs::write(&real, "Host foo\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
    // config -> ../../dotfiles/link -> ssh-config
    std::os::unix::fs::symlink("ssh-config", dotfiles.join("link")).unwrap();
    let link = home.join(".ssh/config");
    std::os::unix::fs::symlink("../../dotfiles/link", &link).unwrap();

    let err = ok(&ssh_config(&home, &["--install"]), "ssh-config --install");
    assert!(
        err.contains(&real.display().to_string()),
        "names the real file: {err}"
    );
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(fs::symlink_metadata(dotfiles.join("link"))
        .unwrap()
        .is_symlink());
    assert!(fs::read_to_string(&real).unwrap().starts_with(START_MARKER));
    assert_eq!(mode(&real), 0o644);
    ok(
        &ssh_config(&home, &["--uninstall"]),
        "ssh-config --uninstall",
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), "Host foo\n");
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());

    let dangling = dotfiles.join("not-yet");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&dangling, &link).unwrap();
    ok(
        &ssh_config(&home, &["--install"]),
        "ssh-config --install, dangling link",
    );
    assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(fs::read_to_string(&dangling)
        .unwrap()
        .starts_with(START_MARKER));
    assert_eq!(mode(&dangling), 0o600);

    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("config", &link).unwrap();
    let out = ssh_config(&home, &["--install"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a link to itself: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cannot follow the symlink"),
        "{}",
        out.stderr
    );
}

#[test]
fn install_and_uninstall_refuse_markers_that_are_not_one_block_and_change_nothing() {
    let broken = format!("Host a\n{END_MARKER}\n{START_MARKER}\nHost c\n{START_MARKER}\n");
    let dir = temp_dir("ssh-install-markers");
    let (home, config) = home_with_config(dir.path(), broken.as_bytes(), 0o600);
    for args in [&["--install"][..], &["--uninstall"]] {
        let out = ssh_config(&home, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            out.stderr,
            format!(
                "vers-tunnel: {} has vers-tunnel markers that do not form one block (start at \
                 line(s) 3 5, end at line(s) 2); fix them by hand, nothing was changed\n",
                config.display()
            ),
            "{args:?}"
        );
        assert_eq!(fs::read_to_string(&config).unwrap(), broken);
    }
}

/// The new content goes to a new file beside the config and is renamed over
/// it, never written into the user's file in place: where no new file can be
/// made, the edit fails and the config is exactly as it was, even though the
/// config itself is writable.
#[test]
fn install_that_cannot_write_beside_the_config_leaves_it_as_it_was() {
    let user = b"Host foo\n    User bar\n";
    let dir = temp_dir("ssh-install-readonly");
    let (home, config) = home_with_config(dir.path(), user, 0o666);
    let ssh_dir = home.join(".ssh");
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
    // As nobody: the directory (root's, 0755) refuses a new file.
    let out = run_within(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(BIN)
            .args(["ssh-config", "--install"])
            .env("HOME", &home),
        b"",
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "vers-tunnel: cannot write in {}: permission denied\n",
            ssh_dir.display()
        )
    );
    assert_eq!(fs::read(&config).unwrap(), user);
    assert_eq!(others(&ssh_dir, "config"), Vec::<String>::new());
}

/// As root, a HOME that belongs to another user is refused: the edit would
/// leave root-owned files in it.
#[test]
fn install_as_root_refuses_another_users_home() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "run this test as root (CI does)");
    let dir = temp_dir("ssh-install-foreign");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let out = ssh_config(&home, &["--install"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "vers-tunnel: running as root with the home directory {}, which belongs to another \
             user; run it as that user, without sudo\n",
            home.display()
        )
    );
    assert!(!home.join(".ssh").exists());
}

#[test]
fn install_and_uninstall_usage_errors_are_one_line_and_status_2() {
    let dir = temp_dir("ssh-install-usage");
    for (args, reason) in [
        (&["--install", "--uninstall"][..], "exclude each other"),
        (
            &["--uninstall", "--multiplex"],
            "takes no --host, --path or --multiplex",
        ),
        (
            &["--uninstall", "--host", "x"],
            "takes no --host, --path or --multiplex",
        ),
    ] {
        let out = ssh_config(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            out.stderr.starts_with("vers-tunnel: ")
                && out.stderr.lines().count() == 1
                && out.stderr.contains(reason),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = run_within(
        Command::new(BIN)
            .args(["ssh-config", "--install"])
            .env_remove("HOME"),
        b"",
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        out.stderr,
        "vers-tunnel: HOME is not set, so there is no ssh config to edit\n"
    );
}

/// `install.sh --uninstall` takes the block out with the installed binary,
/// before removing anything: one older than the script (no `--uninstall`),
/// or none at all, leaves everything as it was and says how to go on.
#[test]
fn install_sh_uninstall_without_a_binary_that_can_take_the_block_out_changes_nothing() {
    let dir = temp_dir("ssh-install-old-binary");
    let block = format!("{START_MARKER}\nHost *.vm.vers.sh\n{END_MARKER}\nHost foo\n");
    let (home, config) = home_with_config(dir.path(), block.as_bytes(), 0o600);
    let prefix = dir.join("bin");
    fs::create_dir_all(&prefix).unwrap();
    let old = prefix.join("vers-tunnel");
    // What a vers-tunnel from before --uninstall answers.
    fs::write(
        &old,
        "#!/bin/sh\necho \"vers-tunnel: unexpected argument '--uninstall' found (see --help)\" >&2\nexit 2\n",
    )
    .unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
    let prefix_arg = prefix.to_str().unwrap();

    // `install.sh --uninstall` refuses with `words`, and the config is as it was.
    let refused = |words: String| {
        let out = install_sh(
            &home,
            &["--uninstall", "--prefix", prefix_arg],
            &[],
            RUN_DEADLINE,
        );
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(out.stderr.contains(&words), "{}", out.stderr);
        assert_eq!(fs::read_to_string(&config).unwrap(), block);
    };
    refused(format!(
        "install.sh: error: {} has no ssh-config --uninstall (it is older than this \
         install.sh), so nothing was removed: pass --binary FILE",
        old.display()
    ));
    assert!(old.exists(), "the binary stays");

    // A newer one named takes the block out, then the old one goes.
    let out = install_sh(
        &home,
        &["--uninstall", "--binary", BIN, "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall --binary");
    assert_eq!(fs::read_to_string(&config).unwrap(), "Host foo\n");
    assert!(!old.exists());

    // No binary at all, and a block to take out.
    fs::write(&config, &block).unwrap();
    refused(format!(
        "has a vers-tunnel block, and there is no {} to take it out",
        old.display()
    ));
}
