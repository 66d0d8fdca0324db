//! What `/proc` says about a process: whether it still runs, its peak memory,
//! its open descriptors, and which processes run a given program.

use std::path::Path;
use std::time::{Duration, Instant};

use super::deadline::poll_until;

/// Peak resident memory of a running process since its exec, in KiB
/// (`VmHWM`; rusage would count the test process's pages shared before exec).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// What each open descriptor of process `pid` refers to (`socket:[N]`,
/// `pipe:[N]`, `anon_inode:[eventpoll]`, a path...).
pub fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}

/// How many sockets process `pid` has open.
pub fn sockets_of(pid: u32) -> usize {
    open_files(pid)
        .iter()
        .filter(|f| f.starts_with("socket:"))
        .count()
}

/// Pids of the processes running `exe` whose command line contains `needle`
/// (a test's temp dir path makes that test's processes unique).
pub fn pids_of(exe: &Path, needle: &str) -> Vec<u32> {
    let exe = std::fs::canonicalize(exe).unwrap();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let runs_exe = std::fs::read_link(path.join("exe")).is_ok_and(|p| p == exe);
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        if runs_exe && String::from_utf8_lossy(&cmdline).contains(needle) && running(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is still running: it exists and is not a zombie (an orphan's
/// zombie may wait a while for a reaper, but it has finished).
pub fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) STATE ...": comm may contain spaces and parentheses.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// Waits until `pid` stops running; how long that took, or `None` after `limit`.
pub fn wait_gone(pid: u32, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    poll_until(limit, || (!running(pid)).then(|| started.elapsed()))
}

/// Waits until exactly one process runs `exe` with `needle` in its command line.
pub fn wait_single_pid(exe: &Path, needle: &str, limit: Duration) -> u32 {
    let found = poll_until(limit, || {
        let pids = pids_of(exe, needle);
        match pids[..] {
            [pid] => Some(pid),
            [] => None,
            _ => panic!("expected one {} process, found {pids:?}", exe.display()),
        }
    });
    found.unwrap_or_else(|| panic!("no {} process within {limit:?}", exe.display()))
}
