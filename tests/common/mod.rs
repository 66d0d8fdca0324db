//! Support shared by both test crates, `tests/tunnel` and `tests/ship`, and by
//! the demo example, which include this directory with `#[path]`: a clean
//! environment and a temp dir for the programs under test, running them with
//! a deadline, a test CA and TLS edge on loopback, and a DNS server and
//! `/etc` files of the tests' own.

pub mod assert;
pub mod cargo;
pub mod deadline;
// Linux only: network namespaces.
#[cfg(target_os = "linux")]
pub mod dns;
pub mod edge;
pub mod pki;
// Linux only: mount namespaces.
#[cfg(target_os = "linux")]
pub mod private_etc;
pub mod process;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod slack;
pub mod sys;
pub mod tempdir;
// Linux only: Debian's wine64.
#[cfg(target_os = "linux")]
pub mod wine;

use std::process::Command;

/// Environment variables that change what the programs under test trust
/// (`SSL_CERT_FILE`), print (`RUST_LOG`), log in with (`SSH_AUTH_SOCK`: an
/// agent's keys) or connect through (the proxy variables): a test must not
/// inherit them from whoever runs it.
const INHERITED_SETTINGS: [&str; 9] = [
    "SSL_CERT_FILE",
    "RUST_LOG",
    "SSH_AUTH_SOCK",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Removes [`INHERITED_SETTINGS`] from `cmd`'s environment.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for var in INHERITED_SETTINGS {
        cmd.env_remove(var);
    }
    cmd
}
