//! HTTP(S) CONNECT proxies. Without any I/O: the proxy URL and its
//! credentials ([`url`]), which proxy applies (curl's order: `--proxy`, then
//! the environment, minus `NO_PROXY`: `route`, with [`noproxy`] matching the
//! list), and the CONNECT exchange as a state machine fed whatever bytes arrive
//! (`exchange`), so that a connect that waits on the poller and an event-driven
//! one can both drive it. With I/O: [`dial`] drives the exchange over a live
//! connection, and [`transport`] is the byte stream the edge's TLS runs over.

pub(crate) mod dial;
pub(crate) mod exchange;
pub(crate) mod noproxy;
pub(crate) mod route;
pub mod transport;
pub(crate) mod url;

pub use route::ProxyEnv;

pub(crate) use exchange::{Connect, Progress};
pub(crate) use route::{route, Proxy, Route};
pub(crate) use url::{redact_password, Scheme};

/// What the proxy modules' tests build their inputs with.
#[cfg(test)]
mod testing {
    use super::url::ProxyUrl;
    use crate::target::Host;

    /// `s`, which must be a valid proxy URL.
    pub(super) fn url(s: &str) -> ProxyUrl {
        s.parse().unwrap()
    }

    /// The host named `s`.
    pub(super) fn name(s: &str) -> Host {
        Host::Name(s.into())
    }
}
