//! The doctor's `--json` writer (`doctor::json::Value`, through
//! `vers_tunnel::fuzzing`): whatever it is given, its output parses as JSON
//! (serde_json), reads back as the same value (milliseconds to 0.05), and
//! holds no raw control character.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use vers_tunnel::fuzzing::JsonValue;

/// `JsonValue`, as the fuzzer builds it.
#[derive(Arbitrary, Debug)]
enum Input {
    Null,
    Bool(bool),
    Int(i64),
    Ms(f64),
    Str(String),
    Array(Vec<Input>),
    Object(Vec<(String, Input)>),
}

fn value(input: &Input) -> JsonValue {
    match input {
        Input::Null => JsonValue::Null,
        Input::Bool(b) => JsonValue::Bool(*b),
        Input::Int(n) => JsonValue::Int(*n),
        Input::Ms(ms) => JsonValue::Ms(*ms),
        Input::Str(s) => JsonValue::Str(s.clone()),
        Input::Array(items) => JsonValue::Array(items.iter().map(value).collect()),
        Input::Object(fields) => {
            JsonValue::Object(fields.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
    }
}

fuzz_target!(|input: Input| {
    // serde_json reads at most 128 levels; the doctor writes 4.
    if depth(&input) > 100 {
        return;
    }
    let written = value(&input).to_string();
    if let Some(c) = written.chars().find(|c| c.is_control()) {
        panic!("raw U+{:04X} in {:?}", c as u32, written);
    }
    let parsed: Json =
        serde_json::from_str(&written).unwrap_or_else(|e| panic!("not JSON ({e}): {written}"));
    same(&input, &parsed, &written);
});

fn depth(input: &Input) -> usize {
    match input {
        Input::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Input::Object(fields) => 1 + fields.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether `parsed` is `input` read back; objects as JSON parsers read them,
/// the last of duplicate keys winning.
fn same(input: &Input, parsed: &Json, written: &str) {
    match (input, parsed) {
        (Input::Null, Json::Null) => {}
        (Input::Bool(a), Json::Bool(b)) => assert_eq!(a, b, "{written}"),
        (Input::Int(n), Json::Number(m)) => assert_eq!(Some(*n), m.as_i64(), "{written}"),
        (Input::Ms(ms), Json::Null) => assert!(!ms.is_finite(), "{written}"),
        (Input::Ms(ms), Json::Number(m)) => {
            let m = m.as_f64().unwrap_or(f64::NAN);
            let off = (m - ms).abs();
            assert!(
                off <= 0.05 + ms.abs() * 1e-15,
                "{ms} read back as {m}: {written}"
            );
        }
        (Input::Str(s), Json::String(t)) => assert_eq!(s, t, "{written}"),
        (Input::Array(items), Json::Array(parsed)) => {
            assert_eq!(items.len(), parsed.len(), "{written}");
            for (item, p) in items.iter().zip(parsed) {
                same(item, p, written);
            }
        }
        (Input::Object(fields), Json::Object(parsed)) => {
            for (i, (key, v)) in fields.iter().enumerate() {
                let last = fields[i + 1..].iter().all(|(k, _)| k != key);
                if last {
                    let p = parsed
                        .get(key)
                        .unwrap_or_else(|| panic!("{key:?} lost: {written}"));
                    same(v, p, written);
                }
            }
        }
        _ => panic!("{input:?} read back as {parsed}: {written}"),
    }
}
