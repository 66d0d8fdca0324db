//! Text from the network is hostile: a certificate whose names carry escape
//! sequences, forged log lines and bidi overrides, served by a real TLS edge,
//! reaches the tunnel's stderr and the doctor's text and `--json` escaped,
//! and still named.

use vers_tunnel::text::needs_escape;

use crate::doctor::support::{doctor, Diagnosis, Service};
use crate::util::{self, pki::Leaf, EdgeBuilder, World, HOST};

/// A terminal title change and a screen wipe.
const TERMINAL_ATTACK: &[u8] = b"evil\x1b[2J\x1b]0;owned\x07.example";
/// A line that would pass for one of ours.
const FORGED_LINE: &[u8] = b"x\nvers-tunnel: fake line\n";
/// A C1 CSI (as UTF-8), a right-to-left override and a byte that is not UTF-8.
const C1_AND_BIDI: &[u8] = b"c1\xc2\x9b31m\xe2\x80\xaeelpmaxe.\xff";

/// How each name must be printed.
const ESCAPED: [&str; 3] = [
    r"evil\u{1b}[2J\u{1b}]0;owned\u{7}.example",
    r"x\nvers-tunnel: fake line\n",
    r"c1\u{9b}31m\u{202e}elpmaxe.\xff",
];

/// The subject CN: an ANSI colour, a C1 NEL, a line separator and an isolate.
const CN: &str = "cn\u{1b}[31m\u{85}\u{2028}\u{2067}red";
const CN_ESCAPED: &str = r"cn\u{1b}[31m\u{85}\u{2028}\u{2067}red";

fn hostile_leaf(w: &World, also: &[&[u8]]) -> Leaf {
    let mut names = vec![TERMINAL_ATTACK, FORGED_LINE, C1_AND_BIDI];
    names.extend_from_slice(also);
    w.ca.leaf_with_raw_names(&names, CN)
}

/// Fails if `text` holds anything a terminal would act on, other than the
/// line ends of `lines` lines.
fn assert_inert(text: &str, lines: usize, what: &str) {
    assert_eq!(text.lines().count(), lines, "{what}: {text:?}");
    let raw: Vec<char> = text
        .lines()
        .flat_map(str::chars)
        .filter(|&c| needs_escape(c))
        .collect();
    assert!(raw.is_empty(), "{what}: raw {raw:?} in {text:?}");
    assert!(
        !text.lines().any(|l| l.starts_with("vers-tunnel: fake")),
        "{what}: a forged line in {text:?}"
    );
}

#[test]
fn a_hostile_certificates_names_reach_the_tunnels_stderr_escaped() {
    let w = World::new();
    let (run, edge) = w.run_against(hostile_leaf(&w, &[]), HOST);
    run.assert_failure(4, &[HOST, "name mismatch", "it covers"]);
    assert_inert(&run.stderr, 1, "stderr");
    for name in ESCAPED {
        assert!(run.stderr.contains(name), "{name} not in {:?}", run.stderr);
    }
    assert!(edge.sni_seen().is_empty());
}

#[test]
fn a_hostile_certificate_reaches_the_doctors_text_and_json_escaped() {
    let w = World::new();
    let edge = EdgeBuilder::new(hostile_leaf(&w, &[]))
        .backend(Service::start(b"SSH-2.0-OpenSSH_9.6\r\n").addr)
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    d.assert_verdict(4, &["name mismatch", ESCAPED[0], ESCAPED[1], ESCAPED[2]]);
    assert_inert(&d.text, d.text.lines().count(), "the text report");
    d.assert_line(&["certificate: subject CN", CN_ESCAPED, ESCAPED[1]]);
    // What `jq -r` would print is as inert as the report.
    let certificate = &d.step("tls")["certificates"][0];
    assert_eq!(certificate["names"], serde_json::json!(ESCAPED));
    assert_eq!(certificate["subject_cn"], CN_ESCAPED);
    assert_inert(d.json["verdict"].as_str().unwrap(), 1, "the JSON verdict");
    let raw = util::run(doctor(&w, edge.addr(), 443).arg("--json"), b"");
    let raw = String::from_utf8(raw.stdout).unwrap();
    assert_inert(&raw, 1, "the JSON text");
}

#[test]
fn a_trusted_certificate_with_hostile_names_and_a_hostile_banner_are_shown_escaped() {
    let w = World::new();
    let banner = b"SSH-2.0-evil\x1b]0;owned\x07\xc2\x9b2J\xe2\x80\xae\r\n";
    let edge = EdgeBuilder::new(hostile_leaf(&w, &[HOST.as_bytes()]))
        .backend(Service::start(banner).addr)
        .start();
    let d = Diagnosis::of(|| doctor(&w, edge.addr(), 443));
    assert_eq!(d.code, 0, "{}", d.text);
    assert_inert(&d.text, d.text.lines().count(), "the text report");
    let shown = r"SSH-2.0-evil\u{1b}]0;owned\u{7}\u{9b}2J\u{202e}";
    d.assert_line(&["SSH banner: ", shown]);
    assert_eq!(d.step("service")["banner"], shown);
    let raw = util::run(doctor(&w, edge.addr(), 443).arg("--json"), b"");
    assert_inert(&String::from_utf8(raw.stdout).unwrap(), 1, "the JSON text");
}
