//! What `/proc` says about a process: whether it still runs, its memory and
//! CPU time, its open descriptors, which processes run a given program, and a
//! listener's accept queue.

use std::path::Path;
use std::time::{Duration, Instant};

use super::deadline::poll_until;

/// Peak resident memory of a running process since its exec, in KiB
/// (`VmHWM`; rusage would count the test process's pages shared before exec).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// Resident anonymous memory of process `pid` (heap, stacks: what it has
/// made for itself, not the binary's pages), in KiB.
pub fn rss_anon_kib(pid: u32) -> u64 {
    status_kib(pid, "RssAnon")
}

/// A `kB` field of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// User plus system CPU time process `pid` has used so far (all its threads).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // "pid (comm) state ppid ...": comm may hold spaces; utime and stime are
    // fields 14 and 15, the 12th and 13th after the parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// How many descriptors process `pid` has open.
pub fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Connections waiting in the accept queue of the IPv4 listener on `port`
/// (for a listening socket, /proc/net/tcp's rx_queue is that count).
pub fn accept_queue(port: u16) -> usize {
    const LISTEN: &str = "0A"; // include/net/tcp_states.h
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .find_map(|line| {
            // "sl local_address rem_address st tx_queue:rx_queue ..."
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = fields.get(3) == Some(&LISTEN);
            if !listening || u16::from_str_radix(local_port, 16).ok()? != port {
                return None;
            }
            let rx = fields.get(4)?.split_once(':')?.1;
            usize::from_str_radix(rx, 16).ok()
        })
        .unwrap_or_else(|| panic!("no IPv4 listener on port {port} in /proc/net/tcp"))
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
