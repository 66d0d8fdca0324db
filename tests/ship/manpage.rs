//! The man page and the shell completions: the committed files are what
//! `examples/gen_docs` makes from the clap definitions, `man` renders the page
//! with every flag, subcommand, variable and exit status in it, and install.sh
//! puts them where man, bash-completion, zsh and fish find them, and takes them
//! away again.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::process::run_within;
use crate::docs;
use crate::util::{install_sh, mode, temp_dir, text, BIN, REPO, RUN_DEADLINE};

/// Where install.sh puts each generated file, relative to the prefix's `share/`.
const INSTALLED: [&str; 4] = [
    "man/man1/vers-tunnel.1",
    "bash-completion/completions/vers-tunnel",
    "zsh/site-functions/_vers-tunnel",
    "fish/vendor_completions.d/vers-tunnel.fish",
];

fn readme() -> String {
    fs::read_to_string(Path::new(REPO).join("README.md")).unwrap()
}

#[test]
fn committed_man_page_and_completions_are_what_the_generator_makes() {
    let files = docs::generate(&readme()).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
    let expected: Vec<String> = INSTALLED.iter().map(|p| format!("share/{p}")).collect();
    assert_eq!(paths, expected, "install.sh installs exactly these");
    for file in files {
        let committed = fs::read(Path::new(REPO).join(file.path)).unwrap_or_default();
        assert!(
            committed == file.contents,
            "{} is out of date with the clap definitions or README's exit status table: \
             run `cargo run --example gen_docs` and commit the result",
            file.path
        );
    }
}

/// `man -l` on the committed page, as plain text with every run of spaces made
/// one (man justifies lines) and no hyphenation.
fn rendered_man_page() -> String {
    let page = Path::new(REPO).join("share/man/man1/vers-tunnel.1");
    let out = run_within(
        Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("LC_ALL", "C")
            .env("MANWIDTH", "200")
            .env("MANROFFOPT", "-rHY=0")
            .env_remove("MANPAGER")
            .env_remove("PAGER"),
        b"",
        RUN_DEADLINE,
    );
    out.assert_success("man -l share/man/man1/vers-tunnel.1 (Debian package man-db)");
    // groff's warnings (a bad macro, a line it cannot set) come on stderr.
    assert_eq!(out.stderr.clone(), "", "man -l warned");
    text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn man_page_renders_with_every_flag_subcommand_variable_and_exit_status() {
    let page = rendered_man_page();
    assert!(page.starts_with("VERS-TUNNEL(1)"), "{page}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "VERS-TUNNEL SSH-CONFIG",
        "SSH CONFIGURATION",
        "ENVIRONMENT",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(
            page.contains(&format!(" {section} ")),
            "no {section} section:\n{page}"
        );
    }
    let tunnel = vers_tunnel::cli::command();
    let ssh_config = tunnel
        .find_subcommand("ssh-config")
        .expect("the ssh-config subcommand")
        .clone();
    let commands = [tunnel, ssh_config];
    for command in &commands {
        for arg in command.get_arguments() {
            let shown = match (arg.get_long(), arg.get_value_names()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(names)) => format!("<{}>", names[0]),
                (None, None) => continue,
            };
            assert!(page.contains(&shown), "{shown} is not in the man page");
            if let Some(help) = arg.get_help() {
                let help = help.to_string();
                assert!(
                    page.contains(&help),
                    "{shown}'s help {help:?} is not in the man page"
                );
            }
        }
    }
    for variable in [
        "SSL_CERT_FILE",
        "RUST_LOG",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        assert!(page.contains(variable), "{variable} is not in ENVIRONMENT");
    }
    // The section, not DESCRIPTION's "(see EXIT STATUS)".
    let (_, exit) = page.rsplit_once(" EXIT STATUS ").unwrap();
    let exit = format!(" {exit}");
    for status in ["0", "1", "2", "3", "4", "5", "6", "128+N"] {
        assert!(
            exit.contains(&format!(" {status} ")),
            "exit status {status} missing: {exit}"
        );
    }
    // An installed system or a golden image has the man page and --help, not
    // the source tree: SEE ALSO points only at what it has.
    let (_, see_also) = page.rsplit_once(" SEE ALSO ").unwrap();
    assert!(
        !see_also.contains("README") && !see_also.contains("source tree"),
        "SEE ALSO points at files an installed system lacks: {see_also}"
    );
    assert!(see_also.contains("vers-tunnel doctor --help"), "{see_also}");
    for line in [
        "Host *.vm.vers.sh",
        "ProxyCommand vers-tunnel %h",
        "ControlMaster auto",
        "ControlPath ~/.ssh/vers-%C",
        "ControlPersist 10m",
        "ssh -O exit HOST",
    ] {
        assert!(page.contains(line), "{line:?} is not in the man page");
    }
}

#[test]
fn install_puts_man_page_and_completions_where_man_and_the_shells_find_them() {
    let dir = temp_dir("docs");
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let prefix = dir.join("bin");
    let prefix_arg = prefix.to_str().unwrap();
    let share = dir.join("share");
    let out = install_sh(
        &home,
        &["--binary", BIN, "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --prefix DIR/bin");
    for rel in INSTALLED {
        let installed = share.join(rel);
        assert_eq!(
            fs::read(&installed).unwrap_or_default(),
            fs::read(Path::new(REPO).join("share").join(rel)).unwrap(),
            "{rel} installed under DIR/share"
        );
        assert_eq!(mode(&installed), 0o644, "{rel}");
    }
    let path = format!("{prefix_arg}:{}", std::env::var("PATH").unwrap_or_default());

    // man-db looks for DIR/share/man beside every DIR/bin in PATH.
    let man = run_within(
        Command::new("man")
            .args(["-w", "vers-tunnel"])
            .env("PATH", &path)
            .env_remove("MANPATH"),
        b"",
        RUN_DEADLINE,
    );
    man.assert_success("man -w vers-tunnel");
    assert_eq!(
        text(&man.stdout).trim(),
        share.join("man/man1/vers-tunnel.1").to_str().unwrap()
    );

    // bash-completion loads completions from each XDG_DATA_DIRS entry
    // (/usr/local/share by default) and from ~/.local/share.
    let bash = run_within(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c"])
            .arg(
                "source /usr/share/bash-completion/bash_completion || exit 9
                 __load_completion vers-tunnel || exit 8
                 spec=($(complete -p vers-tunnel))
                 function=${spec[${#spec[@]}-2]}
                 COMP_WORDS=(vers-tunnel ssh-config --m); COMP_CWORD=2
                 $function vers-tunnel --m ssh-config
                 echo \"${COMPREPLY[*]}\"
                 COMP_WORDS=(vers-tunnel ss); COMP_CWORD=1
                 $function vers-tunnel ss vers-tunnel
                 echo \"${COMPREPLY[*]}\"",
            )
            .env("PATH", &path)
            .env("HOME", &home)
            .env("XDG_DATA_DIRS", &share),
        b"",
        RUN_DEADLINE,
    );
    bash.assert_success("bash completion (Debian package bash-completion)");
    assert_eq!(text(&bash.stdout), "--multiplex\nssh-config\n");

    let zsh = run_within(
        Command::new("zsh")
            .args(["-f", "-c"])
            .arg(format!(
                "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; print -r -- ${{_comps[vers-tunnel]}}",
                share.join("zsh/site-functions").display()
            ))
            .env("HOME", &home),
        b"",
        RUN_DEADLINE,
    );
    zsh.assert_success("zsh compinit (Debian package zsh)");
    assert_eq!(
        text(&zsh.stdout),
        "_vers-tunnel\n",
        "{}",
        zsh.stderr.clone()
    );
    let syntax = run_within(
        Command::new("zsh")
            .arg("-n")
            .arg(share.join("zsh/site-functions/_vers-tunnel")),
        b"",
        RUN_DEADLINE,
    );
    syntax.assert_success("zsh -n _vers-tunnel");

    // fish reads XDG_DATA_DIRS/fish/vendor_completions.d for commands in PATH.
    let fish = run_within(
        Command::new("fish")
            .args([
                "-c",
                "complete -C 'vers-tunnel ssh-config --m'; complete -C 'vers-tunnel --connect-t'",
            ])
            .env("PATH", &path)
            .env("HOME", &home)
            .env("XDG_DATA_DIRS", &share),
        b"",
        RUN_DEADLINE,
    );
    fish.assert_success("fish complete -C (Debian package fish)");
    let listing = text(&fish.stdout);
    let offered: Vec<&str> = listing
        .lines()
        .map(|line| line.split('\t').next().unwrap_or_default())
        .collect();
    assert_eq!(
        offered,
        ["--multiplex", "--connect-timeout", "--connect-to"]
    );

    let out = install_sh(
        &home,
        &["--uninstall", "--prefix", prefix_arg],
        &[],
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --uninstall");
    for rel in INSTALLED {
        assert!(!share.join(rel).exists(), "{rel} removed");
    }
    assert!(!prefix.join("vers-tunnel").exists());
}
