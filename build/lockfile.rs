//! Reading Cargo.lock without a TOML parser: the one question build.rs (for
//! `--version`) and the tests that check `--version` ask of it. Shared with
//! `#[path]`, so it depends on nothing but std.

/// The version locked for package `name`: the `version = "..."` line right
/// after `name = "NAME"`, as cargo writes every `[[package]]` entry. The
/// first one if several versions are locked.
pub fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == wanted {
            return lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"');
        }
    }
    None
}
