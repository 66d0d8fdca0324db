//! stdin and stdout as relay ends: non-blocking while we run, restored when we stop,
//! polled or used directly according to what kind of file they are.
//!
//! Pipes, sockets and terminals can make a reader wait, so they are polled.
//! Regular files and other character devices (/dev/null, /dev/zero) never do;
//! epoll refuses them (EPERM) and kqueue accepts regular files but always
//! calls them ready, so they are read and written directly instead. Deciding
//! by file type rather than by a poller's errno keeps Linux and macOS on one path.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
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
    /// Not a kind of file that makes a reader wait: used directly, never polled.
    always_ready: bool,
    /// A terminal: a person, who has no EOF to give once the server is done.
    terminal: bool,
    closed: bool,
}

/// Whether a reader or writer of `fd` can be made to wait, so the loop must poll it.
pub fn is_pollable(fd: RawFd) -> io::Result<bool> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat; an invalid fd yields EBADF.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFSOCK => true,
        // SAFETY: isatty only inspects the descriptor.
        libc::S_IFCHR => (unsafe { libc::isatty(fd) }) == 1,
        _ => false,
    })
}

impl StdFd {
    /// Prepares `fd` for the loop: when it is a kind of file that can make
    /// us wait, O_NONBLOCK (and [`StdFd::register`] registers it); otherwise
    /// it is marked always ready and left as it is.
    pub fn new(fd: RawFd, name: &'static str) -> io::Result<Self> {
        let mut this = StdFd {
            fd,
            name,
            restore: None,
            always_ready: !is_pollable(fd)?,
            // SAFETY: isatty only inspects the descriptor.
            terminal: unsafe { libc::isatty(fd) } == 1,
            closed: false,
        };
        if !this.always_ready {
            let flags = fcntl_getfl(fd)?;
            if flags & libc::O_NONBLOCK == 0 {
                if let Some(slot) = panic_slot(fd) {
                    slot.store(flags, Ordering::SeqCst);
                }
                fcntl_setfl(fd, flags | libc::O_NONBLOCK)?;
                this.restore = Some(flags);
            }
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

    /// Registers the descriptor with `registry` when it is polled.
    pub fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        if self.always_ready {
            return Ok(());
        }
        registry.register(&mut SourceFd(&self.fd), token, interest)
    }

    /// Whether the descriptor never waits (so the loop must not wait on it).
    pub fn always_ready(&self) -> bool {
        self.always_ready
    }

    /// Whether the descriptor is a terminal.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// "stdin" or "stdout".
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Ends our use of the descriptor so that the process reading our stdout
    /// sees EOF, without freeing its number: a freed 1 would be taken by the
    /// next socket we open, and anything still writing to "stdout" (a stray
    /// log line, std's `Stdout`) would write into it. So a socket is shut
    /// down for writing (stdin may be the same socket, which would keep it
    /// open), and /dev/null is put in its place, dropping our reference to
    /// the pipe or socket.
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
        if let Err(e) = replace_with_dev_null(self.fd) {
            log::debug!("{}: could not put /dev/null in its place: {e}", self.name);
        }
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

/// Points `fd` at /dev/null, atomically (dup2), so its number stays taken.
fn replace_with_dev_null(fd: RawFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: both descriptors are open; dup2 closes `fd`'s old file
    // description reference and makes `fd` refer to /dev/null. `null` is
    // closed when it drops, leaving `fd` as the only reference we hold.
    if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe returned two new descriptors that nothing else owns.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// A terminal as a user's shell has one: the slave side of a new pty.
    /// (ptsname_r is Linux's; macOS runs the same `is_pollable`.)
    #[cfg(target_os = "linux")]
    fn terminal() -> (OwnedFd, File) {
        // SAFETY: posix_openpt returns a new descriptor (or -1), owned below.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0, "{}", io::Error::last_os_error());
        // SAFETY: as above; nothing else owns `master`.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: grantpt/unlockpt take the live master; ptsname_r writes at
        // most `name.len()` bytes, NUL-terminated, into `name`.
        unsafe {
            assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
            assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
            assert_eq!(
                libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
                0
            );
        }
        // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        let slave = File::options()
            .read(true)
            .write(true)
            .open(path.to_str().unwrap())
            .unwrap();
        (master, slave)
    }

    #[test]
    fn pipes_sockets_and_terminals_are_polled() {
        let (r, w) = pipe();
        assert!(is_pollable(r.as_raw_fd()).unwrap(), "pipe read end");
        assert!(is_pollable(w.as_raw_fd()).unwrap(), "pipe write end");
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(is_pollable(a.as_raw_fd()).unwrap(), "socket");
        #[cfg(target_os = "linux")]
        {
            let (_master, tty) = terminal();
            assert!(is_pollable(tty.as_raw_fd()).unwrap(), "terminal");
        }
    }

    #[test]
    fn files_and_other_devices_are_used_directly() {
        let file = File::open(file!()).unwrap();
        assert!(!is_pollable(file.as_raw_fd()).unwrap(), "regular file");
        let null = File::open("/dev/null").unwrap();
        assert!(!is_pollable(null.as_raw_fd()).unwrap(), "/dev/null");
        let zero = File::open("/dev/zero").unwrap();
        assert!(!is_pollable(zero.as_raw_fd()).unwrap(), "/dev/zero");
    }

    #[test]
    fn a_closed_descriptor_is_an_error_not_a_guess() {
        // Far above any open descriptor (a freed low one could be reused at
        // once by another test's thread).
        let err = is_pollable(RawFd::MAX).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
