//! An edge that can restart: a TCP relay on a chosen address in front of the
//! test edge, which on [`Front::restart`] closes its listener and drops every
//! connection at once, as an edge whose process restarts does, and then
//! listens again on the same address. It counts the connections it accepts,
//! and when the last came, so a test can see where clients went.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A restartable front of the edge at `to`.
pub struct Front {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

struct Shared {
    to: SocketAddr,
    /// Connections being relayed: (id, the client's socket, the edge's).
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
    accepted: AtomicUsize,
    first_accept: Mutex<Option<Instant>>,
    last_accept: Mutex<Option<Instant>>,
}

impl Front {
    /// Listens on `addr` (port 0 picks one) and relays each connection to `to`.
    pub fn start(addr: SocketAddr, to: SocketAddr) -> Front {
        let shared = Arc::new(Shared {
            to,
            live: Mutex::default(),
            next_id: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
            first_accept: Mutex::default(),
            last_accept: Mutex::default(),
        });
        let mut front = Front {
            addr,
            shared,
            acceptor: None,
        };
        front.listen();
        front
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// When the last connection was accepted.
    pub fn last_accept(&self) -> Option<Instant> {
        *self.shared.last_accept.lock().unwrap()
    }

    /// When the first connection was accepted.
    pub fn first_accept(&self) -> Option<Instant> {
        *self.shared.first_accept.lock().unwrap()
    }

    /// Closes the listener, drops every connection (a reset to each client),
    /// stays down for `down`, and listens again on the same address.
    pub fn restart(&mut self, down: Duration) {
        self.go_down();
        // The scenario's downtime, during which connections are refused.
        thread::sleep(down);
        self.come_back();
    }

    /// The first half of a restart: the listener closed, every connection dropped.
    pub fn go_down(&mut self) {
        self.stop_listening();
        for (_, client, edge) in self.shared.live.lock().unwrap().drain(..) {
            let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
            let _ = client.shutdown(Shutdown::Both);
            let _ = edge.shutdown(Shutdown::Both);
        }
    }

    /// The second half: listening again on the same address.
    pub fn come_back(&mut self) {
        self.listen();
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("the front cannot listen on {} again: {e}", self.addr));
        self.addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let shared = Arc::clone(&self.shared);
        let handle = thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let now = Instant::now();
                shared.first_accept.lock().unwrap().get_or_insert(now);
                *shared.last_accept.lock().unwrap() = Some(now);
                let _ = relay(&shared, client);
            }
        });
        self.acceptor = Some((stop, handle));
    }

    fn stop_listening(&mut self) {
        if let Some((stop, handle)) = self.acceptor.take() {
            stop.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which sees `stop` and drops the listener.
            let _ = TcpStream::connect(self.addr);
            let _ = handle.join();
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop_listening();
        for (_, client, edge) in self.shared.live.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = edge.shutdown(Shutdown::Both);
        }
    }
}

/// Relays `client` to a new connection to the edge, byte for byte both ways,
/// half-closes passed on, on two threads; the last to finish forgets it.
fn relay(shared: &Arc<Shared>, client: TcpStream) -> io::Result<()> {
    let edge = TcpStream::connect(shared.to)?;
    client.set_nodelay(true)?;
    edge.set_nodelay(true)?;
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    shared
        .live
        .lock()
        .unwrap()
        .push((id, client.try_clone()?, edge.try_clone()?));
    let left = Arc::new(AtomicUsize::new(2));
    for (from, into) in [(&client, &edge), (&edge, &client)] {
        let (mut from, mut into) = (from.try_clone()?, into.try_clone()?);
        let (shared, left) = (Arc::clone(shared), Arc::clone(&left));
        thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let _ = io::copy(&mut from, &mut into);
                let _ = into.shutdown(Shutdown::Write);
                if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                    shared.live.lock().unwrap().retain(|(n, _, _)| *n != id);
                }
            })?;
    }
    Ok(())
}
