//! stdin and stdout as relay ends: non-blocking while we run, restored when we stop,
//! polled when epoll accepts them and used directly when it does not (files, /dev/null).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// Flags to put back on fds 0 and 1 if a panic ends the process, -1 for none:
/// release builds abort on panic, so `Drop` would never run.
static RESTORE_ON_PANIC: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];

/// Makes a panic put back the flags of stdin and stdout before the process
/// dies, as `Drop` does on every other path. Call once, early in `main`.
pub fn restore_flags_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        for (fd, saved) in (0..).zip(&RESTORE_ON_PANIC) {
            let flags = saved.swap(-1, Ordering::SeqCst);
            if flags >= 0 {
                let _ = fcntl_setfl(fd, flags);
            }
        }
        report(info);
    }));
}

fn panic_slot(fd: RawFd) -> Option<&'static AtomicI32> {
    usize::try_from(fd)
        .ok()
        .and_then(|i| RESTORE_ON_PANIC.get(i))
}

/// One of the process's standard descriptors, borrowed for the life of the tunnel.
///
/// It never closes the descriptor on drop (the file description may be shared
/// with the user's shell); it only puts back the flags it changed.
#[derive(Debug)]
pub struct StdFd {
    fd: RawFd,
    name: &'static str,
    /// Flags to put back, when we set O_NONBLOCK.
    restore: Option<libc::c_int>,
    /// epoll refused the descriptor (regular file, /dev/null): it is always ready.
    always_ready: bool,
    closed: bool,
}

impl StdFd {
    /// Prepares `fd` for the loop: O_NONBLOCK and registration with `registry`
    /// when epoll supports it, otherwise marked always ready (and left blocking).
    pub fn new(
        fd: RawFd,
        name: &'static str,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<Self> {
        let flags = fcntl_getfl(fd)?;
        let mut this = StdFd {
            fd,
            name,
            restore: None,
            always_ready: false,
            closed: false,
        };
        match registry.register(&mut SourceFd(&fd), token, interest) {
            Ok(()) => {
                if flags & libc::O_NONBLOCK == 0 {
                    if let Some(slot) = panic_slot(fd) {
                        slot.store(flags, Ordering::SeqCst);
                    }
                    fcntl_setfl(fd, flags | libc::O_NONBLOCK)?;
                    this.restore = Some(flags);
                }
            }
            // epoll does not take regular files or /dev/null: they never block.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => this.always_ready = true,
            Err(e) => return Err(e),
        }
        log::debug!(
            "{name}: fd {fd}, {}",
            if this.always_ready {
                "not pollable, used directly"
            } else {
                "polled"
            }
        );
        Ok(this)
    }

    /// Whether the descriptor never waits (so the loop must not wait on it).
    pub fn always_ready(&self) -> bool {
        self.always_ready
    }

    /// "stdin" or "stdout".
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Puts back the original flags and closes the descriptor, so the process
    /// reading our stdout sees EOF. A socket is shut down for writing first:
    /// stdin may be the same socket, which would otherwise keep it open.
    pub fn close(&mut self, registry: &Registry) {
        if self.closed {
            return;
        }
        if !self.always_ready {
            // Explicitly: epoll would keep the registration while another
            // descriptor (stdin) still refers to the same file description.
            let _ = registry.deregister(&mut SourceFd(&self.fd));
        }
        self.restore_flags();
        // SAFETY: shutdown on a descriptor we were handed; ENOTSOCK for
        // non-sockets is expected and harmless.
        unsafe { libc::shutdown(self.fd, libc::SHUT_WR) };
        // SAFETY: closing a standard descriptor this struct owns the use of;
        // nothing else in the process reads or writes it after this.
        unsafe { libc::close(self.fd) };
        self.closed = true;
    }

    fn restore_flags(&mut self) {
        if let Some(flags) = self.restore.take() {
            if let Some(slot) = panic_slot(self.fd) {
                slot.store(-1, Ordering::SeqCst);
            }
            if let Err(e) = fcntl_setfl(self.fd, flags) {
                log::debug!("{}: could not restore descriptor flags: {e}", self.name);
            }
        }
    }
}

impl Drop for StdFd {
    fn drop(&mut self) {
        self.restore_flags();
    }
}

impl io::Read for StdFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` writable bytes.
        let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
        cvt(n)
    }
}

impl io::Write for StdFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` readable bytes.
        let n = unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) };
        cvt(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn cvt(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn fcntl_getfl(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL reads flags; an invalid fd yields EBADF, not UB.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

fn fcntl_setfl(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: F_SETFL only changes status flags of a descriptor we were handed.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
