//! Integration tests: the real `vers-tunnel` binary against a real TLS edge on loopback.

// Windows runs none of these natively: its binary is tested from Linux,
// under Wine (windows.rs here, and tests/ship/windows.rs).
#![cfg(unix)]
// Elsewhere the Linux-only tests are compiled out (see `not_built_here`),
// leaving imports and helpers that only they use.
#![cfg_attr(not(target_os = "linux"), allow(unused_imports, dead_code))]

mod util;

mod args;
#[cfg(target_os = "linux")]
mod demo;
mod doctor;
mod faults_local;
mod faults_network;
mod faults_trust;
mod forward;
#[cfg(target_os = "linux")]
mod forward_clients;
mod forward_mappings;
#[cfg(target_os = "linux")]
mod forward_soak;
mod hostile;
mod load;
mod multiplex;
mod openssl;
mod parsers;
mod proxy;
mod relay;
mod session;
mod ssh;
mod stdio;
mod trust;
#[cfg(target_os = "linux")]
mod windows;

/// Off Linux the tests that need it are compiled out: those that use network
/// or mount namespaces (a DNS server and `/etc` files of their own), `/proc`,
/// prctl, TCP_INFO. This one puts that in every run's list and count
/// as ignored, so that none of them passes unseen; `grep -rn
/// 'target_os = "linux"' tests/` lists them.
#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "NOT RUN: the tests that need Linux (namespaces, /proc, prctl, TCP_INFO) are not built here; grep -rn 'target_os = \"linux\"' tests/ lists them"]
fn _linux_only_tests_are_not_built_on_this_platform() {
    panic!("the Linux-only tests are not built on this platform");
}
