//! Checks that each FILE is a Mach-O executable a Mac would load: for CPU
//! (`arm64` or `x86_64`), asking for no macOS newer than VERSION, and signed
//! where macOS demands it. `.ci/macos.sh` runs it on the Apple binaries it
//! builds; the rules, and their tests, are in `tests/ship/macho.rs`.
//!
//! Usage: `check_macho CPU VERSION FILE...`. It prints what each file is and
//! exits 1 at the first file that fails, saying why.

#[path = "../tests/ship/macho.rs"]
mod macho;

use std::env;
use std::fs;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let [cpu, version, files @ ..] = args.as_slice() else {
        return usage();
    };
    let cpu = match cpu.as_str() {
        "arm64" => macho::CPU_TYPE_ARM64,
        "x86_64" => macho::CPU_TYPE_X86_64,
        _ => return usage(),
    };
    let (Some(min_macos), false) = (macho::parse_version(version), files.is_empty()) else {
        return usage();
    };
    for file in files {
        let checked = fs::read(file)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| macho::check_executable(&bytes, cpu, min_macos));
        match checked {
            Ok(summary) => println!("{file}: {summary}"),
            Err(why) => {
                eprintln!("check_macho: {file}: {why}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: check_macho arm64|x86_64 MACOS_VERSION FILE...");
    ExitCode::from(2)
}
