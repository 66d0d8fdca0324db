//! How fast this machine's `memcpy` copies a 16 KiB TLS record's plaintext,
//! for each distance between destination and source modulo a 64-byte cache
//! line: the measurement behind `src/alloc.rs`.
//!
//! Usage: `cargo run --release --example memcpy_alignment`. It prints seconds
//! per GiB copied for each `(dst - src) mod 64`, with the source 5 bytes into
//! a cache line (where rustls finds a record's plaintext, after its header).

use std::hint::black_box;
use std::time::Instant;

const RECORD: usize = 16 * 1024;
const COPIES: usize = 16 * 1024; // 256 MiB per distance
const SRC_OFFSET: usize = 5;

fn main() {
    // Two buffers with room to start each copy anywhere in a cache line of a page.
    let mut src_buf = vec![1u8; RECORD + 4096 + 128];
    let mut dst_buf = vec![0u8; RECORD + 4096 + 128];
    let src_base = align_to_page(src_buf.as_mut_ptr());
    let dst_base = align_to_page(dst_buf.as_mut_ptr());
    println!("(dst - src) mod 64 | s/GiB");
    println!("---:|---:");
    let mut results = Vec::new();
    for distance in 0..64 {
        let src = src_base + SRC_OFFSET;
        let dst = dst_base + (SRC_OFFSET + distance) % 64;
        let (src, dst) = (&src_buf[src..src + RECORD], &mut dst_buf[dst..dst + RECORD]);
        let started = Instant::now();
        for _ in 0..COPIES {
            dst.copy_from_slice(black_box(src));
            black_box(&mut *dst);
        }
        let per_gib = started.elapsed().as_secs_f64() * (1 << 30) as f64 / (RECORD * COPIES) as f64;
        println!("{distance} | {per_gib:.3}");
        results.push(per_gib);
    }
    let fastest = results.iter().copied().fold(f64::INFINITY, f64::min);
    let slow: Vec<usize> = (0..64).filter(|&d| results[d] > 4.0 * fastest).collect();
    println!("\nfastest {fastest:.3} s/GiB; more than 4x that at distances {slow:?}");
}

/// The index of the first page-aligned byte of a buffer starting at `ptr`.
fn align_to_page(ptr: *mut u8) -> usize {
    (ptr as usize).next_multiple_of(4096) - ptr as usize
}
