//! Whole command lines, for each mode (the tunnel, `forward`, `doctor`,
//! `ssh-config`): parsing never panics, and the one usage line a user reads
//! is printable whatever the arguments hold.
#![no_main]

use fuzz_support::assert_printable;
use libfuzzer_sys::fuzz_target;
use vers_tunnel::cli;
use vers_tunnel::proxy::ProxyEnv;

fuzz_target!(|input: (u8, Vec<&str>)| {
    let (mode, args) = input;
    let env = ProxyEnv::default();
    let subcommand = ["", "forward", "doctor", "ssh-config"][usize::from(mode % 4)];
    let result = cli::parse(argv(subcommand, &args), None, &env);
    // --help and --version print clap's own text to stdout, not a usage line.
    if let Err(err) = &result {
        if err.use_stderr() {
            assert_printable("the usage error", &cli::one_line(err));
        }
    }
});

/// `vers-tunnel [SUBCOMMAND] ARGS...`.
fn argv<'a>(subcommand: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let words = ["vers-tunnel", subcommand].into_iter().filter(|w| !w.is_empty());
    words.chain(rest.iter().copied()).collect()
}
