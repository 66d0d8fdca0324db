//! HTTP(S) CONNECT proxies. Without any I/O: the proxy URL and its
//! credentials ([`url`]), which proxy applies (curl's order: `--proxy`, then
//! the environment, minus `NO_PROXY`: `route`, with [`noproxy`] matching the
//! list), and the CONNECT exchange as a state machine fed whatever bytes arrive
//! (`exchange`), so that a connect that waits on the poller and an event-driven
//! one can both drive it. With I/O: [`dial`] drives the exchange over a live
//! connection, and [`transport`] is the byte stream the edge's TLS runs over.

pub mod dial;
mod exchange;
pub mod noproxy;
mod route;
pub mod transport;
mod url;

pub use exchange::{Connect, Progress, MAX_ANSWER_HEADER};
pub use route::{route, Proxy, ProxyEnv, Route, Source, NO_PROXY_VARS, PROXY_VARS};
pub use url::{
    redact_password, Credentials, ProxyUrl, Scheme, DEFAULT_HTTPS_PORT, DEFAULT_HTTP_PORT,
};
