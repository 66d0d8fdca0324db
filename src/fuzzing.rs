//! What the fuzz targets in `fuzz/` reach that the rest of the API keeps
//! private: the doctor's JSON writer and the `--persist` check. Hidden from
//! the docs; not for use outside `fuzz/`.

pub use crate::doctor::json::Value as JsonValue;
pub use crate::ssh::config::parse_persist;
