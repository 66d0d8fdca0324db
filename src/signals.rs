//! SIGHUP, SIGINT and SIGTERM as events on the loop, so that stopping runs the
//! same cleanup as every other ending.
//!
//! A handler writes the signal's number into a pipe that the loop polls (the
//! self-pipe trick). It works the same on Linux and macOS, so the code a Mac
//! runs is the code the Linux suite tests, and unlike a blocked signal mask
//! read through a signalfd, it does not depend on which threads exist or when
//! they were started: whichever thread takes the signal, the byte reaches the loop.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use mio::unix::pipe;
use mio::{Interest, Registry, Token};

/// The signals that end a tunnel; ssh sends SIGHUP when it is done with us.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// The pipe's write end, for the handler; -1 while no [`Signals`] is alive.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// The stop signals, delivered as readable bytes on a pipe.
#[derive(Debug)]
pub struct Signals {
    receiver: pipe::Receiver,
    /// Kept open for the handler, which writes to its descriptor.
    sender: pipe::Sender,
    /// The signals given our handler (an ignored one is left ignored).
    installed: Vec<libc::c_int>,
}

impl Signals {
    /// Opens the pipe and installs the handler for the stop signals.
    pub fn new() -> io::Result<Self> {
        let (sender, receiver) = pipe::new()?;
        WRITE_END.store(sender.as_raw_fd(), Ordering::SeqCst);
        let mut signals = Signals {
            receiver,
            sender,
            installed: Vec::new(),
        };
        for signal in STOP_SIGNALS {
            // On failure `signals` drops, which clears WRITE_END and puts
            // the handlers installed so far back to the default.
            if install(signal)? {
                signals.installed.push(signal);
            }
        }
        Ok(signals)
    }

    /// Registers the pipe for readability.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.receiver, token, Interest::READABLE)
    }

    /// The first pending stop signal, if any.
    pub fn pending(&mut self) -> Option<i32> {
        let mut byte = [0u8; 1];
        match self.receiver.read(&mut byte) {
            Ok(1) => Some(i32::from(byte[0])),
            _ => None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // A later Signals may have taken the slot; only ours is cleared, and
        // then the signals act as they would have without us.
        let ours = WRITE_END
            .compare_exchange(
                self.sender.as_raw_fd(),
                -1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok();
        if ours {
            for &signal in &self.installed {
                // SAFETY: SIG_DFL is always a valid disposition.
                unsafe { libc::signal(signal, libc::SIG_DFL) };
            }
        }
    }
}

/// Installs the handler for `signal`, unless the signal is ignored: what
/// started us (`nohup`, a shell running us in the background) meant it to
/// be. Whether it was installed.
fn install(signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags);
    // with a null new action, sigaction only writes the current one into it.
    let ignored = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            return Err(io::Error::last_os_error());
        }
        current.sa_sigaction == libc::SIG_IGN
    };
    if ignored {
        return Ok(false);
    }
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags)
    // that is then filled in; sigaction reads it and writes nothing back
    // (the old action is not asked for).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Restart interrupted reads and writes: the loop learns of the signal
        // from the pipe, so no other call needs to see EINTR.
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(true)
}

/// Writes the signal's number to the pipe. Only async-signal-safe calls:
/// an atomic load and `write(2)`; errno is put back for the code it interrupted.
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = WRITE_END.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let saved = errno();
    // Signal numbers fit in a byte; a full pipe already holds a pending stop.
    let byte = signal as u8;
    // SAFETY: writes one byte from a live local to a descriptor we keep open
    // while WRITE_END names it.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    set_errno(saved);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno slot; no preconditions.
    unsafe { libc::__errno_location() }
}

#[cfg(target_vendor = "apple")]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: returns the calling thread's errno slot; no preconditions.
    unsafe { libc::__error() }
}

fn errno() -> libc::c_int {
    // SAFETY: the slot is valid for the life of the thread.
    unsafe { *errno_location() }
}

fn set_errno(value: libc::c_int) {
    // SAFETY: the slot is valid for the life of the thread.
    unsafe { *errno_location() = value };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_signal_becomes_a_readable_byte() {
        let mut signals = Signals::new().unwrap();
        assert_eq!(signals.pending(), None);
        // SAFETY: raise sends a signal to this thread; the handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert_eq!(signals.pending(), Some(libc::SIGHUP));
        assert_eq!(signals.pending(), None);
    }
}
