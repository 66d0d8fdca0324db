//! Which proxy applies, as curl decides it: `--proxy`, else the first of
//! [`PROXY_VARS`]; then `--noproxy`, else `NO_PROXY`, may exempt HOST.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::SocketAddr;

use super::noproxy;
use super::url::ProxyUrl;
use crate::target::{Host, ShownAddr};
use crate::text;

/// The variables that name a proxy for an https:// transfer, in the order curl
/// reads them; the first one set and not empty wins.
pub const PROXY_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
/// The variables that list hosts to reach without the proxy, in curl's order.
pub const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Where the proxy in use was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--proxy URL`.
    Flag,
    /// An environment variable, by name.
    Env(&'static str),
}

impl Source {
    /// `--proxy` or the variable's name, as messages say it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "--proxy",
            Source::Env(name) => name,
        }
    }
}

/// A proxy and where it came from; `Display` is `URL (from SOURCE)`, password redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub url: ProxyUrl,
    /// Where it was named.
    pub source: Source,
}

impl Proxy {
    /// `addr` (one of the proxy's) as every message shows it: the IP alone
    /// when the URL was cut (its port may be the start of the password).
    pub fn show(&self, addr: SocketAddr) -> ShownAddr {
        ShownAddr::new(addr, self.url.cut_userinfo)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.url, self.source.name())
    }
}

/// The values of [`PROXY_VARS`] and [`NO_PROXY_VARS`], read once at the CLI
/// edge (tests make their own); an empty value counts as unset, as in curl.
#[derive(Clone, Default)]
pub struct ProxyEnv {
    values: Vec<(&'static str, OsString)>,
}

/// Names only: a value may hold a password.
impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(name, _)| *name).collect();
        f.debug_struct("ProxyEnv").field("set", &names).finish()
    }
}

impl ProxyEnv {
    /// Reads every variable the proxy choice depends on through `lookup`
    /// (`std::env::var_os` in main).
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<OsString>) -> ProxyEnv {
        let values = PROXY_VARS
            .iter()
            .chain(&NO_PROXY_VARS)
            .filter_map(|&name| lookup(name).map(|value| (name, value)))
            .collect();
        ProxyEnv { values }
    }

    /// A set of values, for tests: `[("HTTPS_PROXY", "http://p:3128")]`.
    /// Names not in [`PROXY_VARS`] or [`NO_PROXY_VARS`] are ignored.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    /// The first of `names` that is set and not empty, with its value.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &OsStr)> {
        names.iter().find_map(|&name| {
            self.values
                .iter()
                .find(|(n, v)| *n == name && !v.is_empty())
                .map(|(n, v)| (*n, v.as_os_str()))
        })
    }
}

/// How the TCP connection reaches the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the connect host: no proxy named, or `--proxy ''`.
    Direct,
    /// Through a CONNECT proxy.
    Proxy(Proxy),
    /// A proxy is named, but the no-proxy list exempts HOST.
    Exempt {
        /// The proxy not used.
        proxy: Proxy,
        /// `--noproxy`, `no_proxy` or `NO_PROXY`.
        by: &'static str,
    },
}

impl Route {
    /// The proxy in use, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Proxy(proxy) => Some(proxy),
            Route::Direct | Route::Exempt { .. } => None,
        }
    }
}

/// Decides the route to `host` (as the user named it) the way curl does:
/// `--proxy` (`''` meaning none, whatever the environment says), else the
/// first of [`PROXY_VARS`]; then the no-proxy list (`--noproxy`, else
/// `no_proxy`, else `NO_PROXY`) may exempt HOST.
///
/// The error is a usage message naming the flag or variable; it never
/// repeats the URL, which may hold a password. As in curl, a proxy that the
/// list exempts is not looked at closely enough to fail.
pub fn route(
    flag: Option<&str>,
    noproxy_flag: Option<&str>,
    env: &ProxyEnv,
    host: &Host,
) -> Result<Route, String> {
    let (source, url) = match flag {
        Some("") => return Ok(Route::Direct),
        Some(text) => (
            Source::Flag,
            text.parse::<ProxyUrl>()
                .map_err(|e| format!("invalid proxy URL in --proxy: {e}")),
        ),
        None => match env.first(&PROXY_VARS) {
            None => return Ok(Route::Direct),
            Some((name, value)) => (Source::Env(name), env_proxy(name, value)),
        },
    };
    let list = match noproxy_flag {
        Some(list) => Some(("--noproxy", list.to_string())),
        None => env
            .first(&NO_PROXY_VARS)
            .map(|(name, value)| (name, value.to_string_lossy().into_owned())),
    };
    let exempt_by = list
        .filter(|(_, list)| noproxy::matches(&noproxy_name(host), list))
        .map(|(by, _)| by);
    match (url, exempt_by) {
        (Ok(url), Some(by)) => Ok(Route::Exempt {
            proxy: Proxy { url, source },
            by,
        }),
        (Err(_), Some(_)) => Ok(Route::Direct),
        (Ok(url), None) => Ok(Route::Proxy(Proxy { url, source })),
        (Err(e), None) => Err(e),
    }
}

/// The proxy URL in variable `name`; the message names the variable, not the value.
fn env_proxy(name: &str, value: &OsStr) -> Result<ProxyUrl, String> {
    let Some(value) = value.to_str() else {
        return Err(format!("{name} is not valid UTF-8"));
    };
    if let Some(c) = value
        .chars()
        .find(|&c| text::needs_escape(c) || c.is_whitespace())
    {
        return Err(format!(
            "{name} contains {}, which no proxy URL may",
            if text::needs_escape(c) {
                format!("a control character (U+{:04X})", c as u32)
            } else {
                "white space".into()
            }
        ));
    }
    value
        .parse()
        .map_err(|e| format!("invalid proxy URL in {name}: {e}"))
}

/// HOST as curl matches it against the list: IPv6 without brackets.
fn noproxy_name(host: &Host) -> String {
    match host {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    use crate::proxy::testing::name;

    fn proxy_env(pairs: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_pairs(pairs)
    }

    fn decide(flag: Option<&str>, noproxy: Option<&str>, env: &[(&str, &str)]) -> Route {
        route(flag, noproxy, &proxy_env(env), &name("x.vm.vers.sh")).unwrap()
    }

    fn source(route: &Route) -> Option<&'static str> {
        route.proxy().map(|p| p.source.name())
    }

    #[test]
    fn the_proxy_comes_from_the_flag_then_the_variables_lowercase_first() {
        let all = [
            ("https_proxy", "http://a:1"),
            ("HTTPS_PROXY", "http://b:1"),
            ("all_proxy", "http://c:1"),
            ("ALL_PROXY", "http://d:1"),
        ];
        assert_eq!(
            source(&decide(Some("http://f:1"), None, &all)),
            Some("--proxy")
        );
        for skip in 0..4 {
            let env = &all[skip..];
            assert_eq!(source(&decide(None, None, env)), Some(all[skip].0));
        }
        // Empty is unset, as in curl: the next variable is used.
        let env = [("https_proxy", ""), ("HTTPS_PROXY", "http://b:1")];
        assert_eq!(source(&decide(None, None, &env)), Some("HTTPS_PROXY"));
        // http_proxy is for http:// transfers, never ours.
        assert_eq!(
            decide(None, None, &[("http_proxy", "http://h:1")]),
            Route::Direct
        );
        assert_eq!(decide(None, None, &[]), Route::Direct);
        assert_eq!(decide(Some(""), None, &all), Route::Direct);
    }

    #[test]
    fn no_proxy_exempts_host_as_named_and_the_flag_overrides_it() {
        let env = [("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", ".vers.sh")];
        let exempt = |r: &Route| match r {
            Route::Exempt { by, .. } => Some(*by),
            _ => None,
        };
        assert_eq!(exempt(&decide(None, None, &env)), Some("NO_PROXY"));
        assert_eq!(
            exempt(&decide(Some("http://f:1"), None, &env)),
            Some("NO_PROXY")
        );
        assert_eq!(exempt(&decide(None, Some("*"), &env)), Some("--noproxy"));
        // --noproxy '' replaces the variable with an empty list.
        assert_eq!(source(&decide(None, Some(""), &env)), Some("HTTPS_PROXY"));
        let lower_first = [
            ("HTTPS_PROXY", "http://p:1"),
            ("no_proxy", "other.example"),
            ("NO_PROXY", "*"),
        ];
        assert_eq!(
            source(&decide(None, None, &lower_first)),
            Some("HTTPS_PROXY")
        );
        let v6 = route(
            None,
            Some("::1"),
            &proxy_env(&env),
            &Host::Ip(Ipv6Addr::LOCALHOST.into()),
        )
        .unwrap();
        assert_eq!(exempt(&v6), Some("--noproxy"));
    }

    #[test]
    fn a_bad_variable_is_named_and_its_value_not_repeated() {
        let host = name("x.vm.vers.sh");
        for (value, reason) in [
            (
                "socks5://u:secret@p",
                "invalid proxy URL in HTTPS_PROXY: socks5://",
            ),
            (
                "http://u:secret@p\n",
                "HTTPS_PROXY contains a control character",
            ),
            ("http://u:secret@p x", "HTTPS_PROXY contains white space"),
            (
                "http://u:secret@p\u{202e}",
                "HTTPS_PROXY contains a control character (U+202E)",
            ),
        ] {
            let err = route(None, None, &proxy_env(&[("HTTPS_PROXY", value)]), &host).unwrap_err();
            assert!(err.contains(reason), "{value:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn the_environment_shows_the_names_set_and_never_a_value() {
        let env = proxy_env(&[("HTTPS_PROXY", "http://alice:p%40ss@p")]);
        assert_eq!(format!("{env:?}"), r#"ProxyEnv { set: ["HTTPS_PROXY"] }"#);
    }
}
