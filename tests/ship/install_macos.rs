//! install.sh's macOS branches, run here on Linux with a PATH that makes the
//! machine look like a Mac: `uname` says Darwin, and head, readlink, stat, sed
//! and install refuse the GNU-only usages macOS's BSD tools refuse. Also the
//! `--binary` checks that hold on both systems.
//!
//! What this cannot show is the real macOS tools' behaviour beyond those
//! refusals; no test here runs on a Mac.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ring::digest::{digest, SHA256};

use crate::common::tempdir::TempDir;
use crate::util::{install_sh, mode, temp_dir, BIN, RUN_DEADLINE};

/// The absolute path of `program` on the test's own PATH.
fn real(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A directory of stand-ins that make this machine look like an Apple silicon
/// Mac to install.sh, and the PATH that puts them first. `xattr` reports every
/// file as quarantined (as for a browser download) and logs its calls to
/// `xattr.log`.
struct FakeMac {
    bin: PathBuf,
    path: String,
    xattr_log: PathBuf,
}

impl FakeMac {
    fn new(dir: &TempDir) -> Self {
        let bin = dir.join("fake-macos");
        fs::create_dir_all(&bin).unwrap();
        let xattr_log = dir.join("xattr.log");
        write_script(
            &bin.join("uname"),
            "case \"$1\" in -s) echo Darwin ;; -m) echo arm64 ;; *) echo Darwin arm64 ;; esac",
        );
        // What macOS's BSD tools refuse, with their own words; the rest goes to
        // the real tool.
        for (tool, refused, message) in [
            (
                "head",
                "'-n 0'|'-n 0 '*|*' -n 0'*",
                "head: illegal line count -- 0",
            ),
            ("readlink", "-f*|*' -f'*", "readlink: illegal option -- f"),
            ("stat", "-c*|*' -c'*", "stat: illegal option -- c"),
            (
                "sed",
                "-i*|*' -i'*",
                "sed: -i needs a backup suffix on macOS",
            ),
            ("install", "-D*|*' -D'*", "install: illegal option -- D"),
        ] {
            write_script(
                &bin.join(tool),
                &format!(
                    "case \"$*\" in {refused}) echo '{message}' >&2; exit 1 ;; esac\nexec '{}' \"$@\"",
                    real(tool).display()
                ),
            );
        }
        // Older macOS has no sha256sum, only shasum (a Perl script); this one
        // takes macOS's arguments and nothing else.
        write_script(
            &bin.join("sha256sum"),
            "echo 'sha256sum: command not found' >&2; exit 127",
        );
        write_script(
            &bin.join("shasum"),
            &format!(
                "[ \"$1 $2 $3\" = '-a 256 --' ] || exit 2\nshift 3\nexec '{}' \"$@\"",
                real("sha256sum").display()
            ),
        );
        write_script(
            &bin.join("xattr"),
            &format!(
                "echo \"$*\" >> '{}'\ncase \"$1\" in -p) echo '0081;5f000000;Safari;' ;; esac",
                xattr_log.display()
            ),
        );
        write_script(
            &bin.join("xcode-select"),
            "echo /Library/Developer/CommandLineTools",
        );
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        FakeMac {
            bin,
            path,
            xattr_log,
        }
    }

    fn env(&self) -> [(&'static str, &Path); 1] {
        [("PATH", Path::new(&self.path))]
    }
}

fn sha256_hex(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    digest(&SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const USER_CONFIG: &str = "Host foo\n    User bar\n";

/// The whole laptop flow as on a Mac: a downloaded binary (quarantined, no x
/// bit) installed, the ssh config added to a symlinked ~/.ssh/config, re-run
/// (the block is then at line 1, where GNU-style `head -n 0` would fail) and
/// uninstalled.
#[test]
fn install_binary_on_macos_clears_the_quarantine_and_manages_the_ssh_config() {
    let dir = temp_dir("macos-binary");
    let mac = FakeMac::new(&dir);
    let home = dir.join("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let dotfile = dir.join("dotfiles-ssh-config");
    fs::write(&dotfile, USER_CONFIG).unwrap();
    std::os::unix::fs::symlink(&dotfile, home.join(".ssh/config")).unwrap();
    let download = dir.join("vers-tunnel-download");
    fs::copy(BIN, &download).unwrap();
    fs::set_permissions(&download, fs::Permissions::from_mode(0o644)).unwrap();
    let prefix = dir.join("bin");
    let installed = prefix.join("vers-tunnel");
    let prefix_arg = prefix.to_str().unwrap();
    let download_arg = download.to_str().unwrap();
    let install = [
        "--binary",
        download_arg,
        "--prefix",
        prefix_arg,
        "--ssh-config",
    ];

    let out = install_sh(&home, &install, &mac.env(), RUN_DEADLINE);
    out.assert_success("install.sh --binary --ssh-config on a fake Mac");
    let err = out.stderr.clone();
    assert!(err.contains("removed macOS's download quarantine"), "{err}");
    let xattr = fs::read_to_string(&mac.xattr_log).unwrap();
    let cleared: Vec<&str> = xattr
        .lines()
        .filter_map(|line| line.strip_prefix("-d com.apple.quarantine "))
        .collect();
    assert_eq!(cleared.len(), 1, "{xattr}");
    assert_ne!(
        cleared[0], download_arg,
        "the user's own file is left alone"
    );
    assert_eq!(mode(&download), 0o644, "the user's own file is left alone");
    assert_eq!(mode(&installed), 0o755);
    assert!(
        err.contains(&format!("sha256 {}", sha256_hex(&download))),
        "the digest comes from shasum -a 256: {err}"
    );
    let configured = fs::read_to_string(&dotfile).unwrap();
    assert!(
        configured.starts_with("# >>> vers-tunnel >>>") && configured.ends_with(USER_CONFIG),
        "{configured}"
    );

    let out = install_sh(&home, &install, &mac.env(), RUN_DEADLINE);
    out.assert_success("install.sh --binary --ssh-config on a fake Mac, again");
    assert!(out.stderr.clone().contains("nothing changed"));
    assert_eq!(fs::read_to_string(&dotfile).unwrap(), configured);

    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &mac.env(),
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall on a fake Mac");
    assert_eq!(fs::read_to_string(&dotfile).unwrap(), USER_CONFIG);
    assert!(fs::symlink_metadata(home.join(".ssh/config"))
        .unwrap()
        .is_symlink());
    assert!(!installed.exists());
}

#[test]
fn install_static_on_macos_says_it_is_linux_only() {
    let dir = temp_dir("macos-static");
    let mac = FakeMac::new(&dir);
    let prefix = dir.join("bin");
    let out = install_sh(
        dir.path(),
        &["--static", "--prefix", prefix.to_str().unwrap()],
        &mac.env(),
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr.clone());
    let err = out.stderr.clone();
    assert!(
        err.starts_with("install.sh: --static is Linux-only") && err.lines().count() == 1,
        "{err}"
    );
    assert!(!prefix.exists(), "nothing was built or installed");
}

#[test]
fn install_build_on_macos_without_the_command_line_tools_says_how_to_get_them() {
    let dir = temp_dir("macos-no-clt");
    let mac = FakeMac::new(&dir);
    write_script(
        &mac.bin.join("xcode-select"),
        "echo 'xcode-select: error: unable to get active developer directory' >&2; exit 2",
    );
    let prefix = dir.join("bin");
    let out = install_sh(
        dir.path(),
        &["--prefix", prefix.to_str().unwrap()],
        &mac.env(),
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = out.stderr.clone();
    assert!(err.contains("run xcode-select --install"), "{err}");
    assert!(!prefix.exists());
}

/// A download that is not a program (say, an error page that happens to hold
/// commands) is refused without being run, and nothing is installed.
#[test]
fn install_binary_refuses_a_file_that_is_not_a_program_without_running_it() {
    let dir = temp_dir("binary-not-a-program");
    let ran = dir.join("it-ran");
    let page = dir.join("vers-tunnel");
    fs::write(
        &page,
        format!("touch '{}'\n<html>Not Found</html>\n", ran.display()),
    )
    .unwrap();
    let prefix = dir.join("bin");
    let out = install_sh(
        dir.path(),
        &[
            "--binary",
            page.to_str().unwrap(),
            "--prefix",
            prefix.to_str().unwrap(),
        ],
        &[],
        RUN_DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = out.stderr.clone();
    assert!(
        err.contains("is not a program (neither ELF nor Mach-O)"),
        "{err}"
    );
    assert!(!ran.exists(), "the file was run");
    assert!(!prefix.exists());
}

/// The macOS binary downloaded onto Linux by mistake, and a program that is
/// not vers-tunnel: both refused, saying what they are.
#[test]
fn install_binary_refuses_a_binary_that_is_not_vers_tunnel_for_this_machine() {
    let dir = temp_dir("binary-wrong");
    let mac_binary = dir.join("vers-tunnel-macos");
    let header: Vec<u8> = [0xfeed_facf_u32, 0x0100_000c, 0, 2, 0, 0, 0, 0]
        .iter()
        .flat_map(|word| word.to_le_bytes())
        .collect();
    fs::write(&mac_binary, header).unwrap();
    let prefix = dir.join("bin");
    for (file, kind) in [(mac_binary.as_path(), "Mach-O"), (&real("true"), "ELF")] {
        let out = install_sh(
            dir.path(),
            &[
                "--binary",
                file.to_str().unwrap(),
                "--prefix",
                prefix.to_str().unwrap(),
            ],
            &[],
            RUN_DEADLINE,
        );
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        let err = out.stderr.clone();
        assert!(
            err.contains("is not a vers-tunnel for this machine (Linux ")
                && err.contains("it did not answer --version; it is: ")
                && err.contains(kind),
            "{err}"
        );
        assert!(!prefix.exists());
    }
}

/// On Linux, a binary without its x bit (as downloaded) installs runnable, and
/// the digest reported is sha256sum's.
#[test]
fn install_binary_on_linux_installs_a_download_without_its_execute_bit() {
    let dir = temp_dir("binary-linux");
    let download = dir.join("download");
    fs::copy(BIN, &download).unwrap();
    fs::set_permissions(&download, fs::Permissions::from_mode(0o600)).unwrap();
    let prefix = dir.join("bin");
    let out = install_sh(
        dir.path(),
        &[
            "--binary",
            download.to_str().unwrap(),
            "--prefix",
            prefix.to_str().unwrap(),
        ],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --binary of a 0600 file");
    let installed = prefix.join("vers-tunnel");
    assert_eq!(mode(&installed), 0o755);
    let err = out.stderr.clone();
    assert!(
        err.contains(&format!(
            "installed {} (vers-tunnel {}, sha256 {})",
            installed.display(),
            env!("CARGO_PKG_VERSION"),
            sha256_hex(&download)
        )),
        "{err}"
    );
    assert!(!err.contains("quarantine"), "{err}");
}
