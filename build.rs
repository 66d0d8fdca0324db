//! Records what `--version` says about the build: the rustls and webpki-roots
//! versions locked in Cargo.lock, and the target triple (a static musl build
//! and a glibc build must be told apart on a golden image).

use std::env;
use std::fs;
use std::path::Path;

#[path = "build/lockfile.rs"]
mod lockfile;

use lockfile::locked_version;

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let lock_path = Path::new(&manifest_dir).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    // Without a lock file (not the case in this repository) say so rather than guess.
    let lock = fs::read_to_string(&lock_path).unwrap_or_default();
    for (name, var) in [
        ("rustls", "VERS_TUNNEL_RUSTLS_VERSION"),
        ("webpki-roots", "VERS_TUNNEL_WEBPKI_ROOTS_VERSION"),
    ] {
        let version = locked_version(&lock, name).unwrap_or("unknown");
        println!("cargo:rustc-env={var}={version}");
    }
    let target = env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=VERS_TUNNEL_TARGET={target}");
}
