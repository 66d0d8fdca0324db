//! The real clients through vers-tunnel: OpenSSH's ssh, scp and sftp, and
//! `rsync -e ssh`, reaching a real sshd on `[::1]` through the TLS edge by SNI,
//! as users do with `ProxyCommand vers-tunnel %h`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::session::{bin, Session};
use crate::util::sshd::require;
use crate::util::{self, Prng, HOST, MIB};

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
        util::clean_env(&mut cmd)
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
            .arg(broken.remote(&copy)),
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
        util::clean_env(&mut Command::new("rsync"))
            .arg("-a")
            .arg("-e")
            .arg(format!("{} -o '{proxy}'", broken.rsh()))
            .arg(&local)
            .arg(format!("{}/", broken.remote(&dst))),
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
