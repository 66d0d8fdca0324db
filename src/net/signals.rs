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
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use mio::unix::pipe;
use mio::{Interest, Registry, Token};

/// The signals that end a tunnel; ssh sends SIGHUP when it is done with us.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// The pipe's write end, for the handler; -1 while no [`Signals`] is alive.
/// Signal dispositions belong to the process, so one [`Signals`] at a time
/// holds this slot.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// Handlers between reading [`WRITE_END`] and their write: the pipe is not
/// closed while one is, or its descriptor's number, reused by then, would
/// get the byte.
static HANDLERS_WRITING: AtomicUsize = AtomicUsize::new(0);

/// The stop signals, delivered as readable bytes on a pipe.
#[derive(Debug)]
pub struct Signals {
    receiver: pipe::Receiver,
    /// Kept open for the handler, which writes to its descriptor.
    sender: pipe::Sender,
    /// The signals given our handler (an ignored one is left ignored), each
    /// with the action it had before, put back on drop.
    installed: Vec<(libc::c_int, libc::sigaction)>,
}

impl Signals {
    /// Opens the pipe and installs the handler for the stop signals; fails
    /// while another `Signals` is alive in this process.
    pub fn new() -> io::Result<Self> {
        let (sender, receiver) = pipe::new()?;
        if WRITE_END
            .compare_exchange(-1, sender.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the stop signals are already taken by another event loop in this process",
            ));
        }
        let mut signals = Signals {
            receiver,
            sender,
            installed: Vec::new(),
        };
        for signal in STOP_SIGNALS {
            // On failure `signals` drops, which puts back the actions
            // replaced so far and frees WRITE_END.
            if let Some(previous) = install(signal)? {
                signals.installed.push((signal, previous));
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
        // The actions from before us first, so that no handler of ours
        // starts; then no pipe for one that already has; then wait out any
        // that read WRITE_END before that, as the pipe closes after this.
        for (signal, previous) in self.installed.drain(..).rev() {
            // SAFETY: `previous` is the action sigaction reported for this
            // signal, so a valid one to install; the old one is not asked for.
            unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) };
        }
        let ours = WRITE_END.swap(-1, Ordering::SeqCst);
        debug_assert_eq!(ours, self.sender.as_raw_fd(), "one Signals at a time");
        while HANDLERS_WRITING.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}

/// Installs the handler for `signal`, unless the signal is ignored: what
/// started us (`nohup`, a shell running us in the background) meant it to
/// be. The action it replaced, if it was installed.
fn install(signal: libc::c_int) -> io::Result<Option<libc::sigaction>> {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags);
    // with a null new action, sigaction only writes the current one into it.
    let current = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            return Err(io::Error::last_os_error());
        }
        current
    };
    if current.sa_sigaction == libc::SIG_IGN {
        return Ok(None);
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
    Ok(Some(current))
}

/// A handler at work, counted in [`HANDLERS_WRITING`] while it lives.
struct Writing;

impl Writing {
    fn start() -> Writing {
        HANDLERS_WRITING.fetch_add(1, Ordering::SeqCst);
        Writing
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        HANDLERS_WRITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Writes the signal's number to the pipe. Only async-signal-safe calls:
/// lock-free atomics and `write(2)`; errno is put back for the code it
/// interrupted.
extern "C" fn on_signal(signal: libc::c_int) {
    let _writing = Writing::start();
    let fd = WRITE_END.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let saved = errno();
    // Signal numbers fit in a byte; a full pipe already holds a pending stop.
    let byte = signal as u8;
    // SAFETY: writes one byte from a live local to a descriptor that stays
    // open while a handler is counted in HANDLERS_WRITING.
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
    use std::sync::{Mutex, MutexGuard, PoisonError};
    use std::time::{Duration, Instant};

    use super::*;

    /// Signal dispositions are the process's: these tests take turns.
    static PROCESS_SIGNALS: Mutex<()> = Mutex::new(());

    fn turn() -> MutexGuard<'static, ()> {
        PROCESS_SIGNALS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The action `signal` has now.
    fn action_of(signal: libc::c_int) -> libc::sigaction {
        // SAFETY: as in `install`: an all-zero sigaction to be written into.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut current), 0);
            current
        }
    }

    #[test]
    fn a_stop_signal_becomes_a_readable_byte() {
        let _turn = turn();
        let mut signals = Signals::new().unwrap();
        assert_eq!(signals.pending(), None);
        // SAFETY: raise sends a signal to this thread; the handler is installed.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert_eq!(signals.pending(), Some(libc::SIGHUP));
        assert_eq!(signals.pending(), None);
    }

    #[test]
    fn a_second_signals_is_refused_while_the_first_lives() {
        let _turn = turn();
        let first = Signals::new().unwrap();
        let err = Signals::new().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("already taken"), "{err}");
        drop(first);
        Signals::new().expect("a Signals once the first is gone");
    }

    #[test]
    fn drop_puts_back_the_actions_from_before() {
        extern "C" fn before(_: libc::c_int) {}
        let _turn = turn();
        let original = action_of(libc::SIGTERM);
        let mut action = original;
        action.sa_sigaction = before as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `original` with another handler, a valid action.
        let set = unsafe { libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) };
        assert_eq!(set, 0);
        let signals = Signals::new().unwrap();
        let ours = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        assert_eq!(action_of(libc::SIGTERM).sa_sigaction, ours);
        drop(signals);
        let after = action_of(libc::SIGTERM).sa_sigaction;
        // SAFETY: the action SIGTERM had when the test began.
        unsafe { libc::sigaction(libc::SIGTERM, &original, std::ptr::null_mut()) };
        assert_eq!(after, action.sa_sigaction, "not the handler from before");
    }

    #[test]
    fn drop_keeps_the_pipe_open_while_a_handler_is_writing() {
        let _turn = turn();
        let signals = Signals::new().unwrap();
        let write_end = signals.sender.as_raw_fd();
        let handler = Writing::start();
        let dropping = std::thread::spawn(move || drop(signals));
        let deadline = Instant::now() + Duration::from_secs(10);
        while WRITE_END.load(Ordering::SeqCst) != -1 {
            assert!(Instant::now() < deadline, "drop never gave up the pipe");
            std::thread::yield_now();
        }
        // Drop would close the pipe within microseconds of giving up the
        // slot: a while of watching shows it does not.
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_millis(100) {
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let open = unsafe { libc::fcntl(write_end, libc::F_GETFD) } != -1;
            assert!(open, "the write end closed under a running handler");
            assert!(!dropping.is_finished(), "drop returned before the handler");
            std::thread::yield_now();
        }
        drop(handler);
        dropping.join().unwrap();
    }
}
