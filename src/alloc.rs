//! The global allocator's one adjustment: blocks of 4 KiB or more start on a
//! cache line.
//!
//! rustls 0.23.46 copies every received record's plaintext out of its read
//! buffer (from 5 bytes past the record header) into a new block. On the AMD
//! EPYC CPUs of benches/README.md, the `rep movsb` glibc copies large blocks
//! with (and musl's `rep movsq`) is several times slower when (destination -
//! source) mod 64 is between 1 and 31, where malloc's 16-byte alignment puts
//! that copy half the time; with both blocks on a cache line the distance is
//! 59. `cargo run --release --example memcpy_alignment` shows the slow band,
//! and benches/README.md ("What was changed, and what was tried") the A/B.
//! Delete this when rustls decrypts in place (0.24) or the copy no longer
//! lands in the slow band.
//!
//! Its cost: `realloc` cannot keep a 64-byte alignment, so a large block that
//! grows or shrinks is moved (allocate, copy, free). The relay's own buffers
//! never reallocate; rustls's deframer buffer shrinks to 4 KiB whenever it
//! empties and grows back on the next record, each time a copy here.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;

/// Blocks of at least this many bytes are aligned to [`LINE`].
const LARGE: usize = 4096;
/// A cache line.
const LINE: usize = 64;

/// Wraps an allocator so that blocks of 4 KiB or more are aligned to 64 bytes.
#[derive(Debug)]
pub struct LineAligned<A>(pub A);

/// The layout actually asked of the inner allocator: a pure function of the
/// caller's layout, so `dealloc` and `realloc` find the block `alloc` made.
fn inner_layout(layout: Layout) -> Layout {
    if layout.size() >= LARGE && layout.align() < LINE {
        Layout::from_size_align(layout.size(), LINE).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every method forwards to the inner allocator with `inner_layout` of
// the caller's layout, which has the same size and at least the alignment
// asked for; blocks are always freed with the layout they were made with.
unsafe impl<A: GlobalAlloc> GlobalAlloc for LineAligned<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `inner_layout` keeps the size, which the caller made non-zero.
        unsafe { self.0.alloc(inner_layout(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { self.0.alloc_zeroed(inner_layout(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by the inner allocator with exactly this layout.
        unsafe { self.0.dealloc(ptr, inner_layout(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = inner_layout(layout);
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`,
        // does not overflow isize.
        let new =
            inner_layout(unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) });
        if old.align() == new.align() {
            // SAFETY: `ptr` was made with `old`; the alignment stays the same.
            return unsafe { self.0.realloc(ptr, old, new_size) };
        }
        // Crossing LARGE changes the alignment, which realloc cannot: move it.
        // SAFETY: `new` has the caller's non-zero `new_size`.
        let moved = unsafe { self.0.alloc(new) };
        if !moved.is_null() {
            // SAFETY: both blocks are live, distinct, and hold at least this many bytes.
            unsafe { ptr::copy_nonoverlapping(ptr, moved, old.size().min(new_size)) };
            // SAFETY: `ptr` was made with `old` and is not used again.
            unsafe { self.0.dealloc(ptr, old) };
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    const ALLOC: LineAligned<System> = LineAligned(System);

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 1).unwrap()
    }

    #[test]
    fn large_blocks_start_on_a_cache_line_small_ones_as_asked() {
        assert_eq!(inner_layout(layout(LARGE)).align(), LINE);
        assert_eq!(inner_layout(layout(LARGE - 1)).align(), 1);
        let page = Layout::from_size_align(LARGE, 4096).unwrap();
        assert_eq!(inner_layout(page), page, "a larger alignment is kept");
        for size in [LARGE, 16 * 1024 + 5, 1 << 20] {
            // SAFETY: a non-zero size; freed below with the same layout.
            let ptr = unsafe { ALLOC.alloc(layout(size)) };
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % LINE, 0, "{size}-byte block");
            // SAFETY: made just above with this layout.
            unsafe { ALLOC.dealloc(ptr, layout(size)) };
        }
    }

    #[test]
    fn realloc_across_the_threshold_keeps_the_bytes() {
        let fill = |ptr: *mut u8, len: usize| {
            for i in 0..len {
                // SAFETY: `ptr` holds at least `len` bytes.
                unsafe { ptr.add(i).write(i as u8) };
            }
        };
        let holds = |ptr: *mut u8, len: usize| {
            // SAFETY: `ptr` holds at least `len` initialised bytes.
            (0..len).all(|i| unsafe { ptr.add(i).read() } == i as u8)
        };
        // SAFETY: every block is used within its size and freed once, with
        // the layout its last (re)allocation gave it.
        unsafe {
            let small = ALLOC.alloc(layout(100));
            fill(small, 100);
            let grown = ALLOC.realloc(small, layout(100), 3 * LARGE);
            assert_eq!(grown as usize % LINE, 0);
            assert!(holds(grown, 100));
            fill(grown, 3 * LARGE);
            let larger = ALLOC.realloc(grown, layout(3 * LARGE), 5 * LARGE);
            assert_eq!(larger as usize % LINE, 0);
            assert!(holds(larger, 3 * LARGE));
            let shrunk = ALLOC.realloc(larger, layout(5 * LARGE), 50);
            assert!(holds(shrunk, 50));
            ALLOC.dealloc(shrunk, layout(50));
        }
    }
}
