//! The target's addresses as `forward` dials them: looked up at start, and
//! again in the background once they are a minute old or all of them failed,
//! never more often than every few seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::cli::Config;
use crate::net::connect::{self, Hop, Lookup};
use crate::net::poller::Poller;
use crate::target::Host;

/// How old the addresses may get before a new connection has them looked up
/// again (in the background; that connection uses the old ones).
const REFRESH: Duration = Duration::from_secs(60);
/// The least time between two lookups, however often every address fails.
const MIN_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Addresses {
    addrs: Vec<SocketAddr>,
    /// When `addrs` were last looked up.
    resolved_at: Instant,
    /// They should be looked up again.
    wanted: bool,
    /// A lookup under way.
    lookup: Option<Lookup>,
}

impl Addresses {
    pub(crate) fn new(addrs: Vec<SocketAddr>, resolved_at: Instant) -> Self {
        Addresses {
            addrs,
            resolved_at,
            wanted: false,
            lookup: None,
        }
    }

    /// How many addresses there are now.
    pub(crate) fn len(&self) -> usize {
        self.addrs.len()
    }

    /// The addresses for a connection starting at `now`; a refresh is
    /// wanted once they are old.
    pub(crate) fn for_connection(&mut self, now: Instant) -> Vec<SocketAddr> {
        if now.saturating_duration_since(self.resolved_at) >= REFRESH {
            self.wanted = true;
        }
        self.addrs.clone()
    }

    /// Every address failed for a connection: perhaps they are no longer the target's.
    pub(crate) fn all_failed(&mut self) {
        self.wanted = true;
    }

    /// Whether a lookup should start at `now`.
    fn lookup_due(&mut self, now: Instant) -> bool {
        std::mem::take(&mut self.wanted)
            && self.lookup.is_none()
            && now.saturating_duration_since(self.resolved_at) >= MIN_REFRESH
    }

    /// Starts looking the target up again, if wanted, due, and the target is a name.
    pub(crate) fn refresh(&mut self, poller: &mut Poller, config: &Config) {
        if !self.lookup_due(Instant::now()) {
            return;
        }
        let hop = Hop::of(config);
        let Host::Name(name) = hop.host else {
            return;
        };
        match Lookup::start(poller, name, hop.port) {
            Ok(lookup) => self.lookup = Some(lookup),
            Err(e) => log::debug!("{e}"),
        }
    }

    /// Takes the refreshed addresses, when the lookup has them; a failed
    /// lookup keeps the old ones (they may well still work).
    pub(crate) fn take_lookup(&mut self, config: &Config) {
        let Some(answer) = self.lookup.as_ref().and_then(Lookup::answer) else {
            return;
        };
        self.lookup = None;
        let now = Instant::now();
        self.resolved_at = now;
        let hop = Hop::of(config);
        let answer = answer.map_err(|source| hop.resolve_failed(config, source));
        match answer.and_then(|addrs| connect::select(config, &hop, addrs)) {
            Ok(addrs) => {
                if addrs != self.addrs {
                    log::info!("{} now resolves to {}", hop.host, connect::join(&addrs));
                }
                self.addrs = addrs;
            }
            Err(e) => {
                log::info!("{e}; keeping the addresses looked up before");
                self.lookup_failed(now);
            }
        }
    }

    /// A lookup failed at `now` (a resolver that timed out under load, a
    /// network change under way): the old addresses are kept, and counted as
    /// old once [`MIN_REFRESH`] has passed, so that the next connection after
    /// that asks again instead of waiting out a whole [`REFRESH`].
    fn lookup_failed(&mut self, now: Instant) {
        self.resolved_at = now.checked_sub(REFRESH - MIN_REFRESH).unwrap_or(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_is_wanted_when_they_are_old_or_all_failed_and_not_twice_in_five_seconds() {
        let start = Instant::now();
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let mut a = Addresses::new(vec![addr], start);
        assert_eq!(a.for_connection(start + Duration::from_secs(1)), vec![addr]);
        assert!(!a.lookup_due(start + Duration::from_secs(1)), "fresh");
        a.all_failed();
        assert!(
            !a.lookup_due(start + Duration::from_secs(1)),
            "failed, within the least time between lookups"
        );
        assert!(!a.lookup_due(start + MIN_REFRESH), "the wish was spent");
        a.all_failed();
        assert!(a.lookup_due(start + MIN_REFRESH));
        a.for_connection(start + REFRESH - Duration::from_millis(1));
        assert!(
            !a.lookup_due(start + REFRESH),
            "not old when that one started"
        );
        a.for_connection(start + REFRESH);
        assert!(a.lookup_due(start + REFRESH), "old");
    }

    #[test]
    fn a_failed_lookup_is_tried_again_after_the_least_time_not_a_whole_refresh() {
        let start = Instant::now() + REFRESH;
        let addr: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let mut a = Addresses::new(vec![addr], start);
        a.lookup_failed(start);
        assert_eq!(a.for_connection(start + Duration::from_secs(1)), vec![addr]);
        assert!(!a.lookup_due(start + Duration::from_secs(1)), "just failed");
        a.for_connection(start + MIN_REFRESH);
        assert!(a.lookup_due(start + MIN_REFRESH), "asked again");
    }
}
