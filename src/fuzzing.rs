//! What the fuzz targets in `fuzz/` reach that the rest of the API keeps
//! private: the parsers of network and user input they exercise on their
//! own. Hidden from the docs; not for use outside `fuzz/`.

pub use crate::doctor::json::Value as JsonValue;
pub use crate::proxy::exchange::{Connect, Progress};
pub use crate::proxy::noproxy::matches as no_proxy_matches;
pub use crate::proxy::route::{route, Route};
pub use crate::proxy::url::ProxyUrl;
pub use crate::ssh::config::parse_persist;
pub use crate::tls::x509::{parse as parse_certificate, Certificate};
