//! Test support for the tunnel crate: backends behind the shared test edge
//! (tests/common), network faults, and for the end-to-end tests a real sshd
//! behind the edge and a tmux terminal; and one test's world (a temp dir and
//! a CA) with the tunnel commands that use it.

pub mod account;
pub mod backend;
// Linux only: Debian's wine64.
#[cfg(target_os = "linux")]
pub mod exe;
// Shared with tests/ship and the demo; each uses only part of it.
#[allow(dead_code)]
#[path = "../../common/mod.rs"]
pub mod common;
pub mod forward;
pub mod front;
pub mod http;
pub mod net;
pub mod postgres;
pub mod proxy;
pub mod pty;
pub mod session;
pub mod sshd;
pub mod tmux;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use backend::Behaviour;
pub use common::clean_env;
pub use common::deadline::*;
pub use common::edge::{Edge, EdgeBuilder, Mode};
pub use common::pki::{self, Ca};
#[cfg(target_os = "linux")]
pub use common::private_etc::with_etc;
pub use common::process::*;
#[cfg(target_os = "linux")]
pub use common::procfs::*;
pub use common::slack::slack;
pub use common::sys::*;
pub use common::tempdir::TempDir;

/// The VM name the tests connect to.
pub const HOST: &str = "x.vm.vers.sh";

/// A mebibyte, for payload sizes.
pub const MIB: usize = 1024 * 1024;

/// Held shared by tests that assert wall-clock bounds (timeouts, prompt
/// exits) and exclusively by the load test, so that it cannot starve them on a
/// two-core machine.
static MACHINE: RwLock<()> = RwLock::new(());

/// For a test whose assertions include how long something took.
pub fn timed() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(PoisonError::into_inner)
}

/// For a test that loads the whole machine.
pub fn whole_machine() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(PoisonError::into_inner)
}

/// The binary under test: `VERS_TUNNEL_TEST_BIN` when set, to run the same
/// tests against a prototype (examples/unbuffered_relay.rs).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("VERS_TUNNEL_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_vers-tunnel").to_string())
    })
}

/// One test's world: a temp dir and a CA whose PEM lives in it.
pub struct World {
    pub dir: TempDir,
    pub ca: Ca,
}

impl World {
    pub fn new() -> World {
        let dir = TempDir::new("test");
        let ca = Ca::new(dir.path(), "test-ca");
        World { dir, ca }
    }

    /// An edge with a valid certificate for `host`, forwarding to `behaviour`.
    pub fn edge(&self, host: &str, behaviour: Behaviour) -> Edge {
        self.edge_builder(host, behaviour).start()
    }

    /// [`World::edge`], not started yet: to set a [`Mode`] or other options.
    pub fn edge_builder(&self, host: &str, behaviour: Behaviour) -> EdgeBuilder {
        EdgeBuilder::new(self.ca.leaf(&[host])).backend(backend::start(behaviour))
    }

    /// Runs the tunnel for `host` against an echoing edge serving `leaf`, with
    /// input that must not arrive when the certificate is refused.
    pub fn run_against(&self, leaf: pki::Leaf, host: &str) -> (Run, Edge) {
        let edge = EdgeBuilder::new(leaf)
            .backend(backend::start(Behaviour::Echo))
            .start();
        let run = run(&mut self.tunnel(edge.addr(), host), b"secret\n");
        (run, edge)
    }

    /// `vers-tunnel --connect-to host:443:ADDR:PORT host --cacert CA`, with a
    /// clean environment.
    pub fn tunnel(&self, edge_addr: SocketAddr, host: &str) -> Command {
        self.tunnel_run_by(bare_tunnel(), edge_addr, host)
    }

    /// [`World::tunnel`] run by `cmd` (Wine running the Windows binary).
    pub fn tunnel_run_by(&self, cmd: Command, edge_addr: SocketAddr, host: &str) -> Command {
        let mut cmd = to_edge(cmd, edge_addr, host);
        cmd.arg("--cacert").arg(&self.ca.pem_path);
        cmd
    }
}

/// `vers-tunnel --connect-to host:443:ADDR:PORT host`: trusting only the
/// built-in roots (and whatever the test adds), with a clean environment.
pub fn tunnel_without_ca(edge_addr: SocketAddr, host: &str) -> Command {
    to_edge(bare_tunnel(), edge_addr, host)
}

/// `cmd --connect-to host:443:ADDR:PORT host`: a tunnel to the edge at
/// `edge_addr`, run by `cmd` (the binary, or Wine running the Windows one).
pub fn to_edge(mut cmd: Command, edge_addr: SocketAddr, host: &str) -> Command {
    cmd.arg("--connect-to")
        .arg(connect_to(host, edge_addr))
        .arg(host);
    cmd
}

/// `host:443:ADDR:PORT` for `--connect-to`.
pub fn connect_to(host: &str, addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{host}:443:{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("{host}:443:[{}]:{}", a.ip(), a.port()),
    }
}

/// The binary with no inherited trust or logging settings.
pub fn bare_tunnel() -> Command {
    let mut cmd = Command::new(bin());
    clean_env(&mut cmd);
    cmd
}

/// SHA-256 of `data`, as lowercase hex.
pub fn sha256(data: &[u8]) -> String {
    digest_hex(ring::digest::digest(&ring::digest::SHA256, data))
}

/// A digest as lowercase hex.
pub fn digest_hex(d: ring::digest::Digest) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fast deterministic byte generator (splitmix64) for payloads.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let z = self.next_u64();
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `len` bytes from `seed`.
    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        Prng::new(seed).fill(&mut out);
        out
    }
}
