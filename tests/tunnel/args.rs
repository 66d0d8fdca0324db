//! Arguments and connection failures: one clear line and the documented status.

use std::net::TcpListener;

use crate::util;

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
fn refused_port_fails_with_the_address() {
    // A port that was just free: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    run_args(&[&target]).assert_failure(3, &[&format!("127.0.0.1:{port}: connection refused")]);
}

#[test]
fn unresolvable_name_fails_with_the_name() {
    run_args(&["no-such-vm.invalid"]).assert_failure(3, &["could not resolve no-such-vm.invalid"]);
}

#[test]
fn missing_ca_file_is_a_usage_error_naming_the_file() {
    run_args(&["--cacert", "/nonexistent/ca.pem", "h.sh"])
        .assert_failure(2, &["/nonexistent/ca.pem", "no such file"]);
}
