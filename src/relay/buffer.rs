//! The bytes of one direction on their way from one end to the other: one
//! bounded buffer type for both directions of every session.

/// Bytes read from a source at once, and the most a buffer holds.
pub const BUDGET: usize = 64 * 1024;

/// Bytes on their way from one end to the other, `data[start..end]`, at most
/// [`BUDGET`]. Allocated when bytes first come; a buffer made to release
/// when idle gives its memory back whenever it is empty and its source has nothing more.
#[derive(Debug)]
pub struct Buffer {
    data: Box<[u8]>,
    start: usize,
    end: usize,
    /// Give the memory back when idle (many sessions) or keep it (one session).
    release_when_idle: bool,
}

impl Buffer {
    /// An empty buffer, holding no memory yet.
    pub fn new(release_when_idle: bool) -> Buffer {
        Buffer {
            data: Box::default(),
            start: 0,
            end: 0,
            release_when_idle,
        }
    }

    /// Bytes of memory held.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Whether every byte put in has been taken out.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes put in and not yet taken out.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// Takes out the first `n` pending bytes.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The free space after the pending bytes (all of it once they are gone).
    pub fn room(&mut self) -> &mut [u8] {
        if self.is_empty() {
            (self.start, self.end) = (0, 0);
        }
        if self.data.is_empty() {
            self.data = vec![0; BUDGET].into_boxed_slice();
        }
        &mut self.data[self.end..]
    }

    /// Puts in the first `n` bytes of what [`Buffer::room`] gave.
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The source has nothing more for now: an idle session holds no buffer.
    pub fn idle(&mut self) {
        if self.release_when_idle && self.is_empty() {
            self.data = Box::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pass_through_in_order_and_room_returns_once_drained() {
        let mut b = Buffer::new(false);
        assert!(b.is_empty());
        b.room()[..3].copy_from_slice(b"abc");
        b.filled(3);
        assert_eq!(b.pending(), b"abc");
        b.consume(1);
        assert_eq!(b.pending(), b"bc");
        assert_eq!(b.room().len(), BUDGET - 3, "room follows the pending bytes");
        b.consume(2);
        assert_eq!(b.room().len(), BUDGET, "an empty buffer starts over");
    }

    #[test]
    fn an_idle_buffer_gives_its_memory_back_only_when_it_may_and_is_empty() {
        let mut many = Buffer::new(true);
        many.room();
        many.filled(1);
        many.idle();
        assert_eq!(many.pending().len(), 1, "bytes are never dropped");
        many.consume(1);
        many.idle();
        assert_eq!(many.capacity(), 0);
        let mut one = Buffer::new(false);
        one.room();
        one.idle();
        assert_eq!(one.capacity(), BUDGET, "a single session keeps its buffer");
    }
}
