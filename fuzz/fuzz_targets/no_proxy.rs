//! `NO_PROXY` / `--noproxy` matching (`noproxy::matches`, curl's rules):
//! `*` alone exempts every name; a list is the union of its entries; a host
//! name matches itself, in any case, with a leading dot, and its subdomains;
//! an address matches itself and its /32 or /128; and the route the tunnel
//! takes (`proxy::route`) follows the list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vers_tunnel::fuzzing::{no_proxy_matches as matches, route, Route};
use vers_tunnel::proxy::ProxyEnv;
use vers_tunnel::target::{parse_host, Host};

fuzz_target!(|input: (&str, &str, &str)| {
    let (name, a, b) = input;
    let name_part = name.split('\0').next().unwrap_or("");
    assert_eq!(matches(name, "*"), !name_part.is_empty(), "{name:?}");

    // Entries without separators: "a,b" exempts what either exempts.
    let plain = |e: &str| !e.contains([',', ' ', '\t', '\0']) && e != "*";
    if plain(a) && plain(b) {
        assert_eq!(
            matches(name, &format!("{a},{b}")),
            matches(name, a) || matches(name, b),
            "{name:?} against {a:?},{b:?}"
        );
        assert_eq!(
            matches(name, &format!(" {a} ,\t{b}")),
            matches(name, &format!("{a},{b}")),
            "{name:?} against {a:?},{b:?} with blanks"
        );
    }

    // A name or address the tunnel accepts.
    let Ok(host) = parse_host(name) else {
        return;
    };
    let (as_named, full) = match &host {
        Host::Name(n) => (n.clone(), None),
        Host::Ip(ip) => (ip.to_string(), Some(if ip.is_ipv4() { 32 } else { 128 })),
    };
    assert!(matches(&as_named, &as_named), "{as_named:?}");
    match full {
        None => {
            assert!(
                matches(&as_named, &as_named.to_ascii_uppercase()),
                "{as_named:?}"
            );
            assert!(matches(&as_named, &format!(".{as_named}")), "{as_named:?}");
            assert!(matches(&format!("a.{as_named}"), &as_named), "{as_named:?}");
            assert!(!matches(&format!("a{as_named}"), &as_named), "{as_named:?}");
        }
        Some(bits) => assert!(
            matches(&as_named, &format!("{as_named}/{bits}")),
            "{as_named:?}"
        ),
    }
    let list = format!("{a},{b}");
    let env = ProxyEnv::from_pairs(&[
        ("HTTPS_PROXY", "http://proxy.example:3128"),
        ("NO_PROXY", &list),
    ]);
    let route = route(None, None, &env, &host).expect("a valid proxy URL");
    assert_eq!(
        matches!(route, Route::Exempt { .. }),
        matches(&as_named, &list),
        "{as_named:?} against {list:?}"
    );
});
