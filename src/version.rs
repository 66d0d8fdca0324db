//! What this build is made of, for `--version` and the ssh-config comment: an old
//! golden image can be told apart by its rustls, its roots and its target.

use std::sync::LazyLock;

use crate::tls::CRYPTO_PROVIDER;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The rustls version locked in Cargo.lock at build time (see build.rs).
pub const RUSTLS_VERSION: &str = env!("VERS_TUNNEL_RUSTLS_VERSION");
/// The webpki-roots version locked in Cargo.lock at build time (see build.rs).
pub const WEBPKI_ROOTS_VERSION: &str = env!("VERS_TUNNEL_WEBPKI_ROOTS_VERSION");
/// The target triple this binary was built for, e.g. `x86_64-unknown-linux-musl`.
pub const TARGET: &str = env!("VERS_TUNNEL_TARGET");

/// How many trust anchors are built in (more may be added with `--cacert`).
pub fn builtin_roots() -> usize {
    webpki_roots::TLS_SERVER_ROOTS.len()
}

/// The text after `vers-tunnel ` in `vers-tunnel --version`.
pub fn long_version() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{VERSION}\n\
             rustls {RUSTLS_VERSION}, crypto provider {CRYPTO_PROVIDER}\n\
             webpki-roots {WEBPKI_ROOTS_VERSION}, {} built-in roots\n\
             built for {TARGET}",
            builtin_roots()
        )
    });
    &TEXT
}

/// The Cargo.lock reader build.rs uses, for the test that checks what it recorded.
#[cfg(test)]
#[path = "../build/lockfile.rs"]
mod lockfile;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_lock_file() {
        let lock = include_str!("../Cargo.lock");
        for (name, version) in [
            ("rustls", RUSTLS_VERSION),
            ("webpki-roots", WEBPKI_ROOTS_VERSION),
        ] {
            assert_eq!(
                lockfile::locked_version(lock, name),
                Some(version),
                "{name} {version} is not what Cargo.lock locks"
            );
        }
    }

    #[test]
    fn long_version_names_provider_roots_and_target() {
        let text = long_version();
        assert!(text.starts_with(VERSION), "{text}");
        assert!(text.contains(&format!("rustls {RUSTLS_VERSION}, crypto provider ring")));
        assert!(text.contains(&format!("{} built-in roots", builtin_roots())));
        assert!(builtin_roots() > 100, "webpki-roots looks empty");
        assert!(text.ends_with(&format!("built for {TARGET}")));
    }
}
