//! The one slack factor on the wall-clock bounds tests assert (a prompt exit
//! within 1 s, a median keystroke echo under 200 ms, the Happy Eyeballs
//! window...): `VERS_TUNNEL_TEST_SLACK`, for a machine too loaded to meet them.

use std::ffi::OsStr;
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable holding the factor.
pub const SLACK_VAR: &str = "VERS_TUNNEL_TEST_SLACK";

/// `bound` times the slack factor: how long a test lets something take that
/// the tunnel promises to do within `bound`. Only upper bounds are stretched:
/// a loaded machine makes nothing happen sooner.
pub fn slack(bound: Duration) -> Duration {
    bound.mul_f64(factor())
}

/// `VERS_TUNNEL_TEST_SLACK`, read once; panics on a value [`parse`] refuses:
/// a typo must not silently keep (or drop) the bounds.
fn factor() -> f64 {
    static FACTOR: OnceLock<f64> = OnceLock::new();
    *FACTOR.get_or_init(|| {
        parse(std::env::var_os(SLACK_VAR).as_deref()).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The factor in `value`: a number >= 1, or 1 when unset.
fn parse(value: Option<&OsStr>) -> Result<f64, String> {
    let Some(value) = value else {
        return Ok(1.0);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f >= 1.0)
        .ok_or_else(|| {
            format!(
                "{SLACK_VAR}={value:?}: expected a number >= 1 that multiplies every \
                 time bound the tests assert (e.g. {SLACK_VAR}=3), or unset for 1"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_one_unless_set_to_a_number_of_at_least_one() {
        assert_eq!(parse(None), Ok(1.0));
        assert_eq!(parse(Some(OsStr::new("3"))), Ok(3.0));
        assert_eq!(parse(Some(OsStr::new("1.5"))), Ok(1.5));
        for bad in ["0.5", "0", "-2", "", "fast", "inf", "NaN"] {
            let err = parse(Some(OsStr::new(bad))).unwrap_err();
            assert!(
                err.contains(SLACK_VAR) && err.contains(">= 1"),
                "{bad:?}: {err}"
            );
        }
    }
}
