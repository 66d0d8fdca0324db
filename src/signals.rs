//! SIGHUP, SIGINT and SIGTERM as events on the loop (a signalfd), so that stopping
//! runs the same cleanup as every other ending.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// The signals that end a tunnel; ssh sends SIGHUP when it is done with us.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// A signalfd receiving the stop signals, which are blocked for normal delivery.
#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks the stop signals and opens a signalfd for them. Call before any
    /// thread is spawned, so that every thread inherits the mask.
    pub fn new() -> io::Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset and sigprocmask
        // read it; all are given valid pointers.
        let fd = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for sig in STOP_SIGNALS {
                libc::sigaddset(set.as_mut_ptr(), sig);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::signalfd(-1, set.as_ptr(), libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals { fd })
    }

    /// Registers the signalfd for readability.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.fd.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    /// The first pending stop signal, if any.
    pub fn pending(&self) -> Option<i32> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`, which has that size.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if usize::try_from(n).ok() != Some(size) {
            return None;
        }
        // SAFETY: the kernel filled the whole struct (n == size).
        let info = unsafe { info.assume_init() };
        i32::try_from(info.ssi_signo).ok()
    }
}
