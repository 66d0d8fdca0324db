//! One forwarding as the user writes it: `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`
//! (ssh -L's order, IPv6 addresses in brackets on either side), the older
//! two words `[BIND_ADDR:]LOCAL_PORT HOST:PORT`, and the `--from` file that
//! lists them one a line.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use crate::error::describe_io;
use crate::net::poller::MAX_MAPPINGS;
use crate::target::{split_fields, Host, HostPort, Listen};
use crate::text;

/// Where one mapping listens and the VM port it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// Where to listen.
    pub(crate) listen: Listen,
    /// The VM's host.
    pub(crate) host: Host,
    /// The VM's port.
    pub(crate) port: u16,
}

/// `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`, as messages name a mapping.
impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.listen.bind {
            write!(f, "{}:", Host::Ip(ip))?;
        }
        write!(f, "{}:{}:{}", self.listen.port, self.host, self.port)
    }
}

impl Mapping {
    /// Parses `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`.
    fn parse(s: &str) -> Result<Mapping, String> {
        let fields = split_fields(s)?;
        let (listen, host, port) =
            match fields[..] {
                [lport, host, port] => (lport.to_string(), host, port),
                [bind, lport, host, port] => (format!("{bind}:{lport}"), host, port),
                _ => return Err(
                    "a mapping is [BIND_ADDR:]LOCAL_PORT:HOST:PORT (IPv6 addresses in brackets)"
                        .into(),
                ),
            };
        Mapping::of(&listen, &format!("{host}:{port}"))
    }

    /// The mapping of the two words `[BIND_ADDR:]LOCAL_PORT` and `HOST:PORT`.
    fn of(listen: &str, target: &str) -> Result<Mapping, String> {
        let listen: Listen = listen.parse()?;
        let target: HostPort = target.parse()?;
        let Some(port) = target.port else {
            // `::1:80` is one IPv6 address, not `[::1]:80`: no example can
            // know which part the user meant as the port.
            if matches!(target.host, Host::Ip(IpAddr::V6(_))) {
                return Err(
                    "the target needs the VM's port, and an IPv6 address goes in brackets: [ADDR]:PORT, e.g. [2001:db8::1]:5432".into(),
                );
            }
            return Err(format!(
                "the target needs the VM's port: HOST:PORT, e.g. {}:5432",
                target.host
            ));
        };
        Ok(Mapping {
            listen,
            host: target.host,
            port,
        })
    }
}

/// The mappings the command line's words name: any number of
/// `[BIND_ADDR:]LOCAL_PORT:HOST:PORT`, or the two words
/// `[BIND_ADDR:]LOCAL_PORT HOST:PORT`, recognised by the first, which no
/// mapping is, or by both having no more than one ':' outside brackets (a
/// mapping has two or three).
pub(crate) fn from_args(words: &[String]) -> Result<Vec<Mapping>, String> {
    // A word whose brackets do not close is left to the mapping's parser, which says so.
    let few_fields = |s: &str| split_fields(s).is_ok_and(|f| f.len() <= 2);
    if let [listen, target] = words {
        // A second word that is a mapping itself makes the first a mapping
        // without its target, said so below.
        let is_mapping = |s: &str| Mapping::parse(s).is_ok();
        if !is_mapping(target) && (listen.parse::<Listen>().is_ok() || few_fields(listen)) {
            return Mapping::of(listen, target).map(|m| vec![m]);
        }
    }
    words
        .iter()
        .map(|word| {
            if few_fields(word) {
                return Err(format!(
                    "'{}' is not a mapping: a mapping is [BIND_ADDR:]LOCAL_PORT:HOST:PORT \
                     (a target HOST:PORT is required after LOCAL_PORT)",
                    text::escape(word)
                ));
            }
            Mapping::parse(word).map_err(|e| format!("mapping '{}': {e}", text::escape(word)))
        })
        .collect()
}

/// The most a `--from` file may hold: thousands of mappings, and not a
/// device that never ends (`/dev/zero`) read into memory.
const MAX_FILE: u64 = 1024 * 1024;

/// The mappings in the `--from` file `file` (a path, or a pipe such as
/// `/dev/stdin`).
pub(crate) fn read_file(file: &Path) -> Result<Vec<Mapping>, String> {
    let named = || text::escape(&file.to_string_lossy());
    let mut bytes = Vec::new();
    File::open(file)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read --from file {}: {}", named(), describe_io(&e)))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!(
            "--from file {} is larger than {} KiB: not a list of mappings",
            named(),
            MAX_FILE / 1024
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("--from file {} is not UTF-8 text", named()))?;
    from_file(file, &text)
}

/// The mappings in `text`, read from `file`: one a line, `#` to the end of a
/// line a comment, blank lines skipped.
fn from_file(file: &Path, text: &str) -> Result<Vec<Mapping>, String> {
    let mut mappings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{} line {}", file.display(), n + 1);
        if let Some(c) = line.chars().find(|&c| text::needs_escape(c)) {
            return Err(format!(
                "{}: \"{}\" contains a control character (U+{:04X})",
                at(),
                text::escape(line),
                c as u32
            ));
        }
        let mapping =
            Mapping::parse(line).map_err(|e| format!("{}: '{}': {e}", at(), text::escape(line)))?;
        mappings.push(mapping);
    }
    Ok(mappings)
}

/// Checks the whole list: at least one mapping, and no more than the loop has tokens for.
pub(crate) fn check_count(mappings: &[Mapping]) -> Result<(), String> {
    if mappings.is_empty() {
        return Err(
            "no mapping given: a mapping [BIND_ADDR:]LOCAL_PORT:HOST:PORT \
                    (or --from FILE) is required"
                .into(),
        );
    }
    if mappings.len() > MAX_MAPPINGS {
        return Err(format!(
            "{} mappings given; one process serves at most {MAX_MAPPINGS}",
            mappings.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn words(s: &[&str]) -> Result<Vec<Mapping>, String> {
        from_args(&s.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    fn shown(s: &[&str]) -> Vec<String> {
        words(s).unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn mappings_are_read_in_ssh_order_with_brackets_on_either_side() {
        assert_eq!(
            shown(&["5432:db.vm.vers.sh:5432", "[::1]:0:[2001:db8::1]:80"]),
            ["5432:db.vm.vers.sh:5432", "[::1]:0:[2001:db8::1]:80"]
        );
        assert_eq!(
            shown(&["0.0.0.0:8080:h.sh:80", "localhost:1:h.sh:2"]),
            ["0.0.0.0:8080:h.sh:80", "1:h.sh:2"]
        );
        let m = &words(&["127.0.0.1:9:H.sh:10"]).unwrap()[0];
        assert_eq!(m.listen.bind, Some([127, 0, 0, 1].into()));
        assert_eq!((m.listen.port, m.port), (9, 10));
        assert_eq!(m.host, Host::Name("h.sh".into()));
    }

    #[test]
    fn the_two_word_form_is_one_mapping() {
        assert_eq!(shown(&["5432", "h.sh:5432"]), ["5432:h.sh:5432"]);
        assert_eq!(shown(&["::1:0", "[::1]:22"]), ["[::1]:0:[::1]:22"]);
        // Two mappings are not the two-word form.
        assert_eq!(shown(&["1:a.sh:2", "3:b.sh:4"]).len(), 2);
    }

    #[test]
    fn bad_mappings_say_what_is_wrong() {
        for (args, words_) in [
            (&["5432", "h.sh"][..], "needs the VM's port"),
            (&["nope", "h.sh:5432"], "not a number"),
            (&["db:5432", "h.sh:5432"], "not an IP address"),
            (&["5432"], "required"),
            (&["5432:h.sh"], "required"),
            (&["5432:h.sh:"], "empty"),
            (&["x:5432:h.sh:1"], "not an IP address"),
            (
                &["1:::1:22"],
                "a mapping is [BIND_ADDR:]LOCAL_PORT:HOST:PORT",
            ),
            (&["1:[::1:22"], "unclosed '['"),
            (&["1:h.sh:0"], "port 0"),
            // The second of two mappings lacks its local port: said of it.
            (&["1:a.sh:2", "b.sh:80"], "'b.sh:80' is not a mapping"),
            // A local port before a mapping is not the two-word form.
            (&["8080", "1:a.sh:2"], "'8080' is not a mapping"),
            // No example that guesses where an unbracketed address ends.
            (&["18098", "::1:80"], "an IPv6 address goes in brackets"),
        ] {
            let err = words(args).unwrap_err();
            assert!(err.contains(words_), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_file_has_one_mapping_a_line_comments_and_blank_lines() {
        let text = "# the database\n5432:db.sh:5432\n\n  6379:cache.sh:6379  # the cache\n";
        let got = from_file(Path::new("m.txt"), text).unwrap();
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["5432:db.sh:5432", "6379:cache.sh:6379"]);
        let err = from_file(Path::new("m.txt"), "1:a.sh:2\n3:b.sh\n").unwrap_err();
        assert!(err.starts_with("m.txt line 2: '3:b.sh': "), "{err}");
        let err = from_file(Path::new("m.txt"), "1:a.sh:2\u{1b}[31m\n").unwrap_err();
        assert!(err.contains("\\u{1b}[31m"), "{err}");
    }

    #[test]
    fn there_is_at_least_one_and_at_most_the_most() {
        assert!(check_count(&[]).unwrap_err().contains("required"));
        let one = words(&["1:a.sh:2"]).unwrap();
        assert!(check_count(&one).is_ok());
        let many = vec![one[0].clone(); MAX_MAPPINGS + 1];
        assert!(check_count(&many).unwrap_err().contains("at most"));
    }

    /// A host as a mapping may name it: a DNS name, or an IP literal.
    fn host() -> impl Strategy<Value = Host> {
        prop_oneof![
            "[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,20}[a-z0-9])?){0,3}"
                .prop_map(Host::Name),
            any::<Ipv4Addr>().prop_map(|ip| Host::Ip(IpAddr::V4(ip))),
            any::<Ipv6Addr>().prop_map(|ip| Host::Ip(IpAddr::V6(ip))),
        ]
    }

    proptest! {
        /// What a mapping's line says of it is read back as the same mapping,
        /// alone, among others, and in a file.
        #[test]
        fn a_mapping_as_shown_reads_back_the_same(
            bind in proptest::option::of(any::<IpAddr>()),
            local in any::<u16>(),
            host in host(),
            port in 1..=u16::MAX,
        ) {
            let mapping = Mapping { listen: Listen { bind, port: local }, host, port };
            let shown = mapping.to_string();
            prop_assert_eq!(&words(&[&shown]).unwrap()[0], &mapping);
            let two = words(&[&shown, &shown]).unwrap();
            prop_assert_eq!(two.len(), 2);
            let file = from_file(Path::new("f"), &format!("{shown} # it\n")).unwrap();
            prop_assert_eq!(&file[0], &mapping);
        }

        /// Anything refused is refused in one line, and nothing panics.
        #[test]
        fn any_words_are_mappings_or_one_line_refusals(
            words_ in proptest::collection::vec("[0-9a-z.:\\[\\]#-]{0,24}", 0..4),
        ) {
            if let Err(e) = from_args(&words_) {
                prop_assert!(!e.contains('\n'), "{e}");
            }
        }
    }
}
