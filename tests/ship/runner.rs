//! The README's other two commands: `./test.sh` (packages first, then the suite),
//! driven with stand-ins for apt-get, dpkg-query and cargo so that nothing is
//! really installed, and `cargo install --locked --path .`, for real.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::process::{run_within, Run};
use crate::common::tempdir::TempDir;
use crate::util::{static_target_dir, temp_dir, text, BUILD_DEADLINE, REPO, RUN_DEADLINE};

/// A directory of stand-in programs that log their arguments to `log`.
struct FakeTools {
    bin: PathBuf,
    log: PathBuf,
}

impl FakeTools {
    /// `uid` for `id -u`; `missing` are the packages dpkg-query calls not installed.
    fn new(dir: &TempDir, uid: u32, missing: &[&str]) -> FakeTools {
        let bin = dir.join("fake-bin");
        fs::create_dir_all(&bin).unwrap();
        let log = dir.join("calls");
        let sysroot = dir.join("sysroot");
        for target in [
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "x86_64-pc-windows-gnu",
        ] {
            fs::create_dir_all(sysroot.join("lib/rustlib").join(target).join("lib")).unwrap();
        }
        let logged = |name: &str| format!("echo \"{name} $*\" >> '{}'", log.display());
        let tools = [
            (
                "id",
                format!("[ \"$1\" = -u ] && echo {uid} || exec /usr/bin/id \"$@\""),
            ),
            (
                "dpkg-query",
                // The package is the last argument.
                format!(
                    "for a; do p=$a; done\n\
                     case ' {} ' in *\" $p \"*) echo 'unknown ok not-installed'; exit 1 ;; esac\n\
                     echo 'install ok installed'",
                    missing.join(" ")
                ),
            ),
            ("apt-get", logged("apt-get")),
            ("cargo", logged("cargo")),
            ("rustc", format!("echo '{}'", sysroot.display())),
            ("rustup", logged("rustup")),
        ];
        for (name, body) in tools {
            let path = bin.join(name);
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeTools { bin, log }
    }

    fn run_test_sh(&self, args: &[&str]) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        run_within(
            Command::new("bash")
                .arg(Path::new(REPO).join("test.sh"))
                .args(args)
                .env("PATH", path),
            b"",
            RUN_DEADLINE,
        )
    }

    fn calls(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn test_sh_as_a_normal_user_names_the_missing_packages_and_runs_nothing() {
    let dir = temp_dir("test-sh-user");
    let fake = FakeTools::new(&dir, 1000, &["man-db", "fish"]);
    let out = fake.run_test_sh(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr.clone());
    let err = out.stderr.clone();
    assert!(
        err.lines().any(|line| line
            == "    sudo apt-get update && sudo apt-get install -y --no-install-recommends man-db fish"),
        "the exact line to run:\n{err}"
    );
    assert_eq!(fake.calls(), "", "nothing installed, no test run");
}

#[test]
fn test_sh_as_root_installs_what_is_missing_then_runs_cargo_test_locked_with_its_arguments() {
    let dir = temp_dir("test-sh-root");
    let fake = FakeTools::new(&dir, 0, &["zsh"]);
    let out = fake.run_test_sh(&["--test", "ship", "man_page"]);
    out.assert_success("test.sh as root");
    let calls = fake.calls();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        [
            "apt-get update -qq",
            "apt-get install -y -qq --no-install-recommends zsh",
            "cargo test --locked --test ship man_page",
        ]
    );

    // With everything installed there is nothing to update.
    let dir = temp_dir("test-sh-root-ready");
    let fake = FakeTools::new(&dir, 0, &[]);
    fake.run_test_sh(&[])
        .assert_success("test.sh with everything installed");
    assert_eq!(fake.calls(), "cargo test --locked\n");
}

/// `cargo install --locked --path .` builds and installs the binary, and only the
/// binary (README: no man page, completions or ssh config).
#[test]
fn cargo_install_path_installs_the_binary_and_nothing_else() {
    let dir = temp_dir("cargo-install");
    let root = dir.join("root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run_within(
        Command::new(cargo)
            .args(["install", "--quiet", "--locked", "--path", REPO, "--root"])
            .arg(&root)
            // Shared with the static builds, so a rerun is incremental.
            .arg("--target-dir")
            .arg(static_target_dir()),
        b"",
        BUILD_DEADLINE,
    );
    out.assert_success("cargo install --locked --path .");
    let bin = root.join("bin/vers-tunnel");
    let version = run_within(Command::new(&bin).arg("--version"), b"", RUN_DEADLINE);
    version.assert_success("the installed vers-tunnel --version");
    assert!(
        text(&version.stdout).starts_with(&format!("vers-tunnel {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        text(&version.stdout)
    );
    let mut installed: Vec<String> = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(&root)
                    .unwrap()
                    .display()
                    .to_string();
                installed.push(rel);
            }
        }
    }
    installed.sort();
    // .crates.toml and .crates2.json are cargo's record of what it installed.
    assert_eq!(
        installed,
        [".crates.toml", ".crates2.json", "bin/vers-tunnel"]
    );
}
