//! A pseudo-terminal, so stdin can be a tty as when a user runs the tunnel by
//! hand, and descriptor flags on a file description shared with the "shell"
//! (the test) can be checked.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Both ends of a pty.
pub struct Pty {
    /// What a terminal emulator holds: write here to type, read here to see.
    pub master: File,
    /// What the shell and its children hold as their terminal.
    pub slave: File,
}

impl Pty {
    /// A fresh pty with raw-ish defaults left alone (canonical mode, echo).
    pub fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors; name, termios and winsize
        // may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                // Mutable pointers: Linux declares these two `*const`, macOS `*mut`.
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty returned two fresh descriptors that nothing else owns.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Children of other tests must not inherit them (openpty has no
        // close-on-exec flag; the window before this is a few instructions).
        for fd in [&master, &slave] {
            // SAFETY: F_SETFD on a descriptor we own.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Pty {
            master: master.into(),
            slave: slave.into(),
        }
    }

    /// A new descriptor for the slave sharing its file description (and so
    /// its status flags), to hand to a child as stdin or stdout.
    pub fn slave_handle(&self) -> File {
        self.slave.try_clone().unwrap()
    }

    /// The slave's file status flags, as every holder of it sees them.
    pub fn slave_flags(&self) -> libc::c_int {
        flags(self.slave.as_raw_fd())
    }
}

/// `fcntl(fd, F_GETFL)`.
pub fn flags(fd: RawFd) -> libc::c_int {
    // SAFETY: F_GETFL only reads flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", std::io::Error::last_os_error());
    flags
}
