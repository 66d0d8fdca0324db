//! Reading a Mach-O file's header and load commands, to tell a binary a Mac would
//! load: 64-bit, for the right CPU, an executable, asking for a macOS no newer
//! than we promise, and code-signed where macOS demands it (arm64).
//!
//! Two users: `examples/check_macho.rs`, which `.ci/macos.sh` runs on the Apple
//! binaries it builds, and the tests below, which prove each rule on made-up files.

use std::fmt;

use ring::digest::{digest, SHA256};

/// `cputype` of an Intel Mac's executables.
pub const CPU_TYPE_X86_64: u32 = 0x0100_0007;
/// `cputype` of an Apple silicon Mac's executables.
pub const CPU_TYPE_ARM64: u32 = 0x0100_000c;

const MH_MAGIC_64: u32 = 0xfeed_facf;
/// A universal file's magic, read little-endian (it is stored big-endian).
const FAT_CIGAM: u32 = 0xbeba_feca;
const MH_EXECUTE: u32 = 2;
const HEADER_SIZE: usize = 32;
const LC_CODE_SIGNATURE: u32 = 0x1d;
const LC_VERSION_MIN_MACOSX: u32 = 0x24;
const LC_BUILD_VERSION: u32 = 0x32;
const PLATFORM_MACOS: u32 = 1;
// The code signature's structures are big-endian.
const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CSSLOT_CODEDIRECTORY: u32 = 0;
const CS_HASHTYPE_SHA256: u8 = 2;
const SHA256_LEN: usize = 32;

/// What a file that passed looks like, for the log.
#[derive(Debug)]
pub struct Summary {
    cpu: u32,
    min_macos: u32,
    /// Pages whose hash matched the code signature (0: not signed).
    signed_pages: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mach-O 64-bit {} executable for macOS {} and newer",
            cpu_name(self.cpu),
            Version(self.min_macos)
        )?;
        match self.signed_pages {
            0 => write!(f, ", not signed"),
            n => write!(f, ", signed ({n} page hashes match)"),
        }
    }
}

/// A macOS version as Mach-O stores it: `major << 16 | minor << 8 | patch`.
struct Version(u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor, patch) = (self.0 >> 16, (self.0 >> 8) & 0xff, self.0 & 0xff);
        write!(f, "{major}.{minor}")?;
        if patch != 0 {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

/// `"11.0"` or `"10.12.6"` as Mach-O stores it.
pub fn parse_version(text: &str) -> Option<u32> {
    let mut parts = text.split('.').map(|part| part.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    let fits = major <= 0xffff && minor <= 0xff && patch <= 0xff && parts.next().is_none();
    fits.then_some(major << 16 | minor << 8 | patch)
}

fn cpu_name(cpu: u32) -> String {
    match cpu {
        CPU_TYPE_ARM64 => "arm64".to_string(),
        CPU_TYPE_X86_64 => "x86_64".to_string(),
        other => format!("cputype {other:#x}"),
    }
}

fn u32_at(bytes: &[u8], at: usize, from: fn([u8; 4]) -> u32) -> Result<u32, String> {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|word| word.try_into().ok())
        .map(from)
        .ok_or_else(|| format!("the file ends before byte {at}, where it should go on"))
}

/// Checks what a Mac's loader checks before running `bytes` as a program on
/// `cpu`, on every macOS from `min_macos` on; the error says which rule failed.
pub fn check_executable(bytes: &[u8], cpu: u32, min_macos: u32) -> Result<Summary, String> {
    let le = |at| u32_at(bytes, at, u32::from_le_bytes);
    match le(0)? {
        MH_MAGIC_64 => {}
        FAT_CIGAM => return Err("a universal (fat) file, not one for a single CPU".into()),
        magic => return Err(format!("not a 64-bit Mach-O file (magic {magic:#010x})")),
    }
    let found = le(4)?;
    if found != cpu {
        return Err(format!(
            "built for {}, not {}",
            cpu_name(found),
            cpu_name(cpu)
        ));
    }
    let file_type = le(12)?;
    if file_type != MH_EXECUTE {
        return Err(format!(
            "file type {file_type}, not an executable (MH_EXECUTE, 2)"
        ));
    }
    let mut at = HEADER_SIZE;
    let (mut min_os, mut signature) = (None, None);
    for _ in 0..le(16)? {
        let (cmd, size) = (le(at)?, le(at + 4)? as usize);
        if size < 8 {
            return Err(format!("a load command at byte {at} of size {size}"));
        }
        match cmd {
            LC_BUILD_VERSION => match le(at + 8)? {
                PLATFORM_MACOS => min_os = Some(le(at + 12)?),
                platform => return Err(format!("built for platform {platform}, not macOS (1)")),
            },
            LC_VERSION_MIN_MACOSX => min_os = Some(le(at + 8)?),
            LC_CODE_SIGNATURE => signature = Some((le(at + 8)? as usize, le(at + 12)? as usize)),
            _ => {}
        }
        at += size;
    }
    let min_os = min_os.ok_or("no minimum macOS version (LC_BUILD_VERSION)")?;
    if min_os > min_macos {
        return Err(format!(
            "asks for macOS {} or newer, so macOS {} refuses it",
            Version(min_os),
            Version(min_macos)
        ));
    }
    let signed_pages = match signature {
        Some((offset, size)) => check_signature(bytes, offset, size)?,
        None if cpu == CPU_TYPE_ARM64 => {
            return Err(
                "no code signature: macOS on Apple silicon kills unsigned arm64 code".into(),
            )
        }
        None => 0,
    };
    Ok(Summary {
        cpu,
        min_macos: min_os,
        signed_pages,
    })
}

/// Checks that the embedded signature at `offset` holds a SHA-256 code
/// directory whose page hashes match every byte before it (an ad-hoc signature,
/// as the linker writes, is enough for macOS); returns the number of pages.
fn check_signature(bytes: &[u8], offset: usize, size: usize) -> Result<usize, String> {
    let be = |at| u32_at(bytes, at, u32::from_be_bytes);
    if offset.checked_add(size).is_none_or(|end| end > bytes.len()) {
        return Err("the code signature runs past the end of the file".into());
    }
    if be(offset)? != CSMAGIC_EMBEDDED_SIGNATURE {
        return Err("the code signature is not an embedded signature".into());
    }
    let mut directory = None;
    for slot in (0..be(offset + 8)? as usize).map(|i| offset + 12 + 8 * i) {
        if be(slot)? == CSSLOT_CODEDIRECTORY {
            directory = Some(offset + be(slot + 4)? as usize);
            break;
        }
    }
    let cd = directory.ok_or("the code signature has no code directory")?;
    if be(cd)? != CSMAGIC_CODEDIRECTORY {
        return Err("the code signature's code directory has the wrong magic".into());
    }
    let (hashes, pages, limit) = (be(cd + 16)? as usize, be(cd + 28)? as usize, be(cd + 32)?);
    let Some(&[hash_size, hash_type, _, page_shift]) = bytes.get(cd + 36..cd + 40) else {
        return Err("the code directory is cut short".into());
    };
    if hash_type != CS_HASHTYPE_SHA256 || usize::from(hash_size) != SHA256_LEN {
        return Err(format!(
            "the code directory hashes with type {hash_type}, not SHA-256 (2)"
        ));
    }
    if limit as usize != offset {
        return Err(format!(
            "the code signature covers {limit} bytes, not the {offset} before it"
        ));
    }
    let page = 1usize
        .checked_shl(u32::from(page_shift))
        .ok_or("the code directory's page size is out of range")?;
    if pages != offset.div_ceil(page) {
        return Err(format!(
            "the code directory has {pages} page hashes for {offset} bytes in pages of {page}"
        ));
    }
    for (i, code) in bytes[..offset].chunks(page).enumerate() {
        let at = cd + hashes + i * SHA256_LEN;
        let want = bytes
            .get(at..at + SHA256_LEN)
            .ok_or("the code directory is cut short")?;
        if digest(&SHA256, code).as_ref() != want {
            return Err(format!(
                "page {i} (bytes {} to {}) does not match its hash in the code signature",
                i * page,
                i * page + code.len()
            ));
        }
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MH_OBJECT: u32 = 1;
    const MH_DYLIB: u32 = 6;
    const PAGE_SHIFT: u8 = 12;
    const MACOS_11: u32 = 11 << 16;

    /// A small Mach-O file: the header, LC_BUILD_VERSION, 3 pages of "code", and
    /// when `signed`, LC_CODE_SIGNATURE with a signature over all of that, laid
    /// out as the linker does.
    fn made_up(cpu: u32, file_type: u32, min_os: u32, signed: bool) -> Vec<u8> {
        let le = |out: &mut Vec<u8>, words: &[u32]| {
            words.iter().for_each(|w| out.extend(w.to_le_bytes()))
        };
        let be = |out: &mut Vec<u8>, words: &[u32]| {
            words.iter().for_each(|w| out.extend(w.to_be_bytes()))
        };
        let commands = if signed { 2 } else { 1 };
        let mut file = Vec::new();
        le(
            &mut file,
            &[
                MH_MAGIC_64,
                cpu,
                0,
                file_type,
                commands,
                24 + 16 * (commands - 1),
                0,
                0,
            ],
        );
        le(
            &mut file,
            &[LC_BUILD_VERSION, 24, PLATFORM_MACOS, min_os, min_os, 0],
        );
        let signature_at = file.len();
        if signed {
            le(&mut file, &[LC_CODE_SIGNATURE, 16, 0, 0]);
        }
        file.extend((0..3 * 4096 - 100).map(|i: u32| (i * 7 % 251) as u8));
        if !signed {
            return file;
        }
        let offset = file.len();
        let page = 1usize << PAGE_SHIFT;
        let pages = offset.div_ceil(page) as u32;
        // The superblob's header and one index entry, then the code directory's
        // fields up to its hashes.
        let (directory_at, hashes_at) = (20, 44);
        let length = directory_at + hashes_at + pages * SHA256_LEN as u32;
        let command = &mut file[signature_at + 8..signature_at + 16];
        command[..4].copy_from_slice(&(offset as u32).to_le_bytes());
        command[4..].copy_from_slice(&length.to_le_bytes());
        let mut blob = Vec::new();
        be(&mut blob, &[CSMAGIC_EMBEDDED_SIGNATURE, length, 1]);
        be(&mut blob, &[CSSLOT_CODEDIRECTORY, directory_at]);
        be(&mut blob, &[CSMAGIC_CODEDIRECTORY, length - directory_at]);
        let (version, adhoc) = (0x20400, 0x2);
        be(
            &mut blob,
            &[version, adhoc, hashes_at, 0, 0, pages, offset as u32],
        );
        blob.extend([
            SHA256_LEN as u8,
            CS_HASHTYPE_SHA256,
            0,
            PAGE_SHIFT,
            0,
            0,
            0,
            0,
        ]);
        for code in file.chunks(page) {
            blob.extend(digest(&SHA256, code).as_ref());
        }
        file.extend(blob);
        file
    }

    fn refusal(bytes: &[u8], cpu: u32) -> String {
        match check_executable(bytes, cpu, MACOS_11) {
            Ok(summary) => panic!("accepted: {summary}"),
            Err(why) => why,
        }
    }

    #[test]
    fn accepts_a_signed_arm64_and_an_unsigned_x86_64_executable() {
        let arm = made_up(CPU_TYPE_ARM64, MH_EXECUTE, MACOS_11, true);
        let summary = check_executable(&arm, CPU_TYPE_ARM64, MACOS_11).unwrap();
        assert_eq!(
            summary.to_string(),
            "Mach-O 64-bit arm64 executable for macOS 11.0 and newer, signed (3 page hashes match)"
        );
        let intel = made_up(
            CPU_TYPE_X86_64,
            MH_EXECUTE,
            parse_version("10.12").unwrap(),
            false,
        );
        let summary = check_executable(&intel, CPU_TYPE_X86_64, MACOS_11).unwrap();
        assert_eq!(
            summary.to_string(),
            "Mach-O 64-bit x86_64 executable for macOS 10.12 and newer, not signed"
        );
    }

    #[test]
    fn refuses_an_executable_for_the_other_cpu() {
        let intel = made_up(CPU_TYPE_X86_64, MH_EXECUTE, MACOS_11, true);
        assert_eq!(
            refusal(&intel, CPU_TYPE_ARM64),
            "built for x86_64, not arm64"
        );
        let arm = made_up(CPU_TYPE_ARM64, MH_EXECUTE, MACOS_11, true);
        assert_eq!(
            refusal(&arm, CPU_TYPE_X86_64),
            "built for arm64, not x86_64"
        );
    }

    #[test]
    fn refuses_a_library_and_an_object_file() {
        for file_type in [MH_DYLIB, MH_OBJECT] {
            let file = made_up(CPU_TYPE_ARM64, file_type, MACOS_11, true);
            assert_eq!(
                refusal(&file, CPU_TYPE_ARM64),
                format!("file type {file_type}, not an executable (MH_EXECUTE, 2)")
            );
        }
    }

    #[test]
    fn refuses_a_linux_binary_a_universal_file_and_a_cut_one() {
        let elf = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            refusal(&elf, CPU_TYPE_X86_64),
            "not a 64-bit Mach-O file (magic 0x464c457f)"
        );
        let fat = [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2];
        assert!(refusal(&fat, CPU_TYPE_ARM64).contains("universal"));
        let whole = made_up(CPU_TYPE_ARM64, MH_EXECUTE, MACOS_11, true);
        assert!(refusal(&whole[..40], CPU_TYPE_ARM64).starts_with("the file ends before byte"));
        let signed_end = whole.len() - 1;
        assert_eq!(
            refusal(&whole[..signed_end], CPU_TYPE_ARM64),
            "the code signature runs past the end of the file"
        );
    }

    /// Zig's own default when MACOSX_DEPLOYMENT_TARGET is unset is macOS 15.
    #[test]
    fn refuses_an_executable_that_asks_for_a_newer_macos_than_promised() {
        let file = made_up(CPU_TYPE_X86_64, MH_EXECUTE, 15 << 16, false);
        assert_eq!(
            refusal(&file, CPU_TYPE_X86_64),
            "asks for macOS 15.0 or newer, so macOS 11.0 refuses it"
        );
    }

    #[test]
    fn refuses_arm64_code_that_is_unsigned_or_changed_after_signing() {
        let unsigned = made_up(CPU_TYPE_ARM64, MH_EXECUTE, MACOS_11, false);
        assert!(refusal(&unsigned, CPU_TYPE_ARM64).starts_with("no code signature"));
        let mut changed = made_up(CPU_TYPE_ARM64, MH_EXECUTE, MACOS_11, true);
        changed[5000] ^= 1;
        assert_eq!(
            refusal(&changed, CPU_TYPE_ARM64),
            "page 1 (bytes 4096 to 8192) does not match its hash in the code signature"
        );
    }

    #[test]
    fn parses_versions_as_mach_o_stores_them() {
        assert_eq!(parse_version("11.0"), Some(0x000b_0000));
        assert_eq!(parse_version("10.12.6"), Some(0x000a_0c06));
        assert_eq!(parse_version("15"), Some(0x000f_0000));
        for bad in ["", "11.", "x", "11.256", "1.2.3.4"] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }
}
