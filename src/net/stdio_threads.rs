//! stdin and stdout where the poller cannot watch them (Windows: mio polls
//! sockets there, not pipes or consoles): a thread each, blocking on its
//! handle, handing bytes to the loop through a bounded queue and waking it
//! through the poller's shared [`Wake`].
//!
//! Win32-OpenSSH gives a ProxyCommand overlapped named pipes; std reads and
//! writes them synchronously (waiting out `STATUS_PENDING`), and reports a
//! closed writer (`ERROR_BROKEN_PIPE`) as EOF. One thread per handle, so no
//! two operations are ever in flight on one.
//!
//! Back-pressure holds both ways: the reader thread reads no more than its
//! queue has room for, and stops while the queue is full; `write` takes no
//! more than the writer thread's queue has room for. A side whose queue
//! stops it says `WouldBlock` and asks for a wake, which comes when that
//! changes; as with the poller's edge-triggered events, one per `WouldBlock`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::net::poller::{Wake, Woken};
use crate::relay::buffer::BUDGET;

/// The most bytes each queue holds (including, for stdout, those being written).
pub(crate) const QUEUE: usize = BUDGET;

/// A queue and its condition, shared by the loop and one thread.
#[derive(Debug)]
struct Shared<S> {
    state: Mutex<S>,
    changed: Condvar,
}

impl<S: Default + Send + 'static> Shared<S> {
    /// A fresh state, and a thread named `name` running `work` on it.
    fn spawn(name: &str, work: impl FnOnce(&Self) + Send + 'static) -> io::Result<Arc<Self>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(S::default()),
            changed: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        thread::Builder::new()
            .name(name.into())
            .spawn(move || work(&theirs))?;
        Ok(shared)
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, S>) -> MutexGuard<'a, S> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the reader thread has for the loop.
#[derive(Debug, Default)]
struct Incoming {
    bytes: VecDeque<u8>,
    /// The source's end: `Ok` for EOF, else how reading failed (told once).
    end: Option<io::Result<()>>,
    /// The loop found nothing and waits for a wake.
    waiting: bool,
    /// The loop is gone: the thread stops once it is not inside a read.
    abandoned: bool,
}

/// The loop's side of a source read by a thread of its own.
#[derive(Debug)]
pub(crate) struct ThreadReader {
    shared: Arc<Shared<Incoming>>,
}

impl ThreadReader {
    /// Starts a thread that reads `source` and wakes the loop as `who`.
    pub(crate) fn start<R: Read + Send + 'static>(
        name: &str,
        source: R,
        wake: Arc<Wake>,
        who: Woken,
    ) -> io::Result<ThreadReader> {
        let shared = Shared::spawn(name, move |shared| read_into(source, shared, &wake, who))?;
        Ok(ThreadReader { shared })
    }

    /// What the thread read; `Ok(0)` at the source's end; `WouldBlock`
    /// until a wake when nothing is there yet.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if !state.bytes.is_empty() {
            let n = state.bytes.read(buf)?;
            // The thread may be waiting for room.
            self.shared.changed.notify_one();
            return Ok(n);
        }
        match state.end.take() {
            None => {
                state.waiting = true;
                Err(io::ErrorKind::WouldBlock.into())
            }
            Some(end) => {
                state.end = Some(Ok(()));
                end.map(|()| 0)
            }
        }
    }
}

impl Drop for ThreadReader {
    fn drop(&mut self) {
        self.shared.lock().abandoned = true;
        self.shared.changed.notify_one();
    }
}

/// The reader thread: reads while the queue has room, until the end.
fn read_into(mut source: impl Read, shared: &Shared<Incoming>, wake: &Wake, who: Woken) {
    let mut chunk = vec![0; QUEUE];
    loop {
        let room = {
            let mut state = shared.lock();
            while state.bytes.len() >= QUEUE && !state.abandoned {
                state = shared.wait(state);
            }
            if state.abandoned {
                return;
            }
            QUEUE - state.bytes.len()
        };
        let read = source.read(&mut chunk[..room]);
        let mut state = shared.lock();
        match read {
            Ok(0) => state.end = Some(Ok(())),
            Ok(n) => state.bytes.extend(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => state.end = Some(Err(e)),
        }
        let over = state.end.is_some();
        if std::mem::take(&mut state.waiting) {
            drop(state);
            let _ = wake.wake(who);
        }
        if over {
            return;
        }
    }
}

/// What the loop has for the writer thread.
#[derive(Debug, Default)]
struct Outgoing {
    /// Bytes to write; the front ones may be being written.
    bytes: VecDeque<u8>,
    /// No more bytes come: close the sink once these are written.
    closing: bool,
    /// Writing failed: the bytes are dropped and the sink closed.
    failed: Option<io::Error>,
    /// Whether the failure was seen by the loop (in `write` or readiness).
    failure_told: bool,
    /// The loop waits for a wake: for room, or for the queue to empty.
    waiting: bool,
    /// The loop is gone: write what is queued, close the sink, stop.
    abandoned: bool,
}

/// The loop's side of a sink written by a thread of its own.
#[derive(Debug)]
pub(crate) struct ThreadWriter {
    shared: Arc<Shared<Outgoing>>,
}

impl ThreadWriter {
    /// Starts a thread that writes to `sink` (and drops it, closing it, once
    /// told to) and wakes the loop as `who`.
    pub(crate) fn start<W: Write + Send + 'static>(
        name: &str,
        sink: W,
        wake: Arc<Wake>,
        who: Woken,
    ) -> io::Result<ThreadWriter> {
        let shared = Shared::spawn(name, move |shared| write_from(sink, shared, &wake, who))?;
        Ok(ThreadWriter { shared })
    }

    /// Queues as much of `buf` as there is room for; `WouldBlock` until a
    /// wake when the queue is full; the thread's failure once it has failed.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if let Some(e) = state.failed.take() {
            state.failure_told = true;
            return Err(e);
        }
        if state.failure_told || state.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(QUEUE - state.bytes.len());
        if n == 0 && !buf.is_empty() {
            state.waiting = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        state.bytes.extend(&buf[..n]);
        self.shared.changed.notify_one();
        Ok(n)
    }

    /// Ends the writing: the thread writes what is queued, then closes the sink.
    pub(crate) fn close(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_one();
    }

    /// Whether the thread has failed (the reader is gone, most often).
    pub(crate) fn failed(&self) -> bool {
        let state = self.shared.lock();
        state.failed.is_some() || state.failure_told
    }

    /// Whether every byte queued has been written (or can never be); if not,
    /// a wake comes when it has.
    pub(crate) fn drained(&self) -> bool {
        let mut state = self.shared.lock();
        let drained = state.bytes.is_empty() || state.failed.is_some() || state.failure_told;
        if !drained {
            state.waiting = true;
        }
        drained
    }
}

impl Drop for ThreadWriter {
    fn drop(&mut self) {
        self.shared.lock().abandoned = true;
        self.shared.changed.notify_one();
    }
}

/// The writer thread: writes what is queued until told to close, or until
/// writing fails; then drops the sink.
fn write_from(mut sink: impl Write, shared: &Shared<Outgoing>, wake: &Wake, who: Woken) {
    let mut chunk = Vec::with_capacity(QUEUE);
    loop {
        {
            let mut state = shared.lock();
            while state.bytes.is_empty() && !state.closing && !state.abandoned {
                state = shared.wait(state);
            }
            if state.bytes.is_empty() {
                break;
            }
            let (front, back) = state.bytes.as_slices();
            chunk.clear();
            chunk.extend_from_slice(front);
            chunk.extend_from_slice(back);
        }
        let written = match sink.write(&chunk) {
            Ok(0) => Err(io::ErrorKind::WriteZero.into()),
            other => other,
        };
        let mut state = shared.lock();
        match written {
            Ok(n) => drop(state.bytes.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                state.bytes.clear();
                state.failed = Some(e);
                state.waiting = false;
                drop(state);
                // Told at once, as a poller tells a pipe's reader leaving: a
                // silent server must not keep us waiting for a write to fail.
                let _ = wake.wake(who);
                return;
            }
        }
        if std::mem::take(&mut state.waiting) {
            drop(state);
            let _ = wake.wake(who);
        }
    }
    drop(sink);
    let mut state = shared.lock();
    if std::mem::take(&mut state.waiting) {
        drop(state);
        let _ = wake.wake(who);
    }
}

/// The process's stdin, read by a thread, and its stdout, written by one;
/// and whether stdin is a console.
#[cfg(windows)]
pub(crate) fn standard(wake: &Arc<Wake>) -> io::Result<(ThreadReader, ThreadWriter, bool)> {
    use std::io::IsTerminal;
    use std::os::windows::io::AsRawHandle;
    let terminal = io::stdin().is_terminal();
    let stdin = standard::Stdin::new(io::stdin().as_raw_handle());
    let stdout = standard::Stdout::new(io::stdout().as_raw_handle());
    let reader = ThreadReader::start("stdin", stdin, Arc::clone(wake), Woken::Stdin)?;
    let writer = ThreadWriter::start("stdout", stdout, Arc::clone(wake), Woken::Stdout)?;
    log::debug!("stdin and stdout: a thread each");
    Ok((reader, writer, terminal))
}

#[cfg(windows)]
mod standard {
    //! The standard handles as the threads' source and sink.

    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::mem::ManuallyDrop;
    use std::os::windows::io::{FromRawHandle, RawHandle};

    use windows_sys::Win32::System::Console::{SetStdHandle, STD_OUTPUT_HANDLE};

    /// stdin, read with std's handle I/O; never closed (its handle is the
    /// process's to keep). No handle reads as empty, as std's stdin does.
    pub(super) struct Stdin(Option<ManuallyDrop<File>>);

    impl Stdin {
        pub(super) fn new(handle: RawHandle) -> Stdin {
            // SAFETY: the process's stdin handle, open for the life of the
            // process; ManuallyDrop keeps the File from closing it.
            Stdin(
                (!handle.is_null())
                    .then(|| ManuallyDrop::new(unsafe { File::from_raw_handle(handle) })),
            )
        }
    }

    impl Read for Stdin {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match &mut self.0 {
                Some(file) => file.read(buf),
                None => Ok(0),
            }
        }
    }

    /// stdout, written with std's handle I/O, and closed on drop so that its
    /// reader sees EOF. No handle swallows what is written, as std's stdout does.
    pub(super) struct Stdout(Option<File>);

    impl Stdout {
        pub(super) fn new(handle: RawHandle) -> Stdout {
            // SAFETY: the process's stdout handle, open until this closes it.
            Stdout((!handle.is_null()).then(|| unsafe { File::from_raw_handle(handle) }))
        }
    }

    impl Write for Stdout {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match &mut self.0 {
                Some(file) => file.write(buf),
                None => Ok(buf.len()),
            }
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Stdout {
        fn drop(&mut self) {
            if let Some(file) = self.0.take() {
                // No one finds the handle's value as stdout once it is closed
                // (it could be a new handle's by then): std's stdout then
                // swallows what is written, as on a closed stdout.
                // SAFETY: sets the process's stdout handle to none.
                unsafe { SetStdHandle(STD_OUTPUT_HANDLE, std::ptr::null_mut()) };
                drop(file);
            }
        }
    }
}

// Over Unix sockets, which fail a write at once when the reader has gone,
// as a pipe does.
#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use mio::{Events, Poll, Token, Waker};

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);

    /// A poll and a wake on it, as the poller has.
    /// The test keeps the `Arc` for as long as it polls, as the poller does:
    /// a thread that wakes and ends drops its copy, and the last one closes
    /// the waker, taking its event with it.
    fn poll() -> (Poll, Arc<Wake>) {
        let poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(1)).unwrap();
        (poll, Arc::new(Wake::for_tests(waker)))
    }

    /// Waits (up to the deadline) for a wake on `poll`.
    fn woken(poll: &mut Poll) -> bool {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(DEADLINE)).unwrap();
        !events.is_empty()
    }

    /// A source of endless bytes that counts what it gave.
    struct Counting(Arc<AtomicUsize>);

    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'x');
            self.0.fetch_add(buf.len(), Ordering::SeqCst);
            Ok(buf.len())
        }
    }

    fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done() {
            assert!(Instant::now() < deadline, "{what} did not happen in time");
            thread::yield_now();
        }
    }

    #[test]
    fn the_reader_thread_reads_no_more_than_its_queue_holds_until_the_loop_takes_some() {
        let (_poll, wake) = poll();
        let given = Arc::new(AtomicUsize::new(0));
        let source = Counting(Arc::clone(&given));
        let mut reader = ThreadReader::start("t", source, Arc::clone(&wake), Woken::Stdin).unwrap();
        until("a full queue", || given.load(Ordering::SeqCst) == QUEUE);
        let mut buf = vec![0; 1000];
        assert_eq!(reader.read(&mut buf).unwrap(), 1000);
        until("a refill", || given.load(Ordering::SeqCst) == QUEUE + 1000);
        // The thread now waits for room again: what it took is what was
        // taken out plus one queue, however long we look.
        for _ in 0..1000 {
            assert_eq!(given.load(Ordering::SeqCst), QUEUE + 1000);
            thread::yield_now();
        }
    }

    #[test]
    fn the_reader_says_would_block_then_wakes_the_loop_with_the_bytes_and_the_end() {
        let (mut poll, wake) = poll();
        let (rx, mut tx) = UnixStream::pair().unwrap();
        let mut reader = ThreadReader::start("t", rx, Arc::clone(&wake), Woken::Stdin).unwrap();
        let mut buf = [0; 16];
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        tx.write_all(b"hello").unwrap();
        assert!(woken(&mut poll), "no wake for the bytes");
        let mut got = Vec::new();
        until("the bytes", || {
            if let Ok(n) = reader.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            got == b"hello"
        });
        drop(tx);
        until("the end", || matches!(reader.read(&mut buf), Ok(0)));
    }

    #[test]
    fn the_writer_takes_no_more_than_its_queue_while_the_reader_reads_nothing() {
        let (mut poll, wake) = poll();
        let (mut rx, tx) = UnixStream::pair().unwrap();
        let mut writer = ThreadWriter::start("t", tx, Arc::clone(&wake), Woken::Stdout).unwrap();
        let data: Vec<u8> = (0..8 * QUEUE).map(|i| i as u8).collect();
        let mut queued = 0;
        // Until the pipe and the queue are both full: the pipe holds what the
        // system gives it, the queue QUEUE.
        while queued < data.len() {
            match writer.write(&data[queued..]) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            queued < data.len(),
            "everything was taken: no back-pressure"
        );
        let reading = thread::spawn(move || {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        assert!(woken(&mut poll), "no wake when room came");
        let mut closed = false;
        while !closed {
            match writer.write(&data[queued..]) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => assert!(woken(&mut poll)),
                Err(e) => panic!("{e}"),
            }
            if queued == data.len() {
                writer.close();
                closed = true;
            }
        }
        assert_eq!(reading.join().unwrap(), data, "bytes lost or reordered");
        assert!(writer.drained());
    }

    #[test]
    fn the_writer_wakes_the_loop_when_its_reader_is_gone() {
        let (mut poll, wake) = poll();
        let (rx, tx) = UnixStream::pair().unwrap();
        drop(rx);
        let mut writer = ThreadWriter::start("t", tx, Arc::clone(&wake), Woken::Stdout).unwrap();
        writer.write(b"lost").unwrap();
        assert!(woken(&mut poll), "no wake for the failure");
        assert!(writer.failed());
        let err = writer.write(b"more").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
