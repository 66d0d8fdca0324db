//! What a running process uses, as `/proc` tells it: CPU time, private
//! memory, open descriptors; and raising this test process's own descriptor
//! limit, for tests that hold hundreds of sockets at once.

use std::time::Duration;

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

/// Resident anonymous memory of process `pid` (heap, stacks: what it has
/// made for itself, not the binary's pages), in KiB.
pub fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .unwrap_or_else(|| panic!("no RssAnon in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many descriptors process `pid` has open.
pub fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Raises this process's soft open-files limit to `want` (or the hard limit).
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a live rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
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
