//! `ssh-config --persist DURATION` (`ssh_config::parse_persist`, through
//! `vers_tunnel::fuzzing`): it accepts exactly what ssh's `convtime` reads as
//! more than zero and at most i32::MAX seconds (checked against a separate
//! reading here), keeps the text as written, and its errors and the
//! command line's usage line are printable whatever the input.
#![no_main]

use fuzz_support::assert_printable;
use libfuzzer_sys::fuzz_target;
use vers_tunnel::cli;
use vers_tunnel::fuzzing::parse_persist;
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::ssh::config as ssh_config;

fuzz_target!(|text: &str| {
    let expected = seconds(text).filter(|&t| t > 0 && t <= i32::MAX as u64);
    match parse_persist(text) {
        Ok(kept) => {
            assert_eq!(kept, text);
            assert!(
                expected.is_some(),
                "{text:?} accepted; ssh reads it as {:?}",
                seconds(text)
            );
        }
        Err(e) => {
            assert!(
                expected.is_none(),
                "{text:?} refused ({e}); ssh reads it as {expected:?}"
            );
            assert_printable("a --persist error", &e);
        }
    }
    let args = ["vers-tunnel", "ssh-config", "--multiplex", "--persist", text];
    match cli::parse(args, None, &ProxyEnv::default()) {
        Ok(cli::Mode::SshConfig(options)) => {
            assert_eq!(options.persist.as_deref(), Some(text));
            let options = ssh_config::Options {
                path: Some("/usr/bin/vers-tunnel".into()),
                ..options
            };
            let block = ssh_config::render(&options).expect("a plain path");
            assert!(
                block.contains(&format!("\n    ControlPersist {text}\n")),
                "{block}"
            );
        }
        Ok(other) => panic!("ssh-config parsed as {other:?}"),
        Err(err) => assert_printable("the usage error", &cli::one_line(&err)),
    }
});

/// ssh's convtime, read separately: `NUMBER[smhdwSMHDW]` repeated, no unit
/// meaning seconds; `None` for anything else or beyond u64.
fn seconds(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let scale = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(scale)?)?;
    }
    if let Some(n) = number {
        total = total.checked_add(n)?;
    }
    Some(total)
}
