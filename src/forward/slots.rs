//! The connections' slots: a slab whose freed indices are reused, so that a
//! slot's index, and with it its tokens, stay small; and the arithmetic from
//! a slot to its tokens and back.

use mio::Token;

use crate::net::poller::{SESSION_BASE, SESSION_STRIDE};

/// Slots of `T`, each either free, reserved (its value out for a moment)
/// or holding a value; each reservation gets a new generation, so that
/// something noted about an earlier occupant can be told apart.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// Freed indices, reused before the slab grows.
    free: Vec<usize>,
    /// Reserved slots, holding a value or not.
    live: usize,
}

#[derive(Debug)]
struct Entry<T> {
    generation: u64,
    value: Option<T>,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    /// Reserves a slot, empty until [`Slab::put`].
    pub(crate) fn reserve(&mut self) -> usize {
        self.live += 1;
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push(Entry {
                generation: 0,
                value: None,
            });
            self.entries.len() - 1
        });
        self.entries[index].generation += 1;
        index
    }

    /// Frees a reserved slot, dropping its value if it has one.
    pub(crate) fn release(&mut self, index: usize) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.value = None;
            self.free.push(index);
            self.live -= 1;
        }
    }

    /// Puts a value into a reserved slot.
    pub(crate) fn put(&mut self, index: usize, value: T) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.value = Some(value);
        }
    }

    /// Takes a slot's value out, keeping the slot reserved.
    pub(crate) fn take(&mut self, index: usize) -> Option<T> {
        self.entries.get_mut(index)?.value.take()
    }

    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.entries.get(index)?.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.entries.get_mut(index)?.value.as_mut()
    }

    /// The generation of a slot's current reservation.
    pub(crate) fn generation(&self, index: usize) -> Option<u64> {
        self.entries.get(index).map(|e| e.generation)
    }

    /// How many slots are reserved.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Takes every value out, leaving the slab empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> {
        self.free.clear();
        self.live = 0;
        std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|e| e.value)
    }
}

/// Slot `index`'s edge socket token.
pub(crate) fn edge_token(index: usize) -> Token {
    Token(SESSION_BASE + index * SESSION_STRIDE)
}

/// Slot `index`'s local socket token.
pub(crate) fn local_token(index: usize) -> Token {
    Token(SESSION_BASE + index * SESSION_STRIDE + 1)
}

/// The first of slot `index`'s race's attempt tokens.
pub(crate) fn first_attempt_token(index: usize) -> usize {
    SESSION_BASE + index * SESSION_STRIDE + 2
}

/// The slot a token belongs to, if it is a slot's.
pub(crate) fn slot_of(token: Token) -> Option<usize> {
    token
        .0
        .checked_sub(SESSION_BASE)
        .map(|t| t / SESSION_STRIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_with_a_new_generation() {
        let mut slab = Slab::new();
        let a = slab.reserve();
        slab.put(a, "a");
        let b = slab.reserve();
        slab.put(b, "b");
        assert_eq!(slab.live(), 2);
        let first = slab.generation(a);
        slab.release(a);
        assert_eq!(slab.live(), 1);
        assert_eq!(slab.get(a), None);
        let c = slab.reserve();
        assert_eq!(c, a, "the freed index comes back");
        assert_ne!(slab.generation(c), first);
        assert_eq!(slab.get(c), None, "reserved, empty until put");
        slab.put(c, "c");
        assert_eq!(slab.take(c), Some("c"));
        assert_eq!(slab.live(), 2, "taken out, still reserved");
        assert_eq!(slab.drain().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(slab.live(), 0);
    }

    #[test]
    fn every_token_of_a_slot_leads_back_to_it_and_slots_do_not_overlap() {
        for index in [0, 1, 7, 20_000] {
            let first = first_attempt_token(index);
            let tokens = [edge_token(index), local_token(index)]
                .into_iter()
                .chain((first..first + SESSION_STRIDE - 2).map(Token));
            for token in tokens {
                assert_eq!(slot_of(token), Some(index), "{token:?}");
            }
        }
        assert_eq!(slot_of(Token(SESSION_BASE - 1)), None);
        assert_eq!(edge_token(1).0, first_attempt_token(0) + SESSION_STRIDE - 2);
    }

    #[test]
    fn the_token_ranges_of_the_process_do_not_overlap() {
        use crate::net::connect::MAX_ATTEMPTS;
        use crate::net::poller::{ATTEMPT_BASE, LISTENERS, LISTENER_BASE, SIGNAL, SOCKET, WAKER};
        use crate::net::poller::{STDIN, STDOUT};
        let fixed = [SIGNAL, WAKER, SOCKET, STDIN, STDOUT].map(|t| t.0);
        let attempts = ATTEMPT_BASE..ATTEMPT_BASE + MAX_ATTEMPTS;
        let listeners = LISTENER_BASE..LISTENER_BASE + LISTENERS;
        assert!(fixed.iter().all(|t| *t < ATTEMPT_BASE));
        assert!(attempts.end <= listeners.start);
        assert!(listeners.end <= SESSION_BASE);
    }
}
