//! A private directory for one test (or one demo run), removed when dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty `vers-tunnel-NAME-PID-N` in the system's temp dir.
    pub fn new(name: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), name)
    }

    /// A new, empty `vers-tunnel-NAME-PID-N` in `parent` (e.g. cargo's
    /// `CARGO_TARGET_TMPDIR`, for files that must be executable).
    pub fn new_in(parent: &Path, name: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        // Fixed width, so that no directory's path is a prefix of another's:
        // tests find their own processes by the path in their command line.
        let n = COUNT.fetch_add(1, Ordering::SeqCst);
        let path = parent.join(format!("vers-tunnel-{name}-{}-{n:06}", std::process::id()));
        // Left over from a run of a process with the same pid.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `rel` inside the directory.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
