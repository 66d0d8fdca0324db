//! `--connect-to HOST:PORT:CONNECT_HOST:CONNECT_PORT` (`target::ConnectTo`):
//! a parsed rule printed and read again is the same rule; a rule applies to
//! the host and port it names and sends them where it says; errors are
//! printable when the input is, and the command line's usage line is,
//! whatever the input.
#![no_main]

use fuzz_support::{assert_printable, is_hostile};
use libfuzzer_sys::fuzz_target;
use vers_tunnel::cli;
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::target::{ConnectTo, Host};

fuzz_target!(|text: &str| {
    match text.parse::<ConnectTo>() {
        Ok(rule) => {
            let host = |h: &Option<Host>| h.as_ref().map(Host::to_string).unwrap_or_default();
            let port = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
            let shown = format!(
                "{}:{}:{}:{}",
                host(&rule.host),
                port(rule.port),
                host(&rule.connect_host),
                port(rule.connect_port)
            );
            let again: ConnectTo = shown
                .parse()
                .unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse again: {e}"));
            assert_eq!(again, rule, "{text:?} printed as {shown:?}");
            let target = rule
                .host
                .clone()
                .unwrap_or_else(|| Host::Name("x.vm.vers.sh".into()));
            let target_port = rule.port.unwrap_or(443);
            let expected = (
                rule.connect_host.clone().unwrap_or_else(|| target.clone()),
                rule.connect_port.unwrap_or(target_port),
            );
            assert_eq!(rule.apply(&target, target_port), Some(expected), "{text:?}");
            if let Some(p) = rule.port {
                assert_eq!(
                    rule.apply(&target, p.wrapping_add(1).max(1)),
                    None,
                    "{text:?}"
                );
            }
        }
        Err(e) if !text.chars().any(is_hostile) => assert_printable("a --connect-to error", &e),
        Err(_) => {}
    }
    let args = ["vers-tunnel", "--connect-to", text, "x.vm.vers.sh"];
    if let Err(err) = cli::parse(args, None, &ProxyEnv::default()) {
        assert_printable("the usage error", &cli::one_line(&err));
    }
});
