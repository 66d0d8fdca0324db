//! Reading the socket one TLS record at a time (RFC 8446 §5.1: a 5-byte header
//! whose last two bytes give the length of the body that follows).
//!
//! rustls keeps whatever it was given past the last whole record and, on
//! every `process_new_packets`, moves it to the front of its buffer (and then
//! once more onto itself; musl's `memmove` does that a byte at a time,
//! backwards). Reads that stop where a record ends leave at most the next
//! header behind, and the relay processes only when there is something to
//! process: a finished record, or a header for rustls to check.
//!
//! Why it exists, so that an upgrade re-measures instead of carrying it:
//! written against rustls 0.23.46, where `process_new_packets` ends with
//! `discard(0)`, a self-copy of the leftover partial record. On the static
//! (musl) build that copy was 13% of a download's profile, and this module
//! took the download from 2.03 to 1.62 CPU s/GiB (`benches/compare.sh`, see
//! README "What was changed"). rustls 0.24's in-place decryption of a
//! caller-owned buffer removes the copy: on that upgrade, run the benchmark
//! with and without this module, and delete it if it no longer pays.

use std::io::{self, Read};

/// Length of a TLS record header.
const HEADER: usize = 5;

/// Where the byte stream stands in the record framing.
#[derive(Debug, Default)]
pub struct Records {
    /// Body bytes of the current record still to come; 0 while in a header.
    body_left: usize,
    /// The current header, as far as it has come.
    header: [u8; HEADER],
    header_have: usize,
    /// A header or a record was completed since the last `take_boundary`.
    boundary: bool,
}

impl Records {
    /// A reader of `source` whose reads end at the end of the next header
    /// (so at most one header, and the body before it, per read).
    pub fn on<'a, R: Read>(&'a mut self, source: &'a mut R) -> impl Read + 'a {
        RecordsOn {
            records: self,
            source,
        }
    }

    /// Whether a header or a record body was completed since the last call.
    pub fn take_boundary(&mut self) -> bool {
        std::mem::take(&mut self.boundary)
    }

    /// Most bytes that keep the next read within the current record and the
    /// header after it.
    fn room(&self) -> usize {
        self.body_left + HEADER - self.header_have
    }

    /// Follows the framing over `bytes`, just read.
    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                self.boundary |= self.body_left == 0;
                continue;
            }
            let n = (HEADER - self.header_have).min(bytes.len());
            self.header[self.header_have..self.header_have + n].copy_from_slice(&bytes[..n]);
            self.header_have += n;
            bytes = &bytes[n..];
            if self.header_have == HEADER {
                self.header_have = 0;
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.boundary = true;
            }
        }
    }
}

struct RecordsOn<'a, R> {
    records: &'a mut Records,
    source: &'a mut R,
}

impl<R: Read> Read for RecordsOn<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let len = out.len().min(self.records.room());
        let n = self.source.read(&mut out[..len])?;
        self.records.advance(&out[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len`-byte body records of type application data, one after another.
    fn stream(bodies: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &len) in bodies.iter().enumerate() {
            out.extend_from_slice(&[23, 3, 3]);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            out.extend(std::iter::repeat_n(i as u8, len));
        }
        out
    }

    #[test]
    fn reads_stop_after_each_header_and_get_every_byte() {
        let data = stream(&[3, 16384, 0, 7]);
        let mut source = &data[..];
        let mut records = Records::default();
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let mut buf = [0; 20_000];
            let n = records.on(&mut source).read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(
                records.take_boundary(),
                "read {} ended mid-record",
                sizes.len()
            );
            got.extend_from_slice(&buf[..n]);
            sizes.push(n);
        }
        assert_eq!(got, data);
        // header 1; body 1 + header 2; body 2 + header 3 (empty body); header 4; body 4.
        assert_eq!(sizes, [5, 8, 16389, 5, 7]);
    }

    #[test]
    fn a_record_split_across_reads_is_complete_only_at_its_end() {
        let data = stream(&[100]);
        let mut records = Records::default();
        let mut boundaries = Vec::new();
        for piece in [&data[..2], &data[2..5], &data[5..50], &data[50..]] {
            let mut source = piece;
            let mut buf = [0; 200];
            let n = records.on(&mut source).read(&mut buf).unwrap();
            assert_eq!(n, piece.len());
            boundaries.push(records.take_boundary());
        }
        assert_eq!(boundaries, [false, true, false, true]);
    }
}
