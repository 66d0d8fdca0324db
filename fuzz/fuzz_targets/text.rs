//! The one escaper for network text (`text::escape_bytes`): whatever the
//! bytes, the output holds no raw control character, bidi control or line
//! separator, and it reads back to exactly the input (its module promises
//! that no two inputs print the same), by the table in its documentation.
#![no_main]

use fuzz_support::assert_printable;
use libfuzzer_sys::fuzz_target;
use vers_tunnel::text::{escape_bytes, needs_escape};

fuzz_target!(|bytes: &[u8]| {
    let shown = escape_bytes(bytes);
    assert_printable("escaped text", &shown);
    assert!(!shown.chars().any(needs_escape), "{shown:?}");
    assert_eq!(
        unescape(&shown).as_deref(),
        Some(bytes),
        "{bytes:?} shown as {shown:?}"
    );
});

/// The escapes read back, by the module's table: `\\`, `\n`, `\r`, `\t`,
/// `\u{HEX}`, `\xHH`; `None` for anything else after a backslash.
fn unescape(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => out.push(b'\\'),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}
