//! Windows' stop signals: the console's control events (Ctrl-C, Ctrl-Break,
//! the console closing, logoff, shutdown) as wakes of the loop, so that
//! stopping runs the same cleanup as every other ending, as SIGINT and SIGHUP
//! do on Unix (`signals.rs`).
//!
//! Each event is given the number of the signal it stands for, so the exit
//! status is `128 + N` on every platform: Ctrl-C is SIGINT (2, status 130),
//! Ctrl-Break is SIGBREAK as the C runtime numbers it (21, status 149), the
//! console closing is SIGHUP (1, status 129, as Cygwin and MSYS deliver it),
//! logoff and shutdown are SIGTERM (15, status 143).

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
};

use crate::net::poller::{Wake, Woken};

/// The signal number of the first control event not yet taken; 0 for none.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// The loop's waker while a [`Signals`] lives: the handler is the process's,
/// so one [`Signals`] at a time holds this slot.
static WAKE: Mutex<Option<Arc<Wake>>> = Mutex::new(None);

/// The console's control events, delivered as wakes of the loop.
#[derive(Debug)]
pub struct Signals {
    installed: bool,
}

impl Signals {
    /// Takes nothing yet: [`Signals::register`] installs the handler.
    pub fn new() -> io::Result<Self> {
        Ok(Signals { installed: false })
    }

    /// Installs the handler, which wakes the loop through `wake`; fails
    /// while another `Signals` is registered in this process.
    pub fn register(&mut self, wake: &Arc<Wake>) -> io::Result<()> {
        let mut slot = WAKE.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the stop signals are already taken by another event loop in this process",
            ));
        }
        // SAFETY: `on_control` is a handler of the signature the system
        // calls; adding it has no other precondition.
        if unsafe { SetConsoleCtrlHandler(Some(on_control), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        PENDING.store(0, Ordering::SeqCst);
        *slot = Some(Arc::clone(wake));
        self.installed = true;
        Ok(())
    }

    /// The first pending stop, as a signal number, if any.
    pub fn pending(&mut self) -> Option<i32> {
        match PENDING.swap(0, Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        // SAFETY: removes the handler added in `register`.
        unsafe { SetConsoleCtrlHandler(Some(on_control), 0) };
        *WAKE.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The signal a control event stands for, or `None` for an event we leave
/// to the next handler.
fn signal_of(event: u32) -> Option<i32> {
    Some(match event {
        CTRL_C_EVENT => 2,
        CTRL_BREAK_EVENT => 21,
        CTRL_CLOSE_EVENT => 1,
        CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => 15,
        _ => return None,
    })
}

/// Runs on a thread the system starts for the event: notes the stop and
/// wakes the loop. For the console closing, logoff and shutdown the system
/// ends the process once this returns (or after a few seconds): this waits
/// instead, so that the loop ends it with its own status first.
unsafe extern "system" fn on_control(event: u32) -> BOOL {
    let Some(signal) = signal_of(event) else {
        return 0;
    };
    let wake = WAKE.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let Some(wake) = wake else {
        return 0;
    };
    let _ = PENDING.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    if wake.wake(Woken::Stop).is_err() {
        return 0;
    }
    if event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT {
        loop {
            std::thread::park();
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_control_event_is_the_signal_unix_would_send() {
        assert_eq!(signal_of(CTRL_C_EVENT), Some(2), "Ctrl-C: SIGINT, 130");
        assert_eq!(signal_of(CTRL_BREAK_EVENT), Some(21), "Ctrl-Break: 149");
        assert_eq!(signal_of(CTRL_CLOSE_EVENT), Some(1), "closing: SIGHUP, 129");
        assert_eq!(signal_of(CTRL_SHUTDOWN_EVENT), Some(15), "SIGTERM, 143");
        assert_eq!(signal_of(3), None);
    }
}
