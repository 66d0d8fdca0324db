//! Text that came from the network (certificate names and fields, service
//! banners, a proxy's reason phrase and headers) made safe to print: the one
//! place that decides what a terminal, a log line or `--json` may see of it.
//!
//! [`escape_bytes`] keeps every printable character as it is and writes the
//! rest as escapes that cannot be confused with anything else:
//!
//! | input                                   | written as          |
//! |-----------------------------------------|---------------------|
//! | `\`                                     | `\\`                |
//! | newline, carriage return, tab           | `\n`, `\r`, `\t`    |
//! | any other character [`needs_escape`]    | `\u{1b}`, `\u{202e}` (hex, lowercase) |
//! | a byte that is not part of valid UTF-8  | `\xff` (two lowercase hex digits) |
//!
//! Every backslash in the output starts one of these escapes, so the input can
//! be read back exactly, and no two inputs print the same.

use std::fmt::Write;

/// Whether `c` may not reach a terminal or a log line raw: control characters
/// (C0, DEL, C1), format characters (Unicode category Cf: the bidi embeddings,
/// overrides, isolates and marks, zero-width characters, the BOM, tags), and
/// the line and paragraph separators (U+2028, U+2029).
///
/// Category Cf as of Unicode 15; a newer format character is printed raw.
pub fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// `text` safe to print (see the module's table).
pub(crate) fn escape(text: &str) -> String {
    escape_bytes(text.as_bytes())
}

/// `bytes` safe to print: valid UTF-8 as text, with what [`needs_escape`]
/// and backslashes escaped; any other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads [`escape_bytes`]'s output back into the bytes it came from.
    fn unescape(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            if c != '\\' {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            let (tag, tail) = rest.split_at(1);
            rest = tail;
            match tag {
                "\\" => out.push(b'\\'),
                "n" => out.push(b'\n'),
                "r" => out.push(b'\r'),
                "t" => out.push(b'\t'),
                "x" => {
                    out.push(u8::from_str_radix(&rest[..2], 16).unwrap());
                    rest = &rest[2..];
                }
                "u" => {
                    let end = rest.find('}').unwrap();
                    let code = u32::from_str_radix(&rest[1..end], 16).unwrap();
                    let c = char::from_u32(code).unwrap();
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    rest = &rest[end + 1..];
                }
                other => panic!("unknown escape \\{other} in {text:?}"),
            }
        }
        out
    }

    #[test]
    fn every_class_is_escaped_and_the_rest_kept() {
        for (input, written) in [
            (&b"plain.example ok-\xc3\xa9\xe2\x86\x92"[..], "plain.example ok-é→"),
            (b"a\\b", "a\\\\b"),
            (b"\\u{1b}", "\\\\u{1b}"),
            (b"x\nvers-tunnel: fake\r\n\t", "x\\nvers-tunnel: fake\\r\\n\\t"),
            (b"\x00\x07\x1b[2J\x7f", "\\u{0}\\u{7}\\u{1b}[2J\\u{7f}"),
            // C1 as characters: CSI and NEL.
            (b"\xc2\x9b31m\xc2\x85", "\\u{9b}31m\\u{85}"),
            // Bidi overrides, isolates and marks.
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}\u{200e}\u{200f}\u{61c}"
                    .as_bytes(),
                "\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
            ),
            ("\u{2028}\u{2029}".as_bytes(), "\\u{2028}\\u{2029}"),
            ("\u{200b}\u{feff}\u{e0041}".as_bytes(), "\\u{200b}\\u{feff}\\u{e0041}"),
            // Bytes that are not UTF-8, C1 bytes on their own among them.
            (b"\x9b\xff\xc3", "\\x9b\\xff\\xc3"),
            (b"ok\xe2\x80", "ok\\xe2\\x80"),
        ] {
            assert_eq!(escape_bytes(input), written, "{input:?}");
            assert_eq!(unescape(written), input);
        }
        assert_eq!(
            escape("evil\u{1b}]0;owned\u{7}"),
            "evil\\u{1b}]0;owned\\u{7}"
        );
    }

    #[test]
    fn a_c1_character_and_a_c1_byte_stay_distinct() {
        assert_ne!(escape_bytes(b"\xc2\x85"), escape_bytes(b"\x85"));
        assert_ne!(escape_bytes(b"\\x85"), escape_bytes(b"\x85"));
    }

    proptest! {
        #[test]
        fn output_has_nothing_a_terminal_acts_on(bytes in prop::collection::vec(any::<u8>(), 0..64), text in any::<String>()) {
            for out in [escape_bytes(&bytes), escape(&text)] {
                prop_assert!(!out.chars().any(needs_escape), "{:?}", out);
                prop_assert!(!out.chars().any(char::is_control), "{:?}", out);
            }
        }

        #[test]
        fn distinct_inputs_print_distinctly(bytes in prop::collection::vec(any::<u8>(), 0..64), text in any::<String>()) {
            // Reading the output back gives the input: no two inputs can share it.
            prop_assert_eq!(unescape(&escape_bytes(&bytes)), bytes);
            prop_assert_eq!(unescape(&escape(&text)), text.into_bytes());
        }

        #[test]
        fn characters_from_every_plane_are_distinct(chars in prop::collection::vec(any::<char>(), 0..16)) {
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(unescape(&escape(&text)), text.into_bytes());
        }
    }
}
