//! The forwarder's descriptor budget: how many connections the open-files
//! limit holds (raising it as far as allowed), and the spare descriptor kept
//! for an accepted connection's edge socket.
//!
//! Windows has no open-files limit: a socket is a handle, and the system
//! holds as many as its memory allows. There the budget is what a fully
//! raised limit gives elsewhere ([`WANTED_FDS`]), and `--max-connections`
//! is taken as asked.

use std::fs::File;
use std::io;

use crate::error::{Error, Result};

/// Descriptors kept for the rest of the process besides its listeners: the
/// poll, the signal pipe, stdio, the resolver's waker, the spare, and a few
/// for resolver threads (getaddrinfo opens files and sockets while it runs).
const RESERVED_FDS: u64 = 14;
/// The open-files limit raised to without `--max-connections`.
const WANTED_FDS: u64 = 65_536;
/// What macOS surely takes when it refuses more: its soft limit may not pass
/// `kern.maxfilesperproc` even when the hard limit is unlimited.
#[cfg(target_vendor = "apple")]
const OPEN_MAX: libc::rlim_t = 10_240;

/// How many connections may be open at once, each holding up to
/// `per_connection` descriptors, next to `listeners` listening sockets (every
/// mapping's): `asked`, with the open-files limit raised to hold them, or an
/// error if it cannot be; without `asked`, as many as the limit holds once
/// raised towards [`WANTED_FDS`] (plus the listeners).
pub(crate) fn connection_limit(
    asked: Option<usize>,
    per_connection: u64,
    listeners: usize,
) -> Result<usize> {
    let reserved = RESERVED_FDS.saturating_add(listeners as u64);
    let fit = |limit: u64| limit.saturating_sub(reserved) / per_connection;
    let Some(asked) = asked else {
        let n = fit(raise_nofile_limit(
            WANTED_FDS.saturating_add(listeners as u64),
        ))
        .max(1);
        return Ok(usize::try_from(n).unwrap_or(usize::MAX));
    };
    let n = u64::try_from(asked).unwrap_or(u64::MAX);
    let needed = n.saturating_mul(per_connection).saturating_add(reserved);
    let limit = raise_nofile_limit(needed);
    if limit >= needed {
        return Ok(asked);
    }
    Err(Error::TooManyConnections {
        asked,
        needed,
        ceiling: limit,
        fit: fit(limit),
    })
}

/// Raises the soft open-files limit towards `wanted`, as far as the hard
/// limit allows (on macOS, falling back to `OPEN_MAX` when the system refuses
/// more), never lowering it; the soft limit after.
/// (`rlim_t` is `u64` on every Unix this builds for.)
#[cfg(unix)]
fn raise_nofile_limit(wanted: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the live `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let wanted = wanted.min(lim.rlim_max);
    #[cfg(not(target_vendor = "apple"))]
    let tries = [wanted];
    #[cfg(target_vendor = "apple")]
    let tries = [wanted, wanted.min(OPEN_MAX)];
    for soft in tries {
        if soft <= lim.rlim_cur {
            break;
        }
        let raised = libc::rlimit {
            rlim_cur: soft,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the live `raised`; failure leaves the limit as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = soft;
            break;
        }
    }
    lim.rlim_cur
}

/// No limit to raise on Windows: whatever is wanted, and never less than a
/// raised limit elsewhere.
#[cfg(windows)]
fn raise_nofile_limit(wanted: u64) -> u64 {
    wanted.max(WANTED_FDS)
}

/// A descriptor to hold in reserve (the forwarder's `spare`).
pub(crate) fn spare_descriptor() -> io::Result<File> {
    File::open(if cfg!(windows) { "NUL" } else { "/dev/null" })
}
