#!/usr/bin/env python3
"""vers-tunnel forward vs socat (TCP-LISTEN,fork -> OPENSSL) vs stunnel (client = yes).

Run it through benches/forward.sh, which builds the release binary and installs
haproxy, socat, stunnel4 and openssl when missing. Everything listens on
127.0.0.1 only, on ports picked at run time; certificates are made at run time
in a temp dir (compare.py's make_certs), and the backend is compare.py's.

Layout, for each forwarder in turn:

    harness --TCP--> forwarder --TLS 1.3--> haproxy --TCP--> backend

Every forwarder verifies the chain against the test CA and the name
bench.vm.vers.sh, and sends it as SNI. haproxy runs twice: one instance
resumes TLS sessions (tickets, its default), the other refuses to
(`no-tls-tickets`, `tune.ssl.cachesize 0`), so each forwarder's CPU per
connection is measured both with and without session resumption.

Measured, for the forwarder's processes only. CPU is user+sys from wait4()
on the forwarder at the end of its life (every thread, and socat's children,
which it reaps), less the median of three lives with just one connection:
- connections per second: connect, receive the backend's one byte, see EOF,
  close; one at a time, and 32 at once;
- CPU (user+sys) per connection, with and without resumption;
- CPU per GiB through one connection, down (backend to client) and up;
- private memory with 1,000 idle connections open (each has echoed a byte):
  anonymous PSS summed over the forwarder's processes, which for one process
  is its RssAnon, and for socat counts the pages a child shares with its
  parent once.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the certificates, the backend, port helpers)

NAME = compare.NAME
MIB = compare.MIB
GIB = compare.GIB
HANG = 120  # seconds any single step may take before the run is called hung


# ---------------------------------------------------------------- /proc

def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def private_memory(pid):
    """Anonymous PSS summed over pid's tree, in bytes."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss_Anon:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def rss_anon(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def settle(pid, deadline=HANG):
    """Waits until pid has no child processes (socat has reaped every
    connection's child), so its cutime holds all their CPU."""
    end = time.monotonic() + deadline
    while len(tree(pid)) > 1:
        if time.monotonic() > end:
            raise SystemExit(f"forward: children of {pid} did not finish")
        time.sleep(0.005)


# ---------------------------------------------------------------- the edge

def start_edges(d, backend_ports):
    """Two haproxy instances, each with a TLS frontend per backend service:
    "resume" (haproxy's defaults: session tickets) and "full" (no tickets, no
    session cache: every handshake is a full one)."""
    fronts, procs = {}, []
    for kind in ("resume", "full"):
        glob = ["global", "  nbthread 1", "  maxconn 3000"]
        bind_extra = ""
        if kind == "full":
            glob.append("  tune.ssl.cachesize 0")
            bind_extra = " no-tls-tickets"
        lines = glob + ["defaults", "  mode tcp", "  timeout connect 5s",
                        "  timeout client 300s", "  timeout server 300s"]
        for svc, bport in backend_ports.items():
            port = compare.free_port()
            fronts[(kind, svc)] = port
            lines += [f"frontend {kind}_{svc}",
                      f"  bind 127.0.0.1:{port} ssl crt {d}/edge.pem{bind_extra}",
                      f"  default_backend b_{svc}",
                      f"backend b_{svc}", f"  server s 127.0.0.1:{bport}"]
        cfg = f"{d}/haproxy-{kind}.cfg"
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(f"{d}/haproxy-{kind}.log", "w")
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", cfg],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log))
    deadline = time.monotonic() + 10
    for port in fronts.values():
        compare.wait_port(port, deadline)
    return procs, fronts


# ---------------------------------------------------------------- forwarders

class Forwarder:
    """A forwarder process listening on 127.0.0.1:port for one edge port."""

    def __init__(self, kind, args, d, edge_port):
        self.kind = kind
        self.port = compare.free_port()
        self.log = open(f"{d}/{kind}-{self.port}.log", "w")
        if kind == "vers-tunnel":
            argv = [args.bin, "forward", "--cacert", f"{d}/ca.pem",
                    "--connect-to", f"{NAME}:443:127.0.0.1:{edge_port}",
                    f"127.0.0.1:{self.port}", f"{NAME}:443"]
        elif kind == "socat":
            # backlog: socat's default is 5, which drops SYNs when 32 connect
            # at once; vers-tunnel (mio) and stunnel listen with a large one.
            argv = ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr,backlog=1024",
                    f"OPENSSL:127.0.0.1:{edge_port},cafile={d}/ca.pem,verify=1,"
                    f"commonname={NAME},snihost={NAME}"]
        elif kind == "stunnel":
            conf = f"{d}/stunnel-{self.port}.conf"
            with open(conf, "w") as f:
                f.write("\n".join([
                    "foreground = yes", "pid =", "debug = 3",
                    "[forward]", "client = yes",
                    f"accept = 127.0.0.1:{self.port}", f"connect = 127.0.0.1:{edge_port}",
                    f"CAfile = {d}/ca.pem", "verifyChain = yes",
                    f"checkHost = {NAME}", f"sni = {NAME}", ""]))
            argv = ["stunnel", conf]
        else:
            raise ValueError(kind)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, env=compare.CLIENT_ENV)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"forward: {kind} exited {self.proc.returncode}; see {self.log.name}")
            if listening(self.port):
                break
            time.sleep(0.01)
        else:
            raise SystemExit(f"forward: {kind} did not listen on 127.0.0.1:{self.port}")

    def settle(self):
        settle(self.proc.pid)

    def stop(self):
        """Stops it; the CPU seconds (user+sys) of its whole life, from
        wait4(): every thread, and every child it reaped (socat's)."""
        self.proc.terminate()
        watchdog = threading.Timer(10, self.proc.kill)
        watchdog.start()
        _, status, ru = os.wait4(self.proc.pid, 0)
        watchdog.cancel()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.log.close()
        return ru.ru_utime + ru.ru_stime


def lifetime(kind, args, d, edge_port, work):
    """Starts a forwarder, runs work(fwd) and stops it once all its
    connections are done: (work's result, the forwarder's CPU seconds)."""
    fwd = Forwarder(kind, args, d, edge_port)
    try:
        result = work(fwd)
        fwd.settle()
    finally:
        used = fwd.stop()
    return result, used


def listening(port):
    """Whether something listens on 127.0.0.1:port, without connecting (a
    probe connection would be forwarded, and counted)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A"
                   for line in list(f)[1:])


KINDS = ("vers-tunnel", "socat", "stunnel")

# The connection measurements: which edge (resuming sessions or not), and
# how many connections at once.
CONNECTION_RUNS = {"resume_1": ("resume", 1), "resume_32": ("resume", 32), "full_1": ("full", 1)}

# What each idle connection has echoed before the memory is read: one byte
# (a login's worth), or 64 KiB (it has done some work, then waits).
IDLE_AFTER = (("1 byte", 1), ("64 KiB", 64 * 1024))


# ---------------------------------------------------------------- clients

def hello(port):
    """One connection's life: connect, the backend's byte, EOF, close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    got = b""
    while True:
        b = s.recv(16)
        if not b:
            break
        got += b
    s.close()
    return got == b"x"


def connections(fwd, count, parallel):
    """The first connection (nothing to resume yet), then `count` more,
    `parallel` at a time: (wall seconds of those, all ok)."""
    ok = hello(fwd.port)
    fwd.settle()
    oks = []
    each = count // parallel

    def worker():
        oks.extend(hello(fwd.port) for _ in range(each))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return wall, ok and all(oks) and len(oks) == each * parallel


def download(fwd, size):
    s = socket.create_connection(("127.0.0.1", fwd.port), timeout=HANG)
    got = 0
    buf = bytearray(1 << 20)
    while True:
        # MSG_TRUNC on TCP discards in the kernel: the harness stays cheap.
        n = s.recv_into(buf, len(buf), socket.MSG_TRUNC)
        if n == 0:
            break
        got += n
    s.close()
    return got == size


def upload(fwd, size, data_fd):
    s = socket.create_connection(("127.0.0.1", fwd.port), timeout=HANG)
    s.settimeout(None)  # os.sendfile needs a blocking socket
    file_size = os.fstat(data_fd).st_size
    left, off = size, 0
    while left:
        n = os.sendfile(s.fileno(), data_fd, off, min(left, file_size - off))
        left -= n
        off = (off + n) % file_size
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        b = s.recv(64)
        if not b:
            break
        answer += b
    s.close()
    return answer == b"OK %d\n" % size


def echo(s, size):
    """`size` bytes through the echo backend ('a's: a 'q' would end it)."""
    s.sendall(b"a" * size)
    got = 0
    while got < size:
        b = s.recv(size - got)
        if not b or b.strip(b"a"):
            return False
        got += len(b)
    return True


def idle_memory(fwd, count, size):
    """Private memory before and with `count` idle connections, each of
    which has echoed `size` bytes: (before, with, rss_anon with, ok)."""
    warm = socket.create_connection(("127.0.0.1", fwd.port), timeout=HANG)
    ok = echo(warm, size)
    warm.close()
    fwd.settle()
    before = private_memory(fwd.proc.pid)
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", fwd.port), timeout=HANG)
        ok &= echo(s, size)
        socks.append(s)
    # Every connection has echoed, so each is set up in the forwarder.
    with_idle = private_memory(fwd.proc.pid)
    anon = rss_anon(fwd.proc.pid)
    for s in socks:
        s.close()
    return before, with_idle, anon, ok


# ---------------------------------------------------------------- main

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="vers-tunnel release binary")
    ap.add_argument("--size-mib", type=int, default=1024, help="bytes per bulk transfer (MiB)")
    ap.add_argument("--runs", type=int, default=3, help="bulk transfers per forwarder and direction")
    ap.add_argument("--connections", type=int, default=960,
                    help="connections per rate and CPU measurement")
    ap.add_argument("--conn-runs", type=int, default=3,
                    help="measurements per forwarder and kind of connection")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for the memory figure")
    ap.add_argument("--only", help="comma-separated forwarders to run (debugging)")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--raw", help="write every measurement here (JSON)")
    args = ap.parse_args()
    size = args.size_mib * MIB
    kinds = args.only.split(",") if args.only else list(KINDS)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    d = tempfile.mkdtemp(prefix="vt-forward-bench-")
    compare.make_certs(d)
    be = subprocess.Popen([sys.executable, compare.__file__, "backend", str(size), d],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    backend_ports = json.loads(be.stdout.readline())
    edges, fronts = start_edges(d, backend_ports)
    data_path = f"{d}/upload.data"
    with open(data_path, "wb") as f:
        f.write(os.urandom(8 * MIB))
    data_fd = os.open(data_path, os.O_RDONLY)
    res = {k: {} for k in kinds}
    failures = []

    def check(kind, what, ok):
        if not ok:
            failures.append(f"{kind} {what}")

    t0 = time.monotonic()
    try:
        # A forwarder's life with one connection: subtracted from every
        # measured life, so what is left is the measured work's.
        for kind in kinds:
            res[kind]["base"] = []
        for _ in range(3):
            for kind in kinds:
                ok, used = lifetime(kind, args, d, fronts[("resume", "hello")],
                                    lambda f: hello(f.port))
                check(kind, "baseline", ok)
                res[kind]["base"].append(used)
        # Connections: the forwarders take turns, so a noisy moment hits all.
        for kind in kinds:
            for key in CONNECTION_RUNS:
                res[kind][key] = []
        for i in range(args.conn_runs):
            for key, (edge, parallel) in CONNECTION_RUNS.items():
                for kind in kinds:
                    (wall, ok), used = lifetime(
                        kind, args, d, fronts[(edge, "hello")],
                        lambda f: connections(f, args.connections, parallel))
                    check(kind, f"connections ({edge} edge, {parallel} at once)", ok)
                    res[kind][key].append({"wall": wall, "cpu": used, "n": args.connections})
            print(f"forward: connection run {i + 1}/{args.conn_runs} done "
                  f"({time.monotonic() - t0:.0f}s)", file=sys.stderr)
        for kind in kinds:
            res[kind]["down"], res[kind]["up"] = [], []
        for i in range(args.runs):
            for kind in kinds:
                ok, used = lifetime(kind, args, d, fronts[("resume", "source")],
                                    lambda f: download(f, size))
                check(kind, "download", ok)
                res[kind]["down"].append(used)
                ok, used = lifetime(kind, args, d, fronts[("resume", "sink")],
                                    lambda f: upload(f, size, data_fd))
                check(kind, "upload", ok)
                res[kind]["up"].append(used)
            print(f"forward: bulk run {i + 1}/{args.runs} done ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
        for label, echoed in IDLE_AFTER:
            for kind in kinds:
                fwd = Forwarder(kind, args, d, fronts[("resume", "echo")])
                try:
                    before, with_idle, anon, ok = idle_memory(fwd, args.idle, echoed)
                finally:
                    fwd.stop()
                check(kind, f"idle connections after {label}", ok)
                res[kind][f"idle_{echoed}"] = {"before": before, "with": with_idle,
                                               "rss_anon": anon, "n": args.idle}
        print(f"forward: all runs done ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    finally:
        for proc in (*edges, be):
            proc.terminate()
            proc.wait()
        os.close(data_fd)
    if not failures:
        shutil.rmtree(d)  # kept when a run fails: the logs are there
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump(res, f, indent=1)
    report = render(args, res, failures, size, d)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")


def render(args, res, failures, size, d):
    per_gib = GIB / size
    m = {}
    for kind, r in res.items():
        row = {}
        base = med(r.get("base", []))
        row["base"] = base * 1e3
        for key in CONNECTION_RUNS:
            xs = r.get(key, [])
            row[f"{key}_rate"] = med([x["n"] / x["wall"] for x in xs])
            row[f"{key}_cpu"] = med([(x["cpu"] - base) / x["n"] * 1e3 for x in xs])
        for dirn in ("down", "up"):
            row[dirn] = med([(c - base) * per_gib for c in r.get(dirn, [])])
        for _, echoed in IDLE_AFTER:
            idle = r.get(f"idle_{echoed}")
            if idle:
                row[f"idle_{echoed}_total"] = idle["with"]
                row[f"idle_{echoed}_per"] = (idle["with"] - idle["before"]) / idle["n"]
            else:
                row[f"idle_{echoed}_total"] = row[f"idle_{echoed}_per"] = float("nan")
        m[kind] = row

    out = []
    out.append(f"Forwarders on 127.0.0.1 to a haproxy TLS 1.3 edge on loopback, all verifying; "
               f"connection figures: median of {args.conn_runs} runs of {args.connections} "
               f"connections (the backend sends one byte and closes); "
               f"{args.size_mib} MiB transfers, median of {args.runs}, "
               f"scaled to 1 GiB; {args.idle} idle connections. Forwarder processes only.")
    out.append("")
    out.append("| forwarder | conn/s, 1 at a time | conn/s, 32 at once | CPU ms/conn resumed "
               "| CPU ms/conn full handshake | CPU s/GiB down | CPU s/GiB up |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for kind, row in m.items():
        out.append(f"| {kind} | {row['resume_1_rate']:.0f} | {row['resume_32_rate']:.0f} "
                   f"| {row['resume_1_cpu']:.2f} | {row['full_1_cpu']:.2f} "
                   f"| {row['down']:.2f} | {row['up']:.2f} |")
    out.append("")
    out.append(f"Private memory with {args.idle} idle connections open (anonymous PSS of the "
               "forwarder's processes), in all and per connection, by what each connection "
               "echoed before going idle:")
    out.append("")
    out.append("| forwarder | " + " | ".join(
        f"after {label}: all | per conn" for label, _ in IDLE_AFTER) + " |")
    out.append("|---|" + "---:|---:|" * len(IDLE_AFTER))
    for kind, row in m.items():
        cells = [f"{row[f'idle_{e}_total'] / MIB:.1f} MiB | {row[f'idle_{e}_per'] / 1024:.1f} KiB"
                 for _, e in IDLE_AFTER]
        out.append(f"| {kind} | " + " | ".join(cells) + " |")
    v, s, st = m.get("vers-tunnel"), m.get("socat"), m.get("stunnel")
    if v and s and st:
        out.append("")
        out.append("Targets (ratios from this run):")
        out.append("")
        out.append("| target | measured | met |")
        out.append("|---|---:|:---:|")

        def t(name, value, ok, fmt="{:.2f}x"):
            out.append(f"| {name} | {fmt.format(value)} | {'yes' if ok else 'NO'} |")

        for key, what in (("resume_1_cpu", "resumed"), ("full_1_cpu", "full handshake")):
            r = v[key] / st[key]
            t(f"CPU per connection ({what}) <= 0.5x stunnel", r, r <= 0.5)
        for dirn in ("down", "up"):
            r = v[dirn] / min(s[dirn], st[dirn])
            t(f"CPU/GiB {dirn} <= socat's and stunnel's (vs the cheaper)", r, r <= 1)
        for label, echoed in IDLE_AFTER:
            per = v[f"idle_{echoed}_per"] / 1024
            t(f"private memory per idle connection <= 64 KiB (after {label})", per, per <= 64,
              "{:.1f} KiB")
    if failures:
        out.append("")
        out.append(f"Runs that failed (logs kept in {d}):")
        out += [f"- {f}" for f in failures]
    return "\n".join(out)


if __name__ == "__main__":
    main()
