//! Whole command lines, for each mode (the tunnel, `forward`, `doctor`,
//! `ssh-config`): parsing never panics, and the one usage line a user reads
//! is printable whatever the arguments hold.
#![no_main]

use fuzz_support::assert_printable;
use libfuzzer_sys::fuzz_target;
use vers_tunnel::cli;
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::ssh::config as ssh_config;

fuzz_target!(|input: (u8, Vec<&str>)| {
    let (mode, args) = input;
    let env = ProxyEnv::default();
    let result = match mode % 4 {
        0 => cli::parse(argv("vers-tunnel", &args), None, &env).map(|_| ()),
        1 => cli::parse_forward(argv("forward", &args), None, &env).map(|_| ()),
        2 => cli::parse_doctor(argv("doctor", &args), None, &env).map(|_| ()),
        _ => ssh_config::parse(argv("ssh-config", &args)).map(|_| ()),
    };
    // --help and --version print clap's own text to stdout, not a usage line.
    if let Err(err) = &result {
        if err.use_stderr() {
            assert_printable("the usage error", &cli::one_line(err));
        }
    }
});

fn argv<'a>(first: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    std::iter::once(first).chain(rest.iter().copied()).collect()
}
