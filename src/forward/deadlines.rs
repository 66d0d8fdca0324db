//! When each connection next needs the loop without an event (its connect
//! or handshake deadline, its race's next attempt), kept in a heap so that
//! a wakeup costs what is due, not a walk over every connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Times by slot and generation. An entry is never removed when its slot's
/// time changes or the slot ends: it is dropped when it reaches the top and
/// the caller no longer knows it (lazy invalidation), so each change costs
/// one push.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Deadlines {
    /// Notes that slot `index` of `generation` needs the loop at `at`.
    pub(crate) fn push(&mut self, at: Instant, index: usize, generation: u64) {
        self.heap.push(Reverse((at, index, generation)));
    }

    /// The earliest time still `current`, dropping those that are not.
    pub(crate) fn next(
        &mut self,
        current: impl Fn(Instant, usize, u64) -> bool,
    ) -> Option<Instant> {
        while let Some(&Reverse((at, index, generation))) = self.heap.peek() {
            if current(at, index, generation) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes out the slots due at `now` whose times are still `current`.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        current: impl Fn(Instant, usize, u64) -> bool,
    ) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(&Reverse((at, index, generation))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if current(at, index, generation) {
                due.push(index);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_what_is_due_comes_out_earliest_first_and_stale_times_are_skipped() {
        let now = Instant::now();
        let s = Duration::from_secs;
        let mut d = Deadlines::default();
        d.push(now + s(3), 0, 1);
        d.push(now + s(1), 1, 1);
        d.push(now + s(2), 2, 1);
        // Slot 1 was rescheduled; slot 2's connection ended and the slot
        // was reused (generation 2).
        d.push(now + s(5), 1, 1);
        let current = |at: Instant, index, generation| match index {
            1 => at == now + s(5),
            2 => generation == 2,
            _ => true,
        };
        assert_eq!(d.next(current), Some(now + s(3)));
        assert_eq!(d.due(now + s(2), current), Vec::<usize>::new());
        assert_eq!(d.due(now + s(4), current), vec![0]);
        assert_eq!(d.next(current), Some(now + s(5)));
        assert_eq!(d.due(now + s(9), current), vec![1]);
        assert_eq!(d.next(current), None);
    }
}
