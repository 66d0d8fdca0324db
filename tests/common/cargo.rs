//! Building a target of this package from inside a test or the demo, and
//! taking its path from cargo's own report (`--message-format=json`) instead
//! of guessing the target directory, profile and triple layout.

use std::env;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::process::run_within;

/// Bound on a build: a cold one compiles every dependency.
pub const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// `cargo build TARGETS` in this package, with the profile this program was
/// built with (dev or release); the executable of the target `kind` `name`
/// (e.g. "example", "demo") as cargo reports it. `Err` says why the build
/// failed; a build that outlives [`BUILD_DEADLINE`] panics.
pub fn build(targets: &[&str], kind: &str, name: &str) -> Result<PathBuf, String> {
    let profile: &[&str] = if cfg!(debug_assertions) {
        &[]
    } else {
        &["--release"]
    };
    build_with(&[&["build"], targets, profile].concat(), kind, name)
}

/// `cargo build --release --locked --target TRIPLE --bin NAME`: the release
/// binary `name` for another platform, where CI's own build puts it (so that
/// after CI's build this one has nothing to do); `Err` as for [`build`].
pub fn build_release_for(triple: &str, name: &str) -> Result<PathBuf, String> {
    build_with(
        &[
            "build",
            "--release",
            "--locked",
            "--target",
            triple,
            "--bin",
            name,
        ],
        "bin",
        name,
    )
}

/// `cargo test --no-run --lib --locked --target TRIPLE`: the library's unit
/// tests built for another platform, to be run there (or under Wine); `Err`
/// as for [`build`].
pub fn build_unit_tests_for(triple: &str, name: &str) -> Result<PathBuf, String> {
    build_with(
        &["test", "--no-run", "--lib", "--locked", "--target", triple],
        "lib",
        name,
    )
}

/// `cargo SUBCOMMAND ARGS` (`build ...` or `test --no-run ...`) in this
/// package; see [`build`].
fn build_with(args: &[&str], kind: &str, name: &str) -> Result<PathBuf, String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .arg(args[0])
        .arg("--message-format=json-render-diagnostics")
        .args(&args[1..])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // What `cargo run` or `cargo test` told this program about its package:
    // crates and build scripts whose fingerprints hold these (ring's holds
    // OUT_DIR) would otherwise see a change, and rebuild here and again in
    // the next `cargo test`.
    for (var, _) in env::vars_os() {
        let var = var.to_string_lossy();
        if var.starts_with("CARGO_PKG_")
            || var.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "OUT_DIR",
            ]
            .contains(&var.as_ref())
        {
            build.env_remove(var.as_ref());
        }
    }
    let out = run_within(&mut build, b"", BUILD_DEADLINE);
    if !out.status.success() {
        return Err(format!("{build:?} failed ({}): {}", out.status, out.stderr));
    }
    let report = String::from_utf8_lossy(&out.stdout);
    report
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .filter(|line| line.contains(&format!(r#""kind":["{kind}"]"#)))
        // The first "name" of an artifact line is its target's.
        .find(|line| json_string(line, "name").as_deref() == Some(name))
        .and_then(|line| json_string(line, "executable"))
        .map(PathBuf::from)
        .ok_or_else(|| format!("{build:?} reported no executable for the {kind} {name}"))
}

/// The first string value of `"key"` in one line of JSON, unescaped; `None`
/// if there is none (or it holds an escape a path does not need).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!(r#""{key}":""#))? + key.len() + 4;
    let mut value = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                c @ ('"' | '\\' | '/') => value.push(c),
                _ => return None,
            },
            c => value.push(c),
        }
    }
}
