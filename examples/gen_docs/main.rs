//! Writes the man page and the shell completions under `share/`:
//!
//! ```text
//! cargo run --example gen_docs            # after changing a flag, a subcommand or README's exit table
//! cargo run --example gen_docs -- --check # exit 1 naming what is out of date
//! ```
//!
//! install.sh installs them from there; `cargo test --test ship` fails while they are stale.

mod docs;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("gen_docs: unknown argument {other:?}; the only one is --check");
            return ExitCode::from(2);
        }
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = match std::fs::read_to_string(repo.join("README.md")) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("gen_docs: cannot read README.md: {e}");
            return ExitCode::from(1);
        }
    };
    let files = match docs::generate(&readme) {
        Ok(files) => files,
        Err(why) => {
            eprintln!("gen_docs: {why}");
            return ExitCode::from(1);
        }
    };
    let mut stale = 0;
    for file in files {
        let path = repo.join(file.path);
        if std::fs::read(&path).is_ok_and(|old| old == file.contents) {
            continue;
        }
        stale += 1;
        if check {
            eprintln!("gen_docs: {} is out of date", file.path);
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &file.contents));
        match written {
            Ok(()) => eprintln!("gen_docs: wrote {}", file.path),
            Err(e) => {
                eprintln!("gen_docs: cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
    }
    if check && stale > 0 {
        eprintln!("gen_docs: run `cargo run --example gen_docs` and commit the result");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
