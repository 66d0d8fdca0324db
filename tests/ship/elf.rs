//! Reading an ELF file's machine and interpreter, to tell a static binary.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::process::run_within;
use crate::util::{text, RUN_DEADLINE};

/// The size the issue allows a static binary with ring: 2.5 MiB.
const MAX_STATIC_SIZE: u64 = 2 * 1024 * 1024 + 512 * 1024;

/// What the program headers of a 64-bit little-endian ELF file say.
struct Elf {
    machine: u16,
    /// The PT_INTERP path (the dynamic loader), if any.
    interpreter: Option<String>,
}

fn read_elf(path: &Path) -> Elf {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    assert_eq!(bytes[4], 2, "not a 64-bit ELF");
    assert_eq!(bytes[5], 1, "not little-endian");
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| {
        usize::try_from(u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())).unwrap()
    };
    const PT_INTERP: u32 = 3;
    let (phoff, phentsize, phnum) = (u64_at(0x20), usize::from(u16_at(0x36)), u16_at(0x38));
    let interpreter = (0..usize::from(phnum))
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32_at(ph) == PT_INTERP)
        .map(|ph| {
            let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
            text(&bytes[offset..offset + size])
                .trim_end_matches('\0')
                .to_string()
        });
    Elf {
        machine: u16_at(0x12),
        interpreter,
    }
}

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

pub fn assert_static(bin: &Path, machine: u16) {
    let elf = read_elf(bin);
    assert_eq!(
        elf.machine,
        machine,
        "{} is for another machine",
        bin.display()
    );
    assert_eq!(
        elf.interpreter,
        None,
        "{} has an ELF interpreter, so it is not static",
        bin.display()
    );
    let out = run_within(Command::new("file").arg("-b").arg(bin), b"", RUN_DEADLINE);
    out.assert_success("file (Debian package `file`)");
    let kind = text(&out.stdout);
    assert!(
        kind.contains("statically linked") || kind.contains("static-pie linked"),
        "file says: {kind}"
    );
    let size = fs::metadata(bin).unwrap().len();
    assert!(
        size <= MAX_STATIC_SIZE,
        "{} is {size} bytes, over the 2.5 MiB budget",
        bin.display()
    );
}
