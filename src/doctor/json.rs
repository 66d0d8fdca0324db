//! The doctor's `--json` output: a JSON value and its RFC 8259 text. Written by
//! hand: the report needs only output, of a few kinds of value.

use std::fmt::{self, Write};

use crate::text;

/// A JSON value; objects keep their keys in the order they were added.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number of milliseconds, written with one decimal.
    Ms(f64),
    /// A string, escaped on output.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, as (key, value) pairs.
    Object(Vec<(String, Value)>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            // JSON has no NaN or infinity.
            Value::Ms(ms) if !ms.is_finite() => f.write_str("null"),
            // Fixed-point spells a huge value in 300 digits, which some
            // parsers (serde_json) refuse: past any real duration, exponent form.
            Value::Ms(ms) if ms.abs() < 1e15 => write!(f, "{ms:.1}"),
            Value::Ms(ms) => write!(f, "{ms:e}"),
            Value::Str(s) => write_string(f, s),
            Value::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Value::Object(fields) => {
                f.write_char('{')?;
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_string(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// A JSON string: `"` and `\` escaped, and as `\uXXXX` every character a
/// terminal acts on ([`text::needs_escape`]: C0, which RFC 8259 forbids raw,
/// DEL, C1, bidi and other format characters) and U+2028/U+2029, which
/// JavaScript before ES2019 does not accept raw in a string.
///
/// The report's strings from the network are escaped by [`text`] already;
/// this keeps `jq -r` and other readers safe from whatever else gets in.
fn write_string(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if text::needs_escape(c) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(f, "\\u{unit:04x}")?;
                }
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_every_control_character() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        let text = Value::from(format!("a\"b\\c{all_controls}\u{7f}é→"));
        let written = text.to_string();
        assert!(written.starts_with(r#""a\"b\\c\u0000\u0001"#), "{written}");
        assert!(written.contains(r"\b\t\n\u000b\f\r\u000e"), "{written}");
        assert!(written.ends_with(r#"\u001f\u007fé→""#), "{written}");
        assert!(!written.chars().any(|c| c.is_control()), "{written}");
        // A real parser reads back exactly what went in.
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            parsed,
            serde_json::Value::String(format!("a\"b\\c{all_controls}\u{7f}é→"))
        );
    }

    #[test]
    fn strings_escape_c1_bidi_and_line_separators() {
        let hostile = "\u{85}\u{9b}31m\u{202e}evil\u{2066}\u{2028}\u{2029}\u{feff}\u{e0041}ok";
        let written = Value::from(hostile).to_string();
        assert_eq!(
            written,
            r#""\u0085\u009b31m\u202eevil\u2066\u2028\u2029\ufeff\udb40\udc41ok""#
        );
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed, serde_json::Value::String(hostile.into()));
    }

    #[test]
    fn values_nest_and_parse() {
        let v = obj(&[
            ("ok", true.into()),
            ("ms", Value::Ms(12.345)),
            ("nan", Value::Ms(f64::NAN)),
            ("count", Value::Int(-3)),
            ("none", Value::from(None::<String>)),
            ("list", Value::from(vec!["x", "y"])),
            ("empty", Value::Array(vec![])),
            ("inner", obj(&[("k\"ey", Value::Null)])),
        ]);
        let written = v.to_string();
        assert_eq!(
            written,
            r#"{"ok":true,"ms":12.3,"nan":null,"count":-3,"none":null,"list":["x","y"],"empty":[],"inner":{"k\"ey":null}}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed["inner"]["k\"ey"], serde_json::Value::Null);
        assert_eq!(parsed["ms"], 12.3);
    }

    #[test]
    fn any_finite_duration_is_a_number_parsers_read_back() {
        for ms in [0.0, 1e15, -f64::MAX, f64::MAX, f64::MIN_POSITIVE] {
            let written = Value::Ms(ms).to_string();
            let parsed: f64 = serde_json::from_str(&written).unwrap();
            assert!(
                (parsed - ms).abs() <= 0.05 * ms.abs().max(1.0),
                "{ms}: {written}"
            );
        }
    }
}
