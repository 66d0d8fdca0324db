//! `HOST[:PORT]` (`target::HostPort`, `target::parse_host`) and forward's
//! `[BIND_ADDR:]LOCAL_PORT` (`target::Listen`): a parsed target printed and
//! read again is the same target; a host's SNI name never panics; errors are
//! printable when the input is, and the command line's usage line is,
//! whatever the input.
#![no_main]

use fuzz_support::{assert_printable, is_hostile};
use libfuzzer_sys::fuzz_target;
use vers_tunnel::cli;
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::target::{parse_host, HostPort, Listen};

fuzz_target!(|text: &str| {
    // The command line and the proxy variables refuse such input before
    // any parser sees it (checked below, through cli::parse).
    let has_control = text.chars().any(is_hostile);
    match text.parse::<HostPort>() {
        Ok(target) => {
            let _ = target.host.server_name();
            let shown = match target.port {
                Some(port) => format!("{}:{port}", target.host),
                None => target.host.to_string(),
            };
            assert_printable("a target's Display", &shown);
            let again: HostPort = shown
                .parse()
                .unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse again: {e}"));
            assert_eq!(again, target, "{text:?} printed as {shown:?}");
        }
        Err(e) if !has_control => assert_printable("a target's error", &e),
        Err(_) => {}
    }
    match parse_host(text) {
        Ok(host) => assert_eq!(parse_host(&host.to_string()), Ok(host), "{text:?}"),
        Err(e) if !has_control => assert_printable("a host's error", &e),
        Err(_) => {}
    }
    match text.parse::<Listen>() {
        Ok(_) => {}
        Err(e) if !has_control => assert_printable("a listen address's error", &e),
        Err(_) => {}
    }
    // What the user reads.
    let env = ProxyEnv::default();
    let results = [
        cli::parse(["vers-tunnel", text], None, &env).map(|_| ()),
        cli::parse(["vers-tunnel", "forward", "0", text], None, &env).map(|_| ()),
        cli::parse(["vers-tunnel", "forward", text, "x.vm.vers.sh:22"], None, &env).map(|_| ()),
        cli::parse(["vers-tunnel", "doctor", text], None, &env).map(|_| ()),
    ];
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_printable("the usage error", &cli::one_line(err));
    }
});
