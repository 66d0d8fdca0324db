//! The docs (README.md, docs/, CONTRIBUTING.md, CHANGELOG.md, benches/README.md) say
//! what the binary does: their ```` ```console ```` examples run and print what they
//! show, every flag they name exists in the clap definitions, their exit status tables
//! are the code's, and their links between pages resolve. A page that drifts from the
//! code fails here, naming the page and what drifted.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Command as Clap;

use crate::common::cargo::BUILD_DEADLINE;
use crate::common::process::run_within;
use crate::util::{temp_dir, text, BIN, REPO, RUN_DEADLINE};

/// Where the examples' `vers-tunnel ssh-config` says the binary is: the HOME the
/// examples run with is shown as this.
const SHOWN_HOME: &str = "/home/me";

/// Flags of other programs that the docs name on their own in `code`: cargo's and
/// gen_docs's, for building and testing. (Flags of the bench scripts are read from
/// benches/.)
const OTHER_PROGRAMS_FLAGS: &[&str] = &[
    "--locked",      // cargo build / install
    "--release",     // cargo build
    "--nocapture",   // cargo test -- --nocapture
    "--all-targets", // cargo clippy
    "--check",       // cargo fmt --check, gen_docs --check
    "-o",            // ssh -o OPTION
    "-t",            // socat -t SECS, its wait after one direction ends
];

/// Every page of the docs, relative to the checkout.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"]
        .iter()
        .chain(&["benches/README.md"])
        .map(PathBuf::from)
        .collect();
    let mut docs: Vec<PathBuf> = fs::read_dir(Path::new(REPO).join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(REPO).unwrap().to_path_buf())
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(page: &Path) -> String {
    fs::read_to_string(Path::new(REPO).join(page))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()))
}

// ---- reading markdown --------------------------------------------------------------

/// A page's parts: each line of a fenced or indented code block, and each inline
/// `code` span of the prose (spans may cross line breaks within a paragraph).
struct Parts {
    code_lines: Vec<String>,
    spans: Vec<String>,
    /// The prose with code spans taken out, one paragraph per entry.
    prose: Vec<String>,
    /// Each heading's text, in order.
    headings: Vec<String>,
}

fn parts(page: &str) -> Parts {
    let mut parts = Parts {
        code_lines: Vec::new(),
        spans: Vec::new(),
        prose: Vec::new(),
        headings: Vec::new(),
    };
    let mut in_fence = false;
    let mut paragraph = String::new();
    let flush = |paragraph: &mut String, parts: &mut Parts| {
        let mut prose = String::new();
        for (i, piece) in paragraph.split('`').enumerate() {
            if i % 2 == 1 {
                parts.spans.push(piece.to_string());
            } else {
                prose.push_str(piece);
            }
        }
        parts.prose.push(prose);
        paragraph.clear();
    };
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            flush(&mut paragraph, &mut parts);
            in_fence = !in_fence;
            continue;
        }
        if in_fence || (line.starts_with("    ") && paragraph.is_empty()) {
            parts.code_lines.push(line.to_string());
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut parts);
        } else if line.starts_with('#') {
            flush(&mut paragraph, &mut parts);
            parts
                .headings
                .push(line.trim_start_matches('#').trim().to_string());
            paragraph.push_str(line);
            flush(&mut paragraph, &mut parts);
        } else if line.starts_with('|') {
            // A table row is a paragraph of its own.
            flush(&mut paragraph, &mut parts);
            paragraph.push_str(line);
            flush(&mut paragraph, &mut parts);
        } else {
            paragraph.push_str(line);
            paragraph.push('\n');
        }
    }
    flush(&mut paragraph, &mut parts);
    parts
}

/// The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a page, with GitHub's `-1`, `-2` for repeated headings.
fn anchors(page: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for heading in parts(page).headings {
        let base = slug(&heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while anchors.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        anchors.insert(anchor);
    }
    anchors
}

/// The rows of the first `| status | meaning |` table after the heading `heading`.
fn status_table(page: &str, heading: &str) -> Option<Vec<String>> {
    let mut lines = page.lines().skip_while(|line| {
        !(line.starts_with('#') && line.trim_start_matches('#').trim() == heading)
    });
    lines.next()?;
    let rows: Vec<String> = lines
        .take_while(|line| !line.starts_with('#'))
        .skip_while(|line| !line.starts_with("| status |"))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|row| {
            row.trim_matches('|')
                .split('|')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect();
    Some(rows)
}

// ---- the code's side -----------------------------------------------------------------

/// The command line's parser and each of its subcommands', with the name it
/// is invoked by after `vers-tunnel` ("" for the tunnel itself).
fn commands() -> Vec<(String, Clap)> {
    let mut top = vers_tunnel::cli::command();
    // Adds the --help and --version clap generates, to every subcommand too.
    top.build();
    let subcommands: Vec<(String, Clap)> = top
        .get_subcommands()
        .map(|sub| (sub.get_name().to_string(), sub.clone()))
        .collect();
    let names: Vec<&str> = subcommands.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["forward", "doctor", "ssh-config", "help"]);
    std::iter::once((String::new(), top))
        .chain(subcommands)
        .collect()
}

/// The subcommand `name`'s parser.
fn subcommand(name: &str) -> Clap {
    commands()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, command)| command)
        .unwrap_or_else(|| panic!("no subcommand {name}"))
}

/// The flags a parser takes, as `--long` and `-s`.
fn flags(command: &Clap) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long() {
            flags.insert(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            flags.insert(format!("-{short}"));
        }
    }
    flags
}

/// The statuses of `src/error.rs`'s `exit` module: every `pub const` in it, the
/// signal base as `128+N`. Read from the source, so a status added there and not
/// to the docs fails here.
fn code_statuses() -> BTreeSet<String> {
    let source = fs::read_to_string(Path::new(REPO).join("src/error.rs")).unwrap();
    let module = source
        .split_once("pub mod exit {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(module, _)| module)
        .expect("src/error.rs has `pub mod exit { ... }`");
    let statuses: BTreeSet<String> = module
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const "))
        .map(|constant| {
            let (name, value) = constant
                .split_once(": u8 = ")
                .expect("pub const NAME: u8 = N;");
            let value = value.trim_end_matches(';');
            if name == "SIGNAL_BASE" {
                assert_eq!(value, "128", "the signal base");
                "128+N".to_string()
            } else {
                value.to_string()
            }
        })
        .collect();
    assert_eq!(
        statuses.len(),
        8,
        "src/error.rs's exit statuses changed: update this test's reading of them"
    );
    statuses
}

/// The statuses a `--help` text lists after "Exit status:".
fn help_statuses(args: &[&str]) -> BTreeSet<String> {
    let out = run_within(Command::new(BIN).args(args), b"", RUN_DEADLINE);
    out.assert_success(&format!("vers-tunnel {}", args.join(" ")));
    let help = text(&out.stdout);
    let paragraph = help
        .split("\n\n")
        .find_map(|p| p.strip_prefix("Exit status: "))
        .unwrap_or_else(|| panic!("{args:?} has no \"Exit status:\" paragraph: {help}"));
    let paragraph = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    paragraph
        .split([',', ';'])
        .filter_map(|item| item.split_whitespace().next())
        .filter(|status| {
            let digits = status.strip_suffix("+N").unwrap_or(status);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect()
}

/// What `./install.sh --help` prints.
fn install_sh_help() -> String {
    let out = run_within(
        Command::new("bash")
            .arg(Path::new(REPO).join("install.sh"))
            .arg("--help"),
        b"",
        RUN_DEADLINE,
    );
    out.assert_success("install.sh --help");
    text(&out.stdout)
}

/// The long flags the bench scripts take (`--runs`, `--with-aws-lc)`... in their
/// sources).
fn bench_flags() -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for entry in fs::read_dir(Path::new(REPO).join("benches")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|ext| ext == "py" || ext == "sh")
        {
            let source = fs::read_to_string(&path).unwrap();
            let words = source.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
            flags.extend(
                words
                    .filter(|word| word.starts_with("--"))
                    .filter_map(as_flag),
            );
        }
    }
    flags
}

fn words_that_are_flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .filter_map(as_flag)
        .collect()
}

/// `word` as a flag (`--name` or `-x`, its value cut off), if it is one.
fn as_flag(word: &str) -> Option<String> {
    let word = word.split('=').next()?;
    let name = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_alphanumeric() && chars.all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then(|| word.to_string())
}

// ---- command lines in the docs ----------------------------------------------------

/// One `vers-tunnel ...` or `install.sh ...` invocation found in a page's code.
struct Invocation {
    program: &'static str,
    /// The subcommand (`forward`, ...), or "" for the tunnel itself.
    subcommand: String,
    /// The arguments, up to the end of the command (a pipe, `;`, a comment...).
    args: Vec<String>,
    line: String,
}

/// Every invocation of vers-tunnel or install.sh in `code`.
fn invocations(code: &str) -> Vec<Invocation> {
    let words: Vec<&str> = code.split_whitespace().collect();
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        // A path given to another program's flag (`--binary vers-tunnel`).
        if i > 0 && as_flag(words[i - 1]).is_some() {
            continue;
        }
        let bare = word.trim_matches(|c| matches!(c, '\'' | '"' | '`' | '(' | '$'));
        let bare = bare.rsplit('=').next().unwrap_or(bare);
        let program = match Path::new(bare).file_name().and_then(|n| n.to_str()) {
            Some("vers-tunnel") => "vers-tunnel",
            Some("install.sh") => "install.sh",
            _ => continue,
        };
        let mut args = Vec::new();
        for word in &words[i + 1..] {
            if word.starts_with('#') || ["|", "||", "&&", ";", ">", ">>", "<", "\\"].contains(word)
            {
                break;
            }
            let ends_quote = word.ends_with(['\'', '"', '`', ')']);
            args.push(word.trim_end_matches(['\'', '"', '`', ')']).to_string());
            if ends_quote {
                break;
            }
        }
        let subcommand = match args.first().map(String::as_str) {
            Some(sub @ ("forward" | "doctor" | "ssh-config")) if program == "vers-tunnel" => {
                sub.to_string()
            }
            _ => String::new(),
        };
        found.push(Invocation {
            program,
            subcommand,
            args,
            line: code.trim().to_string(),
        });
    }
    found
}

/// Every invocation in the docs' code blocks and spans, with the page it is on.
fn all_invocations() -> Vec<(PathBuf, Invocation)> {
    let mut all = Vec::new();
    for page in pages() {
        let parts = parts(&read(&page));
        for code in parts.code_lines.iter().chain(&parts.spans) {
            for invocation in invocations(code) {
                all.push((page.clone(), invocation));
            }
        }
    }
    all
}

// ---- running the console examples ----------------------------------------------------

/// One `$ command` of a ```` ```console ```` block and what it shows after it.
struct Example {
    page: PathBuf,
    command: String,
    expected: Vec<String>,
    status: i32,
}

fn examples(page: &Path) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut in_console = false;
    let mut in_other_fence = false;
    for line in read(page).lines() {
        let fence = line.trim_start().strip_prefix("```");
        match fence {
            Some(info) if !in_console && !in_other_fence => {
                in_console = info.trim() == "console";
                in_other_fence = !in_console;
            }
            Some(_) => {
                in_console = false;
                in_other_fence = false;
            }
            None if in_console => {
                if let Some(command) = line.strip_prefix("$ ") {
                    let status = command
                        .rsplit_once("# exit ")
                        .map_or(0, |(_, n)| n.trim().parse().expect("# exit N"));
                    examples.push(Example {
                        page: page.to_path_buf(),
                        command: command.to_string(),
                        expected: Vec::new(),
                        status,
                    });
                } else {
                    let example = examples.last_mut().unwrap_or_else(|| {
                        panic!(
                            "{}: a console block must start with a `$ ` line",
                            page.display()
                        )
                    });
                    example.expected.push(line.to_string());
                }
            }
            None => {}
        }
    }
    examples
}

/// Whether `line` matches `pattern`, where `[..]` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let pieces: Vec<&str> = pattern.split("[..]").collect();
    if pieces.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `patterns`, where a `...` pattern stands for any lines.
fn lines_match(patterns: &[String], lines: &[&str]) -> bool {
    match patterns.split_first() {
        None => lines.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..]))
        }
        Some((first, rest)) => lines
            .split_first()
            .is_some_and(|(line, lines)| line_matches(first, line) && lines_match(rest, lines)),
    }
}

/// Runs `example` as a user would type it: bash, `vers-tunnel` found in PATH
/// (installed in HOME/.local/bin, as install.sh does), a clean environment, stdout
/// and stderr on one pipe as a terminal shows them.
fn run_example(example: &Example, home: &Path) -> (i32, String) {
    let real_home = std::env::var_os("HOME").unwrap_or_default();
    // vers-tunnel as install.sh puts it, then the cargo running these tests (for
    // the demo's `cargo run`), then the rest.
    let cargo = std::env::var_os("CARGO").map(PathBuf::from);
    let mut dirs = vec![home.join(".local/bin")];
    dirs.extend(
        cargo
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf),
    );
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).expect("no ':' in the PATH directories");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("exec 2>&1\n{}\n", example.command))
        .current_dir(REPO)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("LANG", "C.UTF-8");
    // cargo (for the demo) still finds its toolchain and registry.
    for (var, dir) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
        let value = std::env::var_os(var).unwrap_or_else(|| Path::new(&real_home).join(dir).into());
        cmd.env(var, value);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let deadline = if example.command.starts_with("cargo ") {
        BUILD_DEADLINE
    } else {
        RUN_DEADLINE
    };
    let out = run_within(&mut cmd, b"", deadline);
    let shown = text(&out.stdout).replace(&home.display().to_string(), SHOWN_HOME);
    (out.code(), shown)
}

// ---- the tests -------------------------------------------------------------------------

#[test]
fn console_examples_in_the_docs_print_what_they_show() {
    let dir = temp_dir("pages");
    let home = dir.join("home");
    fs::create_dir_all(home.join(".local/bin")).unwrap();
    fs::copy(BIN, home.join(".local/bin/vers-tunnel")).unwrap();
    let examples: Vec<Example> = pages().iter().flat_map(|page| examples(page)).collect();
    assert!(
        examples.len() >= 10,
        "the docs show few console examples: {}",
        examples.len()
    );
    let mut failures = Vec::new();
    for example in &examples {
        let (status, output) = run_example(example, &home);
        let lines: Vec<&str> = output.lines().collect();
        if status != example.status || !lines_match(&example.expected, &lines) {
            failures.push(format!(
                "{}: $ {}\n  expected (exit {}):\n{}\n  got (exit {status}):\n{}",
                example.page.display(),
                example.command,
                example.status,
                example.expected.join("\n"),
                output.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_flag_the_docs_name_exists() {
    let commands = commands();
    let install_sh = words_that_are_flags(&install_sh_help());
    let mut known: BTreeSet<String> = commands.iter().flat_map(|(_, c)| flags(c)).collect();
    known.extend(install_sh.iter().cloned());
    known.extend(bench_flags());
    known.extend(OTHER_PROGRAMS_FLAGS.iter().map(|f| f.to_string()));

    let mut wrong = Vec::new();
    let mut checked = 0;
    for (page, invocation) in all_invocations() {
        let takes = match invocation.program {
            "install.sh" => install_sh.clone(),
            _ => commands
                .iter()
                .find(|(name, _)| *name == invocation.subcommand)
                .map(|(_, command)| flags(command))
                .unwrap(),
        };
        // A usage error on show: the example's run checks the refusal.
        if invocation.line.ends_with("# exit 2") {
            continue;
        }
        for arg in &invocation.args {
            let Some(flag) = as_flag(arg) else { continue };
            checked += 1;
            // -vv, -46: each letter a short flag.
            let ok = if flag.starts_with("--") {
                takes.contains(&flag)
            } else {
                flag[1..].chars().all(|c| takes.contains(&format!("-{c}")))
            };
            if !ok {
                wrong.push(format!(
                    "{}: {flag} is not a flag of {} {}: {}",
                    page.display(),
                    invocation.program,
                    invocation.subcommand,
                    invocation.line
                ));
            }
        }
    }
    for page in pages() {
        for span in parts(&read(&page)).spans {
            let Some(flag) = span.split_whitespace().next().and_then(as_flag) else {
                continue;
            };
            checked += 1;
            let short_cluster = !flag.starts_with("--")
                && flag[1..].chars().all(|c| known.contains(&format!("-{c}")));
            if !known.contains(&flag) && !short_cluster {
                wrong.push(format!(
                    "{}: `{span}` names {flag}, which nothing here takes",
                    page.display()
                ));
            }
        }
    }
    assert!(checked > 50, "only {checked} flags found in the docs");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn persist_examples_agree_in_help_install_sh_and_the_docs() {
    let ssh_config = subcommand("ssh-config");
    let persist = ssh_config
        .get_arguments()
        .find(|arg| arg.get_long() == Some("persist"))
        .expect("ssh-config --persist");
    let help = persist.get_help().unwrap().to_string();
    let examples = help
        .split_once("time format (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(examples, _)| examples)
        .unwrap_or_else(|| panic!("--persist's help names no examples: {help}"));
    let default = vers_tunnel::ssh::config::DEFAULT_PERSIST;
    assert!(
        help.contains(&format!("[default: {default}]")),
        "--persist's help does not give its default {default}: {help}"
    );

    let install = install_sh_help();
    let install = install.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        install.contains(&format!("(ssh's time format: {examples}; default {default})")),
        "install.sh --help gives other --persist examples than ssh-config --help ({examples}; default {default}): {install}"
    );
    let page = read(Path::new("docs/multiplexing.md"));
    let page = page.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        page.contains(&format!("in ssh's time format ({examples}); the default is {default}")),
        "docs/multiplexing.md gives other --persist examples than --help ({examples}; default {default})"
    );

    let mut values: Vec<String> = examples.split(", ").map(str::to_string).collect();
    for (page, invocation) in all_invocations() {
        if let Some(at) = invocation.args.iter().position(|a| a == "--persist") {
            match invocation.args.get(at + 1) {
                Some(value) if value != "DURATION" && value != "0" => values.push(value.clone()),
                Some(_) => {}
                None => panic!("{}: --persist without a value", page.display()),
            }
        }
    }
    assert!(values.len() > 3, "{values:?}");
    for value in values {
        let argv = [
            "vers-tunnel",
            "ssh-config",
            "--multiplex",
            "--persist",
            &value,
        ];
        let parsed = vers_tunnel::cli::parse(argv, None, &Default::default());
        assert!(
            matches!(parsed, Ok(vers_tunnel::cli::Mode::SshConfig(_))),
            "the docs' --persist {value} is refused"
        );
    }
}

#[test]
fn exit_status_tables_are_the_codes_and_each_help_says_the_same() {
    let code = code_statuses();
    let tables = [
        ("README.md", "Exit status", vec!["--help"]),
        (
            "docs/forward.md",
            "Exit status of `forward`",
            vec!["forward", "--help"],
        ),
        (
            "docs/troubleshooting.md",
            "The doctor",
            vec!["doctor", "--help"],
        ),
    ];
    for (page, heading, help) in &tables {
        let rows = status_table(&read(Path::new(page)), heading)
            .unwrap_or_else(|| panic!("{page} has no heading {heading:?}"));
        let documented: BTreeSet<String> = rows.iter().cloned().collect();
        assert_eq!(
            rows.len(),
            documented.len(),
            "{page}: a status twice: {rows:?}"
        );
        assert!(
            documented.is_subset(&code),
            "{page}'s table has statuses the code does not ({:?}); src/error.rs has {code:?}",
            documented.difference(&code).collect::<Vec<_>>()
        );
        assert_eq!(
            documented,
            help_statuses(help),
            "{page}'s exit status table and `vers-tunnel {}` disagree",
            help.join(" ")
        );
    }
    let readme = status_table(&read(Path::new("README.md")), "Exit status").unwrap();
    assert_eq!(
        readme.into_iter().collect::<BTreeSet<_>>(),
        code,
        "README.md's exit status table (the man page's EXIT STATUS) and src/error.rs disagree"
    );
    // No other page keeps a table of its own that this test does not check.
    for page in pages() {
        let count = read(&page)
            .lines()
            .filter(|line| line.starts_with("| status |"))
            .count();
        let expected = tables
            .iter()
            .filter(|(p, _, _)| Path::new(p) == page)
            .count();
        assert_eq!(
            count,
            expected,
            "{}: an exit status table this test does not check",
            page.display()
        );
    }
}

#[test]
fn links_between_pages_resolve_to_files_and_headings() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let source = read(&page);
        for prose in parts(&source).prose {
            for rest in prose.split("](").skip(1) {
                let Some((target, _)) = rest.split_once(')') else {
                    continue;
                };
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let path = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                let full = Path::new(REPO).join(&path);
                if !full.exists() {
                    broken.push(format!(
                        "{}: ({target}): no file {}",
                        page.display(),
                        path.display()
                    ));
                    continue;
                }
                if !anchor.is_empty()
                    && !anchors(&fs::read_to_string(&full).unwrap()).contains(anchor)
                {
                    broken.push(format!(
                        "{}: ({target}): no heading with anchor #{anchor} in {}",
                        page.display(),
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} links found");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn readme_is_short_starts_with_the_ssh_block_and_links_every_page() {
    let readme = read(Path::new("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the issue allows about 250"
    );
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        first_block,
        [
            "Host *.vm.vers.sh",
            "User root",
            "ProxyCommand vers-tunnel %h"
        ],
        "README.md's first block is the ssh block a user copies"
    );
    for page in pages().iter().filter(|p| p.starts_with("docs")) {
        let link = format!("]({})", page.display());
        assert!(
            readme.contains(&link),
            "README.md does not link {}",
            page.display()
        );
    }
    assert!(
        readme.contains("./test.sh"),
        "the README names the test command CI runs"
    );
}

#[test]
fn contributing_names_every_module_of_src() {
    let layout = read(Path::new("CONTRIBUTING.md"));
    let mut missing = Vec::new();
    for entry in fs::read_dir(Path::new(REPO).join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let shown = if path.is_dir() {
            vec![format!("`{name}/`")]
        } else {
            let stem = name.trim_end_matches(".rs");
            vec![format!("`{stem}`"), format!("`{name}`")]
        };
        if !shown.iter().any(|s| layout.contains(&format!("| {s} |"))) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "CONTRIBUTING.md's layout table does not name {missing:?}"
    );
}
