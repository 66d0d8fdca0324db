//! What the fuzz targets share: the one definition of text that must never
//! reach a terminal raw, and the one check that a proxy password did not
//! reach an output.

/// Whether `c` must never appear raw in anything vers-tunnel prints (issue
/// 17, item 3): the control characters (C0, DEL, C1), the bidirectional
/// embeddings, overrides and isolates (which reorder what a terminal shows),
/// and the line and paragraph separators (a new line to some terminals and logs).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Panics, naming `what`, if `text` holds a character [`is_hostile`] refuses.
pub fn assert_printable(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|&c| is_hostile(c)) {
        panic!(
            "{what} holds a raw U+{:04X}: {:?}",
            c as u32,
            text.escape_debug().to_string()
        );
    }
}

/// The password the proxy targets plant: plain letters and digits, so that it
/// reads the same raw, escaped, percent-encoded or lowercased.
pub const SECRET: &str = "hunter2";

/// A proxy URL with [`SECRET`] planted between two fuzzed halves:
/// `before + SECRET + after`, and whether SECRET is, as the user meant it,
/// (part of) the password: the text after the scheme holds a `:` before any of
/// `@/?#`, and an `@` comes after SECRET. An unescaped `/`, `?` or `#` after
/// the `:` still leaves it the password the user meant, though curl's rules
/// (and vers-tunnel's) then read a host and port out of it.
pub fn planted_url(before: &str, after: &str) -> (String, bool) {
    let text = format!("{before}{SECRET}{after}");
    let authority = before.find("://").map_or(before, |end| &before[end + 3..]);
    let in_password = match authority.find([':', '@', '/', '?', '#']) {
        Some(i) if authority.as_bytes()[i] == b':' => {
            !authority[i..].contains('@') && after.contains('@')
        }
        _ => false,
    };
    // Anywhere else, SECRET may be shown legitimately (in a user or host
    // name, which may be percent-encoded or in capitals).
    let once = decoded_lowercase(&text).matches(SECRET).count() == 1;
    (text, in_password && once)
}

/// `text` percent-decoded (where `%` starts two hex digits) and in lowercase.
fn decoded_lowercase(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// Panics if `output` (named `what`) shows the planted password.
pub fn assert_no_secret(what: &str, output: &str, input: &str) {
    assert!(
        !output.contains(SECRET),
        "{what} shows the password: {output:?} (from {input:?})"
    );
}
