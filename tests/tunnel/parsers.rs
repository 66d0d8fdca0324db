//! Property tests of the argument parsers (`HOST[:PORT]`, `--connect-to`, the
//! whole command line): hostile input never panics, is refused in one clean
//! line, and everything accepted is a value the tunnel can use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vers_tunnel::cli;
use vers_tunnel::target::{ConnectTo, Host, HostPort};

/// A DNS name that must be accepted: 1-5 labels, the last starting with a letter.
fn dns_name() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9]([a-zA-Z0-9-]{0,40}[a-zA-Z0-9])?\\.){0,4}[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
}

/// Any host literal the parser accepts, as written on a command line.
fn host_text() -> impl Strategy<Value = (String, Host)> {
    prop_oneof![
        dns_name().prop_map(|n| (n.clone(), Host::Name(n.to_ascii_lowercase()))),
        any::<Ipv4Addr>().prop_map(|ip| (ip.to_string(), Host::Ip(IpAddr::V4(ip)))),
        any::<Ipv6Addr>().prop_map(|ip| (format!("[{ip}]"), Host::Ip(IpAddr::V6(ip)))),
    ]
}

/// Strings that look a bit like hosts and rules, with hostile characters mixed in.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.:\\[\\]_ -]{0,40}",
        "[\\x00-\\x1f\\x7f:\\[\\].a-z0-9]{0,20}",
        "[0-9]{0,30}(:[0-9]{0,30}){0,5}",
    ]
}

/// What every refusal must look like to the user.
fn assert_one_clean_line(msg: &str) {
    assert!(!msg.is_empty());
    assert!(
        !msg.chars().any(char::is_control),
        "control character in error {msg:?}"
    );
}

proptest! {
    #[test]
    fn host_port_never_panics_and_accepts_only_usable_hosts(s in hostile()) {
        if let Ok(hp) = s.parse::<HostPort>() {
            // Must not hit the parser's `unreachable!`.
            let _ = hp.host.server_name();
            if let Host::Name(name) = &hp.host {
                prop_assert!(name.len() <= 253);
                prop_assert!(!name.ends_with('.'));
                prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"-._".contains(&b)));
            }
            prop_assert_ne!(hp.port, Some(0));
        }
    }

    #[test]
    fn accepted_hosts_round_trip_through_display((text, host) in host_text(), port in 1u16..) {
        let hp: HostPort = format!("{text}:{port}").parse().unwrap();
        prop_assert_eq!(&hp.host, &host);
        prop_assert_eq!(hp.port, Some(port));
        let again: HostPort = format!("{}:{port}", hp.host).parse().unwrap();
        prop_assert_eq!(again, hp);
        let bare: HostPort = text.parse().unwrap();
        prop_assert_eq!(bare.port, None);
    }

    #[test]
    fn ports_outside_1_to_65535_are_refused(name in dns_name(), port in 65_536u64..) {
        let err = format!("{name}:{port}").parse::<HostPort>().unwrap_err();
        prop_assert!(err.contains("out of range"), "{}", err);
        let err = format!("{name}:0").parse::<HostPort>().unwrap_err();
        prop_assert!(err.contains("port 0"), "{}", err);
    }

    #[test]
    fn connect_to_never_panics(s in hostile()) {
        if let Ok(rule) = s.parse::<ConnectTo>() {
            let target = Host::Name("x.vm.vers.sh".into());
            if let Some((host, port)) = rule.apply(&target, 443) {
                let _ = host.server_name();
                prop_assert_ne!(port, 0);
            }
        }
    }

    #[test]
    fn connect_to_rules_substitute_what_they_say(
        (h, host) in host_text(),
        p in 1u16..,
        (ch, connect_host) in host_text(),
        cp in 1u16..,
        wild_host in any::<bool>(),
        wild_port in any::<bool>(),
    ) {
        let rule = format!(
            "{}:{}:{ch}:{cp}",
            if wild_host { "" } else { h.as_str() },
            if wild_port { String::new() } else { p.to_string() },
        );
        let parsed: ConnectTo = rule.parse().unwrap();
        prop_assert_eq!(parsed.apply(&host, p), Some((connect_host.clone(), cp)));
        // Empty connect fields keep the original.
        let keep: ConnectTo = format!("{h}:{p}::").parse().unwrap();
        prop_assert_eq!(keep.apply(&host, p), Some((host.clone(), p)));
    }

    #[test]
    fn command_line_errors_are_one_clean_line(
        args in proptest::collection::vec(
            prop_oneof![
                hostile(),
                Just("--connect-to".to_string()),
                Just("--cacert".to_string()),
                Just("-p".to_string()),
                Just("--connect-timeout".to_string()),
                Just("-4".to_string()),
                Just("-6".to_string()),
            ],
            0..5,
        )
    ) {
        let mut argv = vec!["vers-tunnel".to_string()];
        argv.extend(args);
        if let Err(err) = cli::parse(argv, None, &vers_tunnel::proxy::ProxyEnv::default()) {
            if err.use_stderr() {
                assert_one_clean_line(&cli::one_line(&err));
            }
        }
    }
}
