//! Whether `forward` accepts new clients now, and what it has said about
//! why not: one state, moved by small pure transitions, so that every way
//! accepting stops and starts again is visible here and testable without
//! sockets.

use std::time::{Duration, Instant};

/// How often to try accepting again when accepting failed (out of
/// descriptors with no connection of ours to free one, as others in the
/// process may; or out of kernel memory): the listener does not say when.
pub(crate) const RETRY_ACCEPT: Duration = Duration::from_secs(1);

/// Where accepting stands. The two warnings (at the limit, out of
/// descriptors) are said once per episode: the limit's until the listen
/// queue is drained below it, the shortage's until a client is accepted
/// with both its descriptors. An episode of one that the other interrupts
/// ends there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Accepting whenever a listener says a client waits.
    Open,
    /// Out of descriptors, said, and tried again: accepting as in `Open`,
    /// without saying the shortage again until it is over.
    Short,
    /// At `--max-connections`, said: nothing is accepted until a connection ends.
    AtLimit,
    /// A connection ended at the limit: the clients queued meanwhile are
    /// accepted at the next turn of the loop (the listeners, edge-triggered,
    /// announced them before and do not again).
    Freed,
    /// Accepting failed: tried again at `retry_at`, or sooner when a
    /// connection ends or a new client arrives. `fds_said`: a shortage of
    /// descriptors is said.
    Paused { retry_at: Instant, fds_said: bool },
}

/// A warning an [`Admission`] transition asks to be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Say {
    /// The `--max-connections` limit is reached.
    AtLimit,
    /// The descriptors ran out.
    OutOfFds,
}

impl Admission {
    /// Whether accepting is due at `now` without a listener's event.
    pub(crate) fn due(self, now: Instant) -> bool {
        match self {
            Admission::Freed => true,
            Admission::Paused { retry_at, .. } => now >= retry_at,
            Admission::Open | Admission::Short | Admission::AtLimit => false,
        }
    }

    /// When the loop must wake for accepting without an event (`now` when at once).
    pub(crate) fn wake_at(self, now: Instant) -> Option<Instant> {
        match self {
            Admission::Freed => Some(now),
            Admission::Paused { retry_at, .. } => Some(retry_at),
            Admission::Open | Admission::Short | Admission::AtLimit => None,
        }
    }

    /// Whether accepting failed and waits.
    pub(crate) fn is_paused(self) -> bool {
        matches!(self, Admission::Paused { .. })
    }

    /// A pause ends: accepting is tried again.
    pub(crate) fn retry(self) -> Self {
        match self {
            Admission::Paused { fds_said: true, .. } => Admission::Short,
            Admission::Paused {
                fds_said: false, ..
            } => Admission::Open,
            other => other,
        }
    }

    /// The limit is reached; says so unless already said.
    pub(crate) fn full(self) -> (Self, Option<Say>) {
        let said = matches!(self, Admission::AtLimit | Admission::Freed);
        (Admission::AtLimit, (!said).then_some(Say::AtLimit))
    }

    /// Out of descriptors at `now`: a pause; says so unless already said.
    pub(crate) fn out_of_fds(self, now: Instant) -> (Self, Option<Say>) {
        let said = self.fds_said();
        let paused = Admission::Paused {
            retry_at: now + RETRY_ACCEPT,
            fds_said: true,
        };
        (paused, (!said).then_some(Say::OutOfFds))
    }

    /// Accepting failed otherwise at `now` (the caller says why, each time).
    pub(crate) fn stalled(self, now: Instant) -> Self {
        Admission::Paused {
            retry_at: now + RETRY_ACCEPT,
            fds_said: self.fds_said(),
        }
    }

    /// A client was accepted with both its descriptors: any shortage is over.
    pub(crate) fn accepted(self) -> Self {
        match self {
            Admission::Short => Admission::Open,
            other => other,
        }
    }

    /// Every listener's queue is drained below the limit.
    pub(crate) fn drained(self) -> Self {
        match self {
            Admission::AtLimit | Admission::Freed => Admission::Open,
            other => other,
        }
    }

    /// A connection ended at `now`: if accepting waited, it is due at once.
    pub(crate) fn freed(self, now: Instant) -> Self {
        match self {
            Admission::AtLimit => Admission::Freed,
            Admission::Paused { fds_said, .. } => Admission::Paused {
                retry_at: now,
                fds_said,
            },
            other => other,
        }
    }

    fn fds_said(self) -> bool {
        matches!(
            self,
            Admission::Short | Admission::Paused { fds_said: true, .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_it_says_so_once_and_a_freed_slot_makes_accepting_due_at_once() {
        let now = Instant::now();
        let (full, said) = Admission::Open.full();
        assert_eq!(said, Some(Say::AtLimit));
        assert!(!full.due(now), "nothing to do until a connection ends");
        assert_eq!(full.wake_at(now), None, "no timer at the limit");
        let freed = full.freed(now);
        assert!(freed.due(now));
        assert_eq!(freed.wake_at(now), Some(now));
        // The one accepted fills the limit again: not said again.
        let (again, said) = freed.full();
        assert_eq!((again, said), (Admission::AtLimit, None));
        // The queue drained below the limit ends the episode.
        let (_, said) = freed.drained().full();
        assert_eq!(said, Some(Say::AtLimit));
    }

    #[test]
    fn out_of_descriptors_it_waits_a_second_and_says_so_once_per_shortage() {
        let now = Instant::now();
        let (paused, said) = Admission::Open.out_of_fds(now);
        assert_eq!(said, Some(Say::OutOfFds));
        assert!(paused.is_paused());
        assert_eq!(paused.wake_at(now), Some(now + RETRY_ACCEPT));
        assert!(!paused.due(now), "no retry at once: that would spin");
        assert!(paused.due(now + RETRY_ACCEPT));
        // Retried and still short: quiet.
        let later = now + RETRY_ACCEPT;
        let (paused, said) = paused.retry().out_of_fds(later);
        assert_eq!(said, None);
        assert_eq!(paused.wake_at(later), Some(later + RETRY_ACCEPT));
        // A client accepted whole ends the shortage; the next is said again.
        let open = paused.retry().accepted();
        assert_eq!(open, Admission::Open);
        assert_eq!(open.out_of_fds(later).1, Some(Say::OutOfFds));
    }

    #[test]
    fn a_connection_ending_while_paused_makes_the_retry_due_at_once_and_keeps_what_was_said() {
        let now = Instant::now();
        let (paused, _) = Admission::Open.out_of_fds(now);
        let soon = now + Duration::from_millis(10);
        let freed = paused.freed(soon);
        assert!(freed.due(soon));
        assert_eq!(freed.wake_at(soon), Some(soon));
        assert_eq!(freed.retry(), Admission::Short);
        assert_eq!(freed.retry().out_of_fds(soon).1, None);
    }

    #[test]
    fn another_accept_failure_pauses_without_a_shortage_said() {
        let now = Instant::now();
        let stalled = Admission::Open.stalled(now);
        assert!(stalled.is_paused() && !stalled.due(now));
        assert_eq!(stalled.retry(), Admission::Open);
        assert_eq!(stalled.out_of_fds(now).1, Some(Say::OutOfFds));
        // During a shortage it stays said.
        let (short, _) = Admission::Open.out_of_fds(now);
        assert_eq!(short.retry().stalled(now).retry(), Admission::Short);
    }

    /// The loop's use of the state, over ten seconds out of descriptors with
    /// no connection ending: it sleeps until each retry, tries about once a
    /// second, and says the shortage once.
    #[test]
    fn out_of_descriptors_for_ten_seconds_it_tries_once_a_second_not_in_a_busy_loop() {
        let start = Instant::now();
        let end = start + Duration::from_secs(10);
        let (mut state, first) = Admission::Open.out_of_fds(start);
        let mut said = vec![first];
        let (mut now, mut tries) = (start, 0);
        while now <= end {
            if state.due(now) {
                tries += 1;
                let (next, say) = state.retry().out_of_fds(now);
                state = next;
                said.push(say);
            }
            let wake = state.wake_at(now).expect("a paused state has a timer");
            assert!(wake > now, "a wait of zero would spin");
            now = wake;
        }
        assert_eq!(tries, 10);
        assert_eq!(said.iter().flatten().count(), 1, "{said:?}");
    }

    #[test]
    fn open_accepting_has_no_timer_and_ignores_freed_slots() {
        let now = Instant::now();
        for state in [Admission::Open, Admission::Short] {
            assert!(!state.due(now));
            assert_eq!(state.wake_at(now), None);
            assert_eq!(state.freed(now), state);
            assert_eq!(state.drained(), state);
            assert_eq!(state.retry(), state);
        }
    }
}
