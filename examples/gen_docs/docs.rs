//! The man page `vers-tunnel(1)` and the bash, zsh and fish completions, made from
//! the clap definitions the binary parses with, so they cannot disagree with
//! `--help`. Nothing here is in the shipped binary: clap_mangen and clap_complete are
//! dev-dependencies, and `cargo run --example gen_docs` writes the files under
//! `share/`, where install.sh takes them from. `tests/ship/manpage.rs` includes this
//! file too, to check that the committed files are what it makes.

use clap::Command;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Inline, Roff};
use clap_mangen::Man;

use vers_tunnel::cli;
use vers_tunnel::ssh::config as ssh_config;

/// The program's name, as installed.
const NAME: &str = "vers-tunnel";

/// Every subcommand of the command line but `help` (only another spelling of
/// `--help`): a new subcommand gets its man page section and completions.
fn subcommands() -> Vec<Command> {
    cli::command()
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
        .cloned()
        .collect()
}

/// The environment variables vers-tunnel reads, and what each does.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SSL_CERT_FILE",
        "A PEM file of CA certificates trusted in addition to the built-in roots, as if \
         given with --cacert. An unusable file is a usage error (exit status 2).",
    ),
    (
        "RUST_LOG",
        "What to log on stderr, in env_logger syntax (e.g. debug, or vers_tunnel=trace); \
         overrides -v.",
    ),
    (
        "https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY",
        "The proxy to reach the edge through when --proxy is not given: the first of these \
         that is set and not empty, in this order, as curl reads them. http:// and https:// \
         proxies, with Basic credentials taken from the URL (percent-decoded).",
    ),
    (
        "no_proxy, NO_PROXY",
        "Comma-separated hosts, domains and addresses to reach directly, matched against HOST \
         as named, as curl matches them; --noproxy overrides them.",
    ),
    (
        "NO_COLOR",
        "When set (and not empty), vers-tunnel doctor prints no colour even on a terminal.",
    ),
];

/// What the DESCRIPTION section says.
const DESCRIPTION: &[&str] = &[
    "vers-tunnel is an OpenSSH ProxyCommand: it opens TLS to HOST on port 443 with \
     SNI set to HOST, verifies the server's certificate (always: there is no option to turn \
     verification off), and relays its stdin to the server and the server's bytes to its \
     stdout until both sides are done. The Vers edge routes the connection by SNI to the VM \
     named {vmId}.vm.vers.sh.",
    "stdout carries only the tunnel's bytes. A successful session prints nothing on \
     stderr; a failure is one line on stderr, starting with \"vers-tunnel:\", and a \
     distinct exit status (see EXIT STATUS).",
    "The same binary prints the ssh_config block that puts it to use (vers-tunnel ssh-config).",
];

/// One generated file: where it goes under the checkout (and, without `share/`,
/// under an install prefix), and what it holds.
pub struct Generated {
    /// Relative to the checkout, e.g. `share/man/man1/vers-tunnel.1`.
    pub path: &'static str,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// Every generated file. `readme` is README.md: the EXIT STATUS section is its
/// "Exit status" table, so the two say the same.
pub fn generate(readme: &str) -> Result<Vec<Generated>, String> {
    let mut files = vec![Generated {
        path: "share/man/man1/vers-tunnel.1",
        contents: man_page(readme)?,
    }];
    for (shell, path) in [
        (Shell::Bash, "share/bash-completion/completions/vers-tunnel"),
        (Shell::Zsh, "share/zsh/site-functions/_vers-tunnel"),
        (
            Shell::Fish,
            "share/fish/vendor_completions.d/vers-tunnel.fish",
        ),
    ] {
        let mut contents = Vec::new();
        clap_complete::generate(shell, &mut for_completion(shell), NAME, &mut contents);
        if shell == Shell::Bash {
            contents = fix_bash_subcommand_states(&contents);
        }
        files.push(Generated { path, contents });
    }
    Ok(files)
}

/// The command line as completion sees it: the tunnel's options, and every
/// subcommand under it. HOST and the subcommand names share the first position,
/// which clap's generators cannot say (zsh's would insist on HOST first, and then
/// never complete a subcommand's flags); a host name has nothing to complete
/// from, so that position offers the subcommands. `vers-tunnel help [SUBCOMMAND]`
/// is only another spelling of `--help`, which completion offers instead.
fn for_completion(shell: Shell) -> Command {
    let tunnel = cli::command();
    let options = tunnel.get_arguments().filter(|arg| !arg.is_positional());
    let root = Command::new(NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .args(options.cloned())
        .disable_help_subcommand(true);
    let root = subcommands().into_iter().fold(root, |root, command| {
        // A subcommand's -V says `vers-tunnel`, and ssh-config's --help names
        // itself `vers-tunnel ssh-config`: the completions name neither.
        let reset = clap::builder::Resettable::Reset;
        root.subcommand(command.bin_name(reset.clone()).display_name(reset))
    });
    match shell {
        Shell::Zsh => escape_zsh_value_names(root),
        _ => root,
    }
}

/// clap_complete 4.6.12's bash script names a subcommand's state one way where it
/// sets it (`vers__tunnel__subcmd__ssh__subcmd__config`) and another where it
/// matches it (`vers__subcmd__tunnel__subcmd__...`), for any binary whose name has
/// a `-`, so no subcommand's flags ever complete (clap-rs/clap#6421). This spells
/// the second like the first; tests/ship/manpage.rs completes
/// `vers-tunnel ssh-config --m` in bash to prove it. Delete it once a clap_complete
/// release fixes that issue.
fn fix_bash_subcommand_states(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let matched = format!("{}__subcmd__", NAME.replace('-', "__subcmd__"));
    let set = format!("{}__subcmd__", NAME.replace('-', "__"));
    text.replace(&matched, &set).into_bytes()
}

/// clap_complete 4.6 writes value names into zsh's `_arguments` specs as they
/// are, where `:` separates fields: `--connect-to`'s
/// `HOST:PORT:CONNECT_HOST:CONNECT_PORT` would be read as four fields.
fn escape_zsh_value_names(command: Command) -> Command {
    let ids: Vec<clap::Id> = command
        .get_arguments()
        .map(|arg| arg.get_id().clone())
        .collect();
    let command = ids.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |arg| match arg.get_value_names() {
            Some(names) if names.iter().any(|n| n.contains(':')) => {
                // Leaked: clap takes `&'static str` names unless its "string"
                // feature is on, and this runs once, in a generator.
                let escaped: Vec<&'static str> = names
                    .iter()
                    .map(|n| &*Box::leak(n.replace(':', "\\:").into_boxed_str()))
                    .collect();
                arg.value_names(escaped)
            }
            _ => arg,
        })
    });
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    names.into_iter().fold(command, |command, name| {
        command.mut_subcommand(name, escape_zsh_value_names)
    })
}

fn man_page(readme: &str) -> Result<Vec<u8>, String> {
    let man = Man::new(cli::command()).title("VERS-TUNNEL");
    let mut page = Vec::new();
    let mut add = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        render(&mut page).map_err(|e| format!("rendering the man page: {e}"))
    };
    add(&|w| man.render_title(w))?;
    add(&|w| man.render_name_section(w))?;
    add(&|w| man.render_synopsis_section(w))?;
    add(&|w| {
        let mut roff = Roff::new();
        roff.control("SH", ["DESCRIPTION"]);
        paragraphs(&mut roff, DESCRIPTION);
        roff.to_writer(w)
    })?;
    add(&|w| man.render_options_section(w))?;
    for command in subcommands() {
        add(&|w| subcommand_section(w, command.clone()))?;
    }
    add(&|w| ssh_config_section(w))?;
    add(&|w| {
        let mut roff = Roff::new();
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, meaning) in ENVIRONMENT {
            roff.control("TP", []);
            roff.text([bold(*name)]);
            roff.text([roman(*meaning)]);
        }
        roff.to_writer(w)
    })?;
    let statuses = exit_statuses(readme)?;
    add(&|w| {
        let mut roff = Roff::new();
        roff.control("SH", ["EXIT STATUS"]);
        for (status, meaning) in &statuses {
            roff.control("TP", []);
            roff.text([bold(status.as_str())]);
            roff.text(inline_code(meaning));
        }
        roff.to_writer(w)
    })?;
    add(&|w| {
        let mut roff = Roff::new();
        roff.control("SH", ["SEE ALSO"]);
        // What an installed system has: no README or docs/ beside the binary.
        roff.text([roman(
            "ssh(1), ssh_config(5), scp(1), sftp(1), rsync(1). vers-tunnel forward --help, \
             vers-tunnel doctor --help and vers-tunnel ssh-config --help print each \
             subcommand's options; vers-tunnel doctor HOST[:PORT] says which step of a \
             connection fails, and why.",
        )]);
        roff.to_writer(w)
    })?;
    Ok(page)
}

/// A section clap_mangen renders on its own, without its `.SH` heading (and
/// roff's preamble before it), to go under a heading of ours.
fn without_heading(rendered: &[u8]) -> String {
    let text = String::from_utf8_lossy(rendered);
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if line.starts_with(".SH ") {
            break;
        }
    }
    lines.map(|line| format!("{line}\n")).collect()
}

/// A subcommand's own section: what it does, its options and its notes (its
/// synopsis is in SYNOPSIS, from the tunnel's usage line).
fn subcommand_section(w: &mut Vec<u8>, command: Command) -> std::io::Result<()> {
    let mut roff = Roff::new();
    let name = command.get_name();
    roff.control("SH", [format!("{NAME} {name}").to_uppercase().as_str()]);
    if let Some(about) = command.get_long_about().or_else(|| command.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    roff.control("SS", ["Options"]);
    roff.to_writer(w)?;
    let mut options = Vec::new();
    Man::new(command.clone()).render_options_section(&mut options)?;
    w.extend_from_slice(without_heading(&options).as_bytes());
    if let Some(after) = command
        .get_after_long_help()
        .or_else(|| command.get_after_help())
    {
        let mut roff = Roff::new();
        roff.control("PP", []);
        text_with_examples(&mut roff, &after.to_string());
        roff.to_writer(w)?;
    }
    Ok(())
}

/// The blocks `vers-tunnel ssh-config` prints, with and without --multiplex.
fn ssh_config_section(w: &mut Vec<u8>) -> std::io::Result<()> {
    let block = |multiplex: bool| {
        let mut args = vec![NAME, ssh_config::SUBCOMMAND, "--path", NAME];
        if multiplex {
            args.push("--multiplex");
        }
        match cli::parse(args, None, &Default::default()) {
            Ok(cli::Mode::SshConfig(options)) => {
                ssh_config::render(&options).map_err(|e| e.to_string())
            }
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
        .map_err(|e| std::io::Error::other(format!("the ssh-config block: {e}")))
    };
    let mut roff = Roff::new();
    roff.control("SH", ["SSH CONFIGURATION"]);
    roff.text([roman(
        "In ~/.ssh/config, above any Host * block (ssh uses the first value it finds), or \
         in /etc/ssh/ssh_config.d/vers-tunnel.conf for every user; vers-tunnel ssh-config \
         prints it with this binary's full path:",
    )]);
    literal(&mut roff, &block(false)?);
    roff.text([roman(
        "Then ssh, scp, sftp and rsync -e ssh reach root@{vmId}.vm.vers.sh through the edge. \
         With --multiplex, runs to the same VM share one connection:",
    )]);
    literal(&mut roff, &block(true)?);
    roff.text([roman(
        "While the shared connection is open, a new ssh to the VM starts in milliseconds \
         instead of paying TCP, TLS and the ssh key exchange again. ssh -O check HOST says \
         whether one is open, and ssh -O exit HOST closes it: do so when the VM was restarted \
         or replaced, since until ssh notices the old connection is dead (ServerAliveInterval \
         30: within 90 seconds), new runs may go through it and hang. A run that reuses the \
         connection ignores what only matters when connecting (IdentityFile, ProxyCommand); \
         ssh -o ControlPath=none HOST connects afresh. With ControlPersist, ssh sends the ProxyCommand's stderr to /dev/null, \
         so a failure to connect shows only as ssh's own message; run vers-tunnel doctor HOST \
         to see why, or ssh -o ControlPath=none HOST to see vers-tunnel's own line.",
    )]);
    roff.to_writer(w)
}

/// Lines indented by four spaces are examples, set as literal text; the rest
/// are paragraphs.
fn text_with_examples(roff: &mut Roff, text: &str) {
    let mut paragraph = String::new();
    let mut example = String::new();
    let flush = |roff: &mut Roff, paragraph: &mut String, example: &mut String| {
        if !paragraph.is_empty() {
            roff.text(inline_code(paragraph.trim_end()));
            paragraph.clear();
        }
        if !example.is_empty() {
            literal(roff, example);
            example.clear();
        }
    };
    for line in text.lines() {
        if let Some(code) = line.strip_prefix("    ") {
            if !paragraph.is_empty() {
                flush(roff, &mut paragraph, &mut String::new());
            }
            example.push_str(code);
            example.push('\n');
        } else if line.trim().is_empty() {
            if example.is_empty() {
                flush(roff, &mut paragraph, &mut example);
                roff.control("PP", []);
            }
        } else {
            flush(roff, &mut String::new(), &mut example);
            paragraph.push_str(line);
            paragraph.push(' ');
        }
    }
    flush(roff, &mut paragraph, &mut example);
}

fn paragraphs(roff: &mut Roff, paragraphs: &[&str]) {
    for (i, text) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*text)]);
    }
}

/// `text` as an indented block, line for line.
fn literal(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
    roff.control("PP", []);
}

/// Markdown's `code` spans in bold, the rest in roman.
fn inline_code(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { bold(part) } else { roman(part) })
        .collect()
}

/// The rows of README.md's "Exit status" table: (status, meaning).
fn exit_statuses(readme: &str) -> Result<Vec<(String, String)>, String> {
    let rows: Vec<(String, String)> = readme
        .lines()
        .skip_while(|line| line.trim() != "## Exit status")
        .skip(1)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // the header and the |---| line
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").collect();
            match cells[..] {
                [status, meaning] => Some((status.trim().to_string(), meaning.trim().to_string())),
                _ => None,
            }
        })
        .collect();
    if rows.is_empty() {
        return Err(
            "README.md has no \"## Exit status\" table of | status | meaning | rows".into(),
        );
    }
    Ok(rows)
}
