#!/usr/bin/env python3
"""CPU per wakeup of `vers-tunnel forward` with many idle connections open.

    benches/wakeups.py --bin A [--bin B ...] [--idle N] [--rtts K]

For each binary in turn: a forwarder with --max-connections above N, N idle
connections through it (each has echoed one byte, so its session is relaying
and its handshake done), then one more connection doing K one-byte round
trips. Measured on the forwarder over those round trips only, from
/proc/PID/stat and /proc/PID/status: CPU (utime+stime) and wakeups (voluntary
context switches: each is one wait in epoll that blocked). Then the same K
round trips with no idle connection, for the floor.

    harness --TCP--> forwarder --TLS 1.3--> haproxy --TCP--> echo backend

Everything is on 127.0.0.1, ports picked at run time; certificates are made
at run time (compare.py's make_certs). Each process needs about 2 N
descriptors: the hard open-files limit caps N.
"""

import argparse
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

NAME = compare.NAME
TICK = os.sysconf("SC_CLK_TCK")


def echo_backend():
    """One thread, epoll: echoes every connection (for `backend` mode)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    print(lsock.getsockname()[1], flush=True)
    sel = selectors.EpollSelector()
    sel.register(lsock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is lsock:
                while True:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(c, selectors.EVENT_READ)
            else:
                c = key.fileobj
                try:
                    b = c.recv(65536)
                except OSError:
                    b = b""
                if b:
                    c.sendall(b)
                else:
                    sel.unregister(c)
                    c.close()


def cpu_and_wakeups(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    with open(f"/proc/{pid}/status") as f:
        vol = next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
    return cpu, vol


def round_trips(port, k):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(k):
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise SystemExit("wakeups: the echo went wrong")
    return s


def open_idle(port, n, batch=256):
    """n connections, each having echoed one byte."""
    socks = []
    while len(socks) < n:
        part = [socket.create_connection(("127.0.0.1", port), timeout=120)
                for _ in range(min(batch, n - len(socks)))]
        for s in part:
            s.sendall(b"x")
        for s in part:
            if s.recv(1) != b"x":
                raise SystemExit("wakeups: an idle connection's echo went wrong")
        socks += part
    return socks


def measure(binary, d, edge_port, idle, k):
    port = compare.free_port()
    log = open(f"{d}/fwd-{port}.log", "w")
    proc = subprocess.Popen(
        [binary, "forward", "--cacert", f"{d}/ca.pem", "--max-connections", str(idle + 16),
         "--connect-to", f"{NAME}:443:127.0.0.1:{edge_port}", f"127.0.0.1:{port}", f"{NAME}:443"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=compare.CLIENT_ENV)
    try:
        deadline = time.monotonic() + 10
        while True:
            with open(log.name) as f:
                if "listening on" in f.read():
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"wakeups: {binary} did not start; see {log.name}")
            time.sleep(0.01)
        rows = {}
        for label, n in (("none idle", 0), (f"{idle} idle", idle)):
            socks = open_idle(port, n)
            round_trips(port, 100).close()  # warm
            cpu0, vol0 = cpu_and_wakeups(proc.pid)
            t0 = time.perf_counter()
            round_trips(port, k).close()
            wall = time.perf_counter() - t0
            cpu1, vol1 = cpu_and_wakeups(proc.pid)
            rows[label] = (cpu1 - cpu0, vol1 - vol0, wall)
            for s in socks:
                s.close()
        return rows
    finally:
        proc.terminate()
        proc.wait()
        log.close()


def main():
    if sys.argv[1:2] == ["backend"]:
        return echo_backend()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--idle", type=int, default=9500)
    ap.add_argument("--rtts", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        compare.make_certs(d)
        backend = subprocess.Popen([sys.executable, __file__, "backend"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        edge_port = compare.free_port()
        cfg = f"{d}/haproxy.cfg"
        with open(cfg, "w") as f:
            f.write("\n".join([
                "global", "  nbthread 1", f"  maxconn {args.idle + 200}",
                "defaults", "  mode tcp", "  timeout connect 5s",
                "  timeout client 600s", "  timeout server 600s",
                "frontend tls", f"  bind 127.0.0.1:{edge_port} ssl crt {d}/edge.pem",
                "  default_backend echo",
                "backend echo", f"  server s 127.0.0.1:{backend.stdout.readline().strip()}",
                ""]))
        edge = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdin=subprocess.DEVNULL)
        try:
            compare.wait_port(edge_port, time.monotonic() + 10)
            print(f"| binary | idle connections | CPU per round trip | wakeups per round trip"
                  f" | CPU per wakeup | wall per round trip |")
            print("|---|---|---|---|---|---|")
            for binary in args.bin:
                for label, (cpu, vol, wall) in measure(binary, d, edge_port,
                                                       args.idle, args.rtts).items():
                    per_wake = cpu / vol * 1e6 if vol else float("nan")
                    print(f"| {binary} | {label} | {cpu / args.rtts * 1e6:.0f} µs"
                          f" | {vol / args.rtts:.2f} | {per_wake:.0f} µs"
                          f" | {wall / args.rtts * 1e6:.0f} µs |", flush=True)
        finally:
            edge.terminate()
            backend.terminate()
            edge.wait()
            backend.wait()


if __name__ == "__main__":
    main()
