//! Waiting with a deadline: for any condition, and for bytes from a pipe or
//! socket, giving up (and failing the test) instead of hanging.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(5);

/// Checks `check` until it gives a value; `None` if it has not after `limit`.
pub fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Waits until `cond` holds; panics naming `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    if poll_until(limit, || cond().then_some(())).is_none() {
        panic!("waited {limit:?} for {what}, in vain");
    }
}

/// Waits until `fd` is readable (data or end of file); panics at `deadline`.
fn wait_readable(fd: &impl AsRawFd, deadline: Instant) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            1 => return,
            0 => panic!("nothing came to read before the deadline: the writer hangs"),
            _ => {
                let err = io::Error::last_os_error();
                assert_eq!(err.kind(), io::ErrorKind::Interrupted, "poll: {err}");
            }
        }
    }
}

/// One read from `r`, waiting for data until `deadline` (then panicking); 0 at
/// end of file.
pub fn read_by(r: &mut (impl Read + AsRawFd), buf: &mut [u8], deadline: Instant) -> usize {
    loop {
        wait_readable(r, deadline);
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other.unwrap(),
        }
    }
}

/// Fills `buf` from `r`; panics if the bytes have not all come within
/// `limit`, or if `r` ends first.
pub fn read_exact_within(r: &mut (impl Read + AsRawFd), buf: &mut [u8], limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut got = 0;
    while got < buf.len() {
        let n = read_by(r, &mut buf[got..], deadline);
        assert_ne!(n, 0, "end of file after {got} of {} bytes", buf.len());
        got += n;
    }
}

/// Reads `r` to its end; panics if the end has not come within `limit`.
pub fn read_to_end_within(r: &mut (impl Read + AsRawFd), limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match read_by(r, &mut buf, deadline) {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads `r` up to and including the first newline; panics if it has not
/// come within `limit`. Reads byte by byte: nothing after the line is taken.
pub fn read_line_within(r: &mut (impl Read + AsRawFd), limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut line = Vec::new();
    let mut byte = [0];
    while line.last() != Some(&b'\n') {
        assert_ne!(
            read_by(r, &mut byte, deadline),
            0,
            "end of file in {line:?}"
        );
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}
