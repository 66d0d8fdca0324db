//! What a finished [`Run`] must look like: a clean session, a refusal before
//! any byte moved, an unclean end, or a tool that succeeded.

use super::process::Run;

impl Run {
    /// Asserts exit 0 and an empty stderr: what a clean session looks like.
    pub fn assert_clean(&self) {
        assert_eq!(self.code(), 0, "stderr: {}", self.stderr);
        assert_eq!(self.stderr, "", "a clean session must print nothing");
    }

    /// Asserts a failure before any byte was relayed: this exit code, one
    /// stderr line containing `words`, nothing on stdout.
    pub fn assert_failure(&self, code: i32, words: &[&str]) {
        self.assert_one_line(code, words);
        assert!(
            self.stdout.is_empty(),
            "{} bytes reached stdout: {:?}",
            self.stdout.len(),
            String::from_utf8_lossy(&self.stdout[..self.stdout.len().min(80)])
        );
    }

    /// Asserts an established session that ended uncleanly: exit 5 and one
    /// stderr line containing `words`. What it delivered before the end is
    /// the caller's to check.
    pub fn assert_unclean(&self, words: &[&str]) {
        self.assert_one_line(5, words);
    }

    fn assert_one_line(&self, code: i32, words: &[&str]) {
        assert_eq!(self.code(), code, "stderr: {}", self.stderr);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line expected: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("vers-tunnel: "),
            "{:?}",
            self.stderr
        );
        for w in words {
            assert!(self.stderr.contains(w), "{w:?} not in {:?}", self.stderr);
        }
    }

    /// Asserts that `what` (a tool, e.g. `install.sh --static`) exited 0,
    /// showing its output if not.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        );
    }
}
