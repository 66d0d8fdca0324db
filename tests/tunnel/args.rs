//! Arguments and connection failures: one clear line and the documented status.

use crate::util;
#[cfg(target_os = "linux")]
use crate::util::common::dns::{in_private_network, write_resolver_etc, Dns, RESOLVER_FILES};
use crate::util::net::ClosedPort;
#[cfg(target_os = "linux")]
use crate::util::with_etc;

fn run_args(args: &[&str]) -> util::Run {
    util::run(util::bare_tunnel().args(args), b"")
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, words) in [
        (&[][..], &["HOST[:PORT]"][..]),
        (&["host:"], &["port after ':' is empty"]),
        (&["host:99999"], &["out of range"]),
        (&["[::1"], &["unclosed '['"]),
        (&["bad host"], &["a space"]),
        (&["--connect-to", "a:1:b", "h.sh"], &["4 fields"]),
        (&["--frobnicate", "h.sh"], &["--frobnicate"]),
        (&["-p", "1", "h.sh:2"], &["port given twice"]),
        // A subcommand is only a subcommand as the first word.
        (
            &["h.sh", "forward"],
            &["unexpected argument 'forward' found"],
        ),
        (&["doctr", "h.sh"], &["unexpected argument 'h.sh' found"]),
    ] {
        let run = run_args(args);
        run.assert_failure(2, words);
    }
}

#[test]
fn help_shows_the_ssh_config_example() {
    let run = run_args(&["--help"]);
    assert_eq!(run.code(), 0);
    let help = String::from_utf8_lossy(&run.stdout);
    assert!(help.contains("ProxyCommand vers-tunnel %h"), "{help}");
    assert!(help.contains("--connect-to"));
}

#[test]
fn help_lists_every_subcommand_with_what_it_does() {
    let run = run_args(&["--help"]);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let help = String::from_utf8_lossy(&run.stdout);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        ["forward", "doctor", "ssh-config", "help"],
        "{help}"
    );
}

#[test]
fn the_word_help_prints_the_help_of_the_tunnel_or_of_a_subcommand() {
    for (args, same_as) in [
        (&["help"][..], &["--help"][..]),
        (&["help", "forward"], &["forward", "--help"]),
        (&["help", "doctor"], &["doctor", "--help"]),
        (&["help", "ssh-config"], &["ssh-config", "--help"]),
    ] {
        let run = run_args(args);
        assert_eq!(run.code(), 0, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{args:?}");
        let expected = run_args(same_as);
        assert!(!expected.stdout.is_empty(), "{same_as:?} printed nothing");
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&expected.stdout),
            "{args:?} is not {same_as:?}"
        );
    }
    run_args(&["help", "frobnicate"]).assert_failure(
        2,
        &[
            "no help for 'frobnicate'",
            "forward",
            "doctor",
            "ssh-config",
        ],
    );
    let run = run_args(&["help", "http://alice:hunter2@proxy.corp"]);
    run.assert_failure(2, &["no help for 'http://alice:***@proxy.corp'"]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    run_args(&["help", "forward", "doctor"]).assert_failure(2, &["no help for 'forward doctor'"]);
}

#[test]
fn a_host_that_only_starts_with_help_is_still_a_host() {
    let closed = ClosedPort::new();
    let rule = format!(
        "help.example:443:{}:{}",
        closed.addr.ip(),
        closed.addr.port()
    );
    run_args(&["--connect-to", &rule, "help.example"])
        .assert_failure(3, &["help.example", "connection refused"]);
}

#[test]
fn every_subcommand_takes_v_and_version_as_the_top_level_does() {
    let short = run_args(&["-V"]);
    let long = run_args(&["--version"]);
    assert_eq!(short.code(), 0);
    assert_eq!(long.code(), 0);
    let first_line = String::from_utf8_lossy(&short.stdout).into_owned();
    assert_eq!(
        first_line,
        format!("vers-tunnel {}\n", env!("CARGO_PKG_VERSION"))
    );
    for subcommand in ["forward", "doctor", "ssh-config"] {
        for (flag, expected) in [("-V", &short), ("--version", &long)] {
            let run = run_args(&[subcommand, flag]);
            assert_eq!(run.code(), 0, "{subcommand} {flag}: {}", run.stderr);
            assert_eq!(
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&expected.stdout),
                "{subcommand} {flag}"
            );
        }
    }
}

#[test]
fn refused_port_fails_with_the_address() {
    // Bound but not listening, and held for the whole run: nothing else can
    // take the port and answer.
    let closed = ClosedPort::new();
    let target = closed.addr.to_string();
    run_args(&[&target]).assert_failure(3, &[&format!("{target}: connection refused")]);
}

#[test]
#[cfg(target_os = "linux")]
fn unresolvable_name_fails_with_the_name() {
    // The question goes to a nameserver of the test's own, which says the
    // name does not exist; nothing leaves the machine.
    const NAME: &str = "no-such-vm.invalid";
    let dir = util::TempDir::new("args");
    write_resolver_etc(dir.path());
    let etc = dir.path().to_path_buf();
    let (run, asked) = in_private_network(move || {
        let dns = Dns::start(&[]);
        let mut cmd = util::bare_tunnel();
        cmd.arg(NAME);
        with_etc(&mut cmd, &etc, &RESOLVER_FILES);
        let run = util::run(&mut cmd, b"");
        (run, dns.asked(NAME))
    });
    assert!(asked > 0, "the test's nameserver was not asked: {run:?}");
    // glibc's words for NXDOMAIN, from the resolver's code: the static
    // (musl) binary says the same.
    run.assert_failure(
        3,
        &[&format!(
            "could not resolve {NAME}: name or service not known"
        )],
    );
}

#[test]
fn missing_ca_file_is_a_usage_error_naming_the_file() {
    run_args(&["--cacert", "/nonexistent/ca.pem", "h.sh"])
        .assert_failure(2, &["/nonexistent/ca.pem", "no such file"]);
}

#[test]
fn hostile_hosts_and_rules_are_usage_errors_with_a_reason() {
    let long_name = format!("{}.vm.vers.sh", "a.".repeat(130));
    let long_label = format!("{}.vm.vers.sh", "a".repeat(64));
    for (args, words) in [
        (&[""][..], &["the host name is empty"][..]),
        (&["host:0"], &["port 0"]),
        (&["host:ssh"], &["port 'ssh' is not a number"]),
        (&["[::1]x"], &["unexpected 'x' after ']'"]),
        (&["[nope]:22"], &["not an IPv6 address"]),
        (&["a..b.sh"], &["empty label"]),
        (&["x:y:z"], &["not a valid IPv6 address"]),
        (&["héllo.sh"], &["contains 'é'"]),
        (&[&long_name], &["DNS allows at most 253"]),
        (&[&long_label], &["DNS allows at most 63"]),
        (
            &["h.sh:1\n2"],
            &["\"h.sh:1\\n2\"", "control character (U+000A)"],
        ),
        (
            &["\u{1b}[2Jh.sh"],
            &["\"\\u{1b}[2Jh.sh\"", "control character"],
        ),
        (&["--connect-to", "", "h.sh"], &["4 fields", "found 1"]),
        (
            &["--connect-to", "a:1:b:2:3", "h.sh"],
            &["4 fields", "found 5"],
        ),
        (
            &["--connect-to", "a:x:b:2", "h.sh"],
            &["port 'x' is not a number"],
        ),
        (&["--connect-to", "a:1:b:99999", "h.sh"], &["out of range"]),
        (&["--connect-to", "a:1:[::1:2", "h.sh"], &["unclosed '['"]),
        (&["--connect-to", "a:1:b c:2", "h.sh"], &["a space"]),
        (
            &["--connect-to", "a:1:[zz]:2", "h.sh"],
            &["not an IPv6 address"],
        ),
    ] {
        let run = run_args(args);
        run.assert_failure(2, words);
        assert!(
            !run.stderr.trim_end().chars().any(char::is_control),
            "{:?}",
            run.stderr
        );
    }
}

#[test]
fn nul_byte_in_a_host_is_refused_by_the_parser() {
    // exec(2) cannot carry a NUL in an argument, so this one is checked at
    // the parser the binary uses.
    let err = vers_tunnel::cli::parse(
        ["vers-tunnel", "a\0b.sh"],
        None,
        &vers_tunnel::proxy::ProxyEnv::default(),
    )
    .unwrap_err();
    let msg = vers_tunnel::cli::one_line(&err);
    assert!(msg.contains("control character (U+0000)"), "{msg}");
    let err = "a\0b.sh"
        .parse::<vers_tunnel::target::HostPort>()
        .unwrap_err();
    assert!(err.contains("a NUL byte"), "{err}");
}

/// Asserts a usage error: exit 2, one line, and nothing a terminal acts on.
fn assert_inert_usage_error(run: &util::Run, args: &[&str]) {
    assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr);
    assert!(
        run.stderr.starts_with("vers-tunnel: ") && run.stderr.lines().count() == 1,
        "{args:?}: {:?}",
        run.stderr
    );
    assert!(
        !run.stderr
            .trim_end()
            .chars()
            .any(vers_tunnel::text::needs_escape),
        "{args:?}: {:?}",
        run.stderr
    );
}

#[test]
fn no_argument_error_repeats_a_proxy_password_in_any_subcommand() {
    const URL_WITH_CONTROL: &str = "http://alice:hunter2\x01@127.0.0.1:9";
    const URL: &str = "http://alice:hunter2@proxy.test:3128";
    for args in [
        // A control character in the password: the URL is refused before clap.
        &["--proxy", URL_WITH_CONTROL, "h.sh"][..],
        &["forward", "--proxy", URL_WITH_CONTROL, "0", "h.sh:22"],
        &["doctor", "--proxy", URL_WITH_CONTROL, "h.sh"],
        // clap's own echoes of an argument it rejects, whole or in part.
        &["h.sh", URL],
        &[URL],
        &["alice:hunter2@proxy.test"],
        &["--connect-timeout", URL, "h.sh"],
        &["--connect-to", "a:1:b:2:alice:hunter2@proxy.test", "h.sh"],
        &["forward", "0", URL],
        &["forward", "alice:hunter2@proxy.test:1", "h.sh:22"],
        &["forward", "--max-connections", URL, "0", "h.sh:22"],
        &["doctor", "h.sh", URL],
        &["doctor", "--wait", URL, "h.sh"],
        &["ssh-config", URL],
        &["ssh-config", "--multiplex", "--persist", URL],
    ] {
        let run = run_args(args);
        assert_inert_usage_error(&run, args);
        assert!(!run.stderr.contains("hunter2"), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(":***@"), "{args:?}: {}", run.stderr);
    }
    let run = run_args(&["--proxy", URL_WITH_CONTROL, "h.sh"]);
    assert!(
        run.stderr.contains(
            "argument \"http://alice:***@127.0.0.1:9\" contains a control character (U+0001)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn no_raw_control_character_reaches_the_terminal_through_an_argument_error() {
    for args in [
        &["h.sh", "\x1b[2Jx"][..],
        &["--connect-timeout", "\x1b]0;owned\x07", "h.sh"],
        &["--frobnicate\x1b[2J", "h.sh"],
        &["forward", "0", "h.sh:22", "\x1b[2J"],
        &["forward", "--max-connections", "\x1b[2J", "0", "h.sh:22"],
        &["doctor", "h.sh", "\x1b[2J"],
        &["doctor", "--wait", "\x1b[2J", "h.sh"],
        &["ssh-config", "\x1b[2J"],
        &["ssh-config", "--bogus\x1b[2J"],
        &["ssh-config", "--multiplex", "--persist", "\x1b[2J"],
        &["ssh-config", "--host", "x\u{202e}y"],
        &["ssh-config", "--path", "/opt/a\nvers-tunnel: fake"],
    ] {
        let run = run_args(args);
        assert_inert_usage_error(&run, args);
        assert!(
            run.stderr.contains("contains a control character"),
            "{args:?}: {}",
            run.stderr
        );
    }
}
