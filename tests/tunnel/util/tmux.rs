//! A terminal for interactive sessions: a private tmux server (its own socket
//! in the test's directory) running one command in one pane, with keys typed
//! in and the screen read back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::deadline::poll_until;
use super::common::process::{Exit, HANG};
use super::sshd::{check, require};

/// One tmux server with one pane; the server is killed when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a `cols` x `rows` pane. The
    /// pane stays on screen after the command exits, so its last words and
    /// exit status can be read.
    pub fn start(dir: &Path, command: &str, cols: u16, rows: u16) -> Tmux {
        require("tmux", "tmux");
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set -g remain-on-exit on\nset -g status off\n").unwrap();
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        check(
            tmux.command()
                .arg("-f")
                .arg(&conf)
                .args(["new-session", "-d", "-x", &cols.to_string()])
                .args(["-y", &rows.to_string(), command]),
        );
        tmux
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // A test run inside tmux must not talk to the user's server.
        cmd.env_remove("TMUX").arg("-S").arg(&self.socket);
        cmd
    }

    /// Types `keys` (tmux key names, e.g. "Enter", "C-u"; -l for literal text).
    pub fn send(&self, args: &[&str]) {
        check(self.command().arg("send-keys").args(["-t", "0"]).args(args));
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.send(&["-l", text]);
    }

    /// The visible screen, trailing blank lines dropped.
    pub fn screen(&self) -> String {
        let out = check(self.command().args(["capture-pane", "-p", "-t", "0"]));
        String::from_utf8_lossy(&out).trim_end().to_string()
    }

    /// Polls the screen until `pred` holds; the screen then, or a panic
    /// showing the screen after `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        poll_until(limit, || {
            screen = self.screen();
            pred(&screen).then(|| screen.clone())
        })
        .unwrap_or_else(|| panic!("waited {limit:?} for {what}; the screen shows:\n{screen}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let kill = self
            .command()
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(child) = kill {
            let exit = Exit::watch(child);
            if exit.within(HANG).is_none() {
                exit.kill();
            }
        }
    }
}
