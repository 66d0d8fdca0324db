//! A buffer between the socket and rustls: rustls asks its reader for at most
//! one record (16 KiB, often 4 KiB) at a time, and one large read from the
//! socket costs far less than many small ones.

use std::io::{self, Read};

/// Most ciphertext read from the socket at once.
const READ_AHEAD: usize = 64 * 1024;

/// Ciphertext read from the socket that rustls has not taken yet: `buf[start..end]`.
#[derive(Debug)]
pub struct ReadAhead {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadAhead {
    /// An empty buffer of `READ_AHEAD` bytes.
    pub fn new() -> Self {
        ReadAhead {
            buf: vec![0; READ_AHEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// A reader serving from the buffer, refilling it from `source` only when
    /// it is empty, so `WouldBlock` and EOF surface only once all read is used.
    pub fn on<'a, R: Read>(&'a mut self, source: &'a mut R) -> impl Read + 'a {
        ReadAheadOn {
            ahead: self,
            source,
        }
    }
}

struct ReadAheadOn<'a, R> {
    ahead: &'a mut ReadAhead,
    source: &'a mut R,
}

impl<R: Read> Read for ReadAheadOn<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let ahead = &mut *self.ahead;
        if ahead.start == ahead.end && !out.is_empty() {
            ahead.end = self.source.read(&mut ahead.buf)?;
            ahead.start = 0;
        }
        let n = out.len().min(ahead.end - ahead.start);
        out[..n].copy_from_slice(&ahead.buf[ahead.start..ahead.start + n]);
        ahead.start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives out `data` in one large read, then `WouldBlock`, then EOF.
    struct Burst<'a> {
        data: &'a [u8],
        calls: usize,
    }

    impl Read for Burst<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            match self.calls {
                1 => {
                    let n = out.len().min(self.data.len());
                    out[..n].copy_from_slice(&self.data[..n]);
                    Ok(n)
                }
                2 => Err(io::ErrorKind::WouldBlock.into()),
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn small_reads_get_every_byte_from_one_large_read_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut source = Burst {
            data: &data,
            calls: 0,
        };
        let mut ahead = ReadAhead::new();
        let mut got = Vec::new();
        let mut piece = [0; 4096];
        loop {
            match ahead.on(&mut source).read(&mut piece) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => assert_eq!(got, data),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, data);
        assert_eq!(
            source.calls, 3,
            "one read for the data, then WouldBlock, then EOF"
        );
    }
}
