#!/usr/bin/env python3
"""vers-tunnel vs openssl s_client vs socat through one loopback TLS edge.

Run it through benches/compare.sh, which builds the binaries and installs
haproxy/socat/openssl when missing. Everything listens on 127.0.0.1 only, on
ports picked at run time; certificates are made at run time under a temp dir.

Layout of one run:

    harness --pipe--> client --TLS--> haproxy (TLS 1.3) --TCP--> backend
    harness <-pipe--- client <-TLS--- haproxy           <-TCP--- backend

The backend (a child process running this file with `backend`) has four
services: sink (upload: counts SIZE bytes, answers "OK SIZE", closes), source
(download: sends SIZE bytes, closes), echo (latency; 'q' closes) and hello
(connection life: sends one byte, closes). haproxy has a TLS and a plain
frontend for each; the plain ones are the floor's path.

Only the client process is measured: CPU from wait4()'s rusage (user and sys),
wall from spawn to exit, peak RSS from the client's own VmHWM.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

NAME = "bench.vm.vers.sh"  # SNI and certificate name; never resolved
GIB = 1 << 30
MIB = 1 << 20
CHUNK = 1 << 20
SERVICES = ("sink", "source", "echo", "hello")


# ---------------------------------------------------------------- backend

def backend(size, workdir):
    """Serves the four services on loopback; prints their ports as JSON."""
    data_path = os.path.join(workdir, "download.data")
    with open(data_path, "wb") as f:
        f.write(os.urandom(8 * MIB))
    listeners = {}
    for name in SERVICES:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        listeners[name] = s

    def sink(c):
        buf = bytearray(CHUNK)
        got = 0
        while got < size:
            # MSG_TRUNC on TCP discards in the kernel: the backend stays cheap.
            n = c.recv_into(buf, CHUNK, socket.MSG_TRUNC)
            if n == 0:
                break
            got += n
        c.sendall(b"OK %d\n" % got)

    def source(c):
        with open(data_path, "rb") as f:
            fd = f.fileno()
            left = size
            while left:
                n = os.sendfile(c.fileno(), fd, 0, min(left, 8 * MIB))
                left -= n

    def echo(c):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(65536)
            if b.endswith(b"q"):
                c.sendall(b[:-1])
                return
            if not b:
                return
            c.sendall(b)

    def hello(c):
        c.sendall(b"x")

    def serve(name, s):
        handler = {"sink": sink, "source": source, "echo": echo, "hello": hello}[name]
        while True:
            c, _ = s.accept()

            def run(c=c):
                try:
                    handler(c)
                except OSError:
                    pass
                finally:
                    c.close()

            threading.Thread(target=run, daemon=True).start()

    for name, s in listeners.items():
        threading.Thread(target=serve, args=(name, s), daemon=True).start()
    print(json.dumps({n: s.getsockname()[1] for n, s in listeners.items()}), flush=True)
    sys.stdin.read()  # until the harness goes away


# ---------------------------------------------------------------- setup

def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_certs(d):
    """A CA and a server certificate for NAME signed by it (ECDSA P-256)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
       "-days", "2", "-subj", "/CN=vers-tunnel bench CA",
       "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    sh("openssl", "req", *ec, "-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr",
       "-subj", f"/CN={NAME}")
    with open(f"{d}/ext", "w") as f:
        f.write(f"subjectAltName=DNS:{NAME}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    sh("openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.pem",
       "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/srv.pem", "-days", "2",
       "-extfile", f"{d}/ext")
    with open(f"{d}/edge.pem", "w") as out:
        for part in ("srv.pem", "srv.key"):
            with open(f"{d}/{part}") as f:
                out.write(f.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"compare: haproxy did not listen on 127.0.0.1:{port}")


def start_edge(d, backend_ports):
    """haproxy: a TLS and a plain frontend per backend service."""
    fronts = {}
    lines = [
        "global", "  nbthread 1", "  maxconn 256",
        "defaults", "  mode tcp", "  timeout connect 5s",
        "  timeout client 120s", "  timeout server 120s",
    ]
    for svc, bport in backend_ports.items():
        for kind in ("tls", "plain"):
            port = free_port()
            fronts[(kind, svc)] = port
            ssl = f" ssl crt {d}/edge.pem" if kind == "tls" else ""
            lines += [f"frontend {kind}_{svc}", f"  bind 127.0.0.1:{port}{ssl}",
                      f"  default_backend b_{svc}_{kind}",
                      f"backend b_{svc}_{kind}", f"  server s 127.0.0.1:{bport}"]
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(f"{d}/haproxy.log", "w")
    proc = subprocess.Popen(["haproxy", "-db", "-f", f"{d}/haproxy.cfg"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    for port in fronts.values():
        wait_port(port, deadline)
    return proc, fronts


# ---------------------------------------------------------------- clients

class Client:
    def __init__(self, label, kind, argv):
        self.label = label
        self.kind = kind  # which haproxy frontends it uses: "tls" or "plain"
        self.argv = argv  # function: port -> argv


def vers_tunnel(label, path, ca):
    return Client(label, "tls", lambda p: [path, "--cacert", ca, "--connect-to",
                                          f"{NAME}:443:127.0.0.1:{p}", NAME])


def clients(args, ca):
    variants = [vers_tunnel(v.split("=", 1)[0], v.split("=", 1)[1], ca)
                for v in args.variant]
    return [
        Client("plain relay (floor)", "plain",
               lambda p: [args.floor, f"127.0.0.1:{p}"]),
        vers_tunnel("vers-tunnel", args.bin, ca),
        *variants,
        Client("socat", "tls",
               lambda p: ["socat", "-", f"OPENSSL:127.0.0.1:{p},cafile={ca},verify=1,"
                          f"commonname={NAME},snihost={NAME}"]),
        Client("openssl s_client", "tls",
               lambda p: ["openssl", "s_client", "-connect", f"127.0.0.1:{p}",
                          "-servername", NAME, "-verify_hostname", NAME, "-CAfile", ca,
                          "-verify_return_error", "-quiet"]),
    ]


# Clients run as on a typical desktop: no trust-store overrides (SSL_CERT_FILE
# would make vers-tunnel and openssl load a whole CA bundle at every start).
CLIENT_ENV = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}


class Child:
    """A client process on two pipes; `finish()` waits and returns its usage."""

    def __init__(self, argv):
        in_r, self.stdin = os.pipe()
        self.stdout, out_w = os.pipe()
        devnull = os.open(os.devnull, os.O_WRONLY)
        actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, devnull, 2)]
        self.started = time.perf_counter()
        self.pid = os.posix_spawnp(argv[0], argv, CLIENT_ENV, file_actions=actions)
        for fd in (in_r, out_w, devnull):
            os.close(fd)
        self.hwm = 0
        self.anon = 0
        self.done = False
        self.sampler = threading.Thread(target=self.sample_rss, daemon=True)
        self.sampler.start()

    def sample_rss(self):
        """Peak RSS as VmHWM of the client's own address space, read every ms,
        and the largest private (anonymous: heap, stack) part seen.

        wait4()'s ru_maxrss would be useless here: a process created by fork
        or vfork inherits its parent's (Python's) high-water mark across exec.
        VmHWM also counts the pages of the binary and libc mapped from the
        page cache, which every process running them shares; RssAnon is what
        one more tunnel costs.
        """
        path = f"/proc/{self.pid}/status"
        while not self.done:
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
                        elif line.startswith("RssAnon:"):
                            self.anon = max(self.anon, int(line.split()[1]) * 1024)
                            break
            except OSError:
                return
            time.sleep(0.001)

    def close_stdin(self):
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    def finish(self, timeout=60):
        self.close_stdin()
        # A blocking wait keeps the wall time exact; the timer only breaks a hang.
        watchdog = threading.Timer(timeout, os.kill, (self.pid, signal.SIGKILL))
        watchdog.start()
        _, status, ru = os.wait4(self.pid, 0)
        watchdog.cancel()
        wall = time.perf_counter() - self.started
        self.done = True
        self.sampler.join()
        os.close(self.stdout)
        return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime,
                "rss": self.hwm, "anon": self.anon, "minflt": ru.ru_minflt, "nvcsw": ru.ru_nvcsw,
                "nivcsw": ru.ru_nivcsw, "status": os.waitstatus_to_exitcode(status)}


def read_all(fd):
    out = bytearray()
    while True:
        b = os.read(fd, 65536)
        if not b:
            return bytes(out)
        out += b


def drain(fd):
    """Reads fd to EOF cheaply (splice to /dev/null); returns the byte count."""
    total = 0
    with open(os.devnull, "wb") as null:
        while True:
            n = os.splice(fd, null.fileno(), 16 * MIB)
            if n == 0:
                return total
            total += n


def upload(client, port, size, data_fd):
    c = Child(client.argv(port))
    answer = []
    reader = threading.Thread(target=lambda: answer.append(read_all(c.stdout)))
    reader.start()
    left, off = size, 0
    file_size = os.fstat(data_fd).st_size
    try:
        while left:
            n = os.splice(data_fd, c.stdin, min(left, file_size - off), offset_src=off)
            left -= n
            off = (off + n) % file_size
    except BrokenPipeError:
        pass
    c.close_stdin()
    reader.join()
    r = c.finish()
    r["ok"] = answer and answer[0] == b"OK %d\n" % size
    return r


def download(client, port, size):
    c = Child(client.argv(port))
    got = drain(c.stdout)
    r = c.finish()
    r["ok"] = got == size
    return r


def life(client, port):
    c = Child(client.argv(port))
    got = read_all(c.stdout)
    r = c.finish()
    r["ok"] = got == b"x"
    return r


def round_trips(client, port, count):
    c = Child(client.argv(port))
    os.write(c.stdin, b"a")  # first echo waits for the handshake: not counted
    os.read(c.stdout, 1)
    samples = []
    for _ in range(count):
        t = time.perf_counter_ns()
        os.write(c.stdin, b"a")
        if os.read(c.stdout, 1) != b"a":
            break
        samples.append((time.perf_counter_ns() - t) / 1000)
    os.write(c.stdin, b"q")
    read_all(c.stdout)
    r = c.finish()
    r["ok"] = len(samples) == count
    r["rtts"] = samples
    return r


# ---------------------------------------------------------------- report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def aes_gcm_cost(suite):
    """OpenSSL's AES-GCM speed on 16 KiB records (TLS's size), in CPU s/GiB:
    the best of three 1-second runs, the one least disturbed by other load."""
    bits = "128" if "128" in suite else "256"
    best = float("nan")
    for _ in range(3):
        out = sh("openssl", "speed", "-evp", f"aes-{bits}-gcm", "-bytes", "16384",
                 "-seconds", "1", "-mr").stdout.decode()
        for line in out.splitlines():
            if line.startswith("+F:"):
                cost = GIB / float(line.split(":")[3])
                best = cost if not best <= cost else best
    return f"AES-{bits}-GCM", best


def negotiated_suite(args, ca, port):
    p = subprocess.run([args.bin, "-v", "--cacert", ca, "--connect-to",
                        f"{NAME}:443:127.0.0.1:{port}", NAME],
                       input=b"", capture_output=True, timeout=20, env=CLIENT_ENV)
    for word in p.stderr.decode().split():
        if word.startswith(("TLS13_", "TLS_")):
            return word
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="vers-tunnel release binary")
    ap.add_argument("--floor", required=True, help="plain_relay example binary")
    ap.add_argument("--size-mib", type=int, default=1024, help="bytes per transfer (MiB)")
    ap.add_argument("--runs", type=int, default=3, help="transfers per client and direction")
    ap.add_argument("--life-runs", type=int, default=60, help="connections per client")
    ap.add_argument("--rtts", type=int, default=3000, help="1-byte round trips per client")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                    help="another vers-tunnel build to measure alongside (A/B)")
    ap.add_argument("--dirs", default="up,down", help="bulk directions to run (debugging)")
    ap.add_argument("--only", help="comma-separated client labels to run (debugging)")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--raw", help="write every run's measurements here (JSON)")
    args = ap.parse_args()
    size = args.size_mib * MIB

    d = tempfile.mkdtemp(prefix="vt-bench-")
    make_certs(d)
    ca = f"{d}/ca.pem"
    be = subprocess.Popen([sys.executable, __file__, "backend", str(size), d],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    backend_ports = json.loads(be.stdout.readline())
    edge, fronts = start_edge(d, backend_ports)
    data_path = f"{d}/upload.data"
    with open(data_path, "wb") as f:
        f.write(os.urandom(8 * MIB))
    data_fd = os.open(data_path, os.O_RDONLY)

    try:
        cl = clients(args, ca)
        if args.only:
            keep = args.only.split(",")
            cl = [c for c in cl if c.label in keep]
        res = {c.label: {"up": [], "down": [], "life": [], "rtt": []} for c in cl}
        failures = []

        def record(c, what, r):
            res[c.label][what].append(r)
            if not r["ok"] or r["status"] != 0:
                failures.append(f"{c.label} {what}: exit {r['status']}, data ok: {bool(r['ok'])}")

        t0 = time.monotonic()
        suite = negotiated_suite(args, ca, fronts[("tls", "hello")])
        for i in range(args.runs):
            for c in cl:
                if "up" in args.dirs:
                    record(c, "up", upload(c, fronts[(c.kind, "sink")], size, data_fd))
                if "down" in args.dirs:
                    record(c, "down", download(c, fronts[(c.kind, "source")], size))
            print(f"compare: bulk run {i + 1}/{args.runs} done ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
        for _ in range(args.life_runs):
            for c in cl:
                record(c, "life", life(c, fronts[(c.kind, "hello")]))
        # In rounds, clients interleaved, so a noisy moment hits all of them.
        rounds = 5 if args.rtts >= 5 else 1
        for _ in range(rounds if args.rtts else 0):
            for c in cl:
                record(c, "rtt", round_trips(c, fronts[(c.kind, "echo")], args.rtts // rounds))
        print(f"compare: all runs done ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
        aes_name, aes = aes_gcm_cost(suite)
    finally:
        for proc in (edge, be):
            proc.terminate()
            proc.wait()
        os.close(data_fd)
    shutil.rmtree(d)  # kept when a run fails: haproxy.log is there

    if args.raw:
        with open(args.raw, "w") as f:
            json.dump(res, f, indent=1)
    report = render(args, res, suite, aes_name, aes, failures, size)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")


def render(args, res, suite, aes_name, aes, failures, size):
    per_gib = GIB / size
    m = {}
    for label, r in res.items():
        row = {}
        for dirn in ("up", "down"):
            runs = r[dirn]
            row[f"{dirn}_cpu"] = med([(x["user"] + x["sys"]) * per_gib for x in runs])
            row[f"{dirn}_user"] = med([x["user"] * per_gib for x in runs])
            row[f"{dirn}_sys"] = med([x["sys"] * per_gib for x in runs])
            row[f"{dirn}_wall"] = med([x["wall"] * per_gib for x in runs])
            row[f"{dirn}_rss"] = max([x["rss"] for x in runs], default=float("nan"))
            row[f"{dirn}_anon"] = max([x["anon"] for x in runs], default=float("nan"))
        row["life_wall"] = med([x["wall"] * 1e3 for x in r["life"]])
        row["life_cpu"] = med([(x["user"] + x["sys"]) * 1e3 for x in r["life"]])
        row["life_rss"] = med([x["rss"] for x in r["life"]])
        rtts = [s for x in r["rtt"] for s in x["rtts"]]
        row["rtt_med"] = med(rtts)
        row["rtt_p99"] = pct(rtts, 99)
        m[label] = row

    f2 = lambda x: f"{x:.2f}"
    out = []
    out.append(f"Transfers of {args.size_mib} MiB, median of {args.runs} runs, scaled to 1 GiB; "
               f"connection life median of {args.life_runs}; {args.rtts} round trips each. "
               f"TLS 1.3, {suite}, ECDSA P-256 certificate, haproxy edge on loopback.")
    out.append("")
    out.append("Bulk transfer, client process only (CPU = user+sys seconds per GiB):")
    out.append("")
    out.append("| client | up CPU | up user | up sys | up wall | down CPU | down user | down sys "
               "| down wall | peak RSS up / down | of it private up / down |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    floor = m.get("plain relay (floor)")
    for label, row in m.items():
        out.append(f"| {label} | {f2(row['up_cpu'])} | {f2(row['up_user'])} | {f2(row['up_sys'])} "
                   f"| {f2(row['up_wall'])} | {f2(row['down_cpu'])} | {f2(row['down_user'])} "
                   f"| {f2(row['down_sys'])} | {f2(row['down_wall'])} "
                   f"| {row['up_rss'] / MIB:.1f} / {row['down_rss'] / MIB:.1f} MiB "
                   f"| {row['up_anon'] / MIB:.1f} / {row['down_anon'] / MIB:.1f} MiB |")
    if floor:
        out.append(f"| floor + {aes_name} ({aes:.2f} s/GiB, openssl speed) "
                   f"| {f2(floor['up_cpu'] + aes)} | | | | {f2(floor['down_cpu'] + aes)} | | | | | |")
    out.append("")
    out.append("Connection life (exec, connect, handshake, server's 1 byte, clean close, exit) "
               "and 1-byte round trips through an echo backend:")
    out.append("")
    out.append("| client | life wall ms | life CPU ms | life RSS | RTT median µs | RTT p99 µs |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for label, row in m.items():
        out.append(f"| {label} | {row['life_wall']:.1f} | {row['life_cpu']:.1f} "
                   f"| {row['life_rss'] / MIB:.1f} MiB | {row['rtt_med']:.0f} "
                   f"| {row['rtt_p99']:.0f} |")
    out.append("")
    sizes = [("vers-tunnel", args.bin)]
    sizes += [(v.split("=", 1)[0], v.split("=", 1)[1]) for v in args.variant]
    out.append("Binary sizes (stripped): " + ", ".join(
        f"{label} {os.path.getsize(path) / MIB:.2f} MiB" for label, path in sizes) + ".")

    v, s, o = m.get("vers-tunnel"), m.get("socat"), m.get("openssl s_client")
    if v and s and o and floor:
        out.append("")
        out.append("Targets (ratios from this run):")
        out.append("")
        out.append("| target | measured | met |")
        out.append("|---|---:|:---:|")

        def t(name, value, ok, fmt="{:.2f}x"):
            out.append(f"| {name} | {fmt.format(value)} | {'yes' if ok else 'NO'} |")

        r = v["down_cpu"] / s["down_cpu"]
        t("CPU/GiB down <= 0.6x socat", r, r <= 0.6)
        r = v["down_cpu"] / o["down_cpu"]
        t("CPU/GiB down <= 0.3x openssl", r, r <= 0.3)
        r = v["up_cpu"] / min(s["up_cpu"], o["up_cpu"])
        t("CPU/GiB up < both (vs the cheaper)", r, r < 1)
        for dirn in ("up", "down"):
            r = v[f"{dirn}_user"] / s[f"{dirn}_user"]
            t(f"user CPU/GiB {dirn} <= 0.6x socat", r, r <= 0.6)
        for dirn in ("up", "down"):
            r = v[f"{dirn}_cpu"] / (floor[f"{dirn}_cpu"] + aes)
            t(f"CPU/GiB {dirn} <= 1.3x (floor + AES-GCM)", r, r <= 1.3)
        r = v["life_wall"] / o["life_wall"]
        t("connection life wall <= 0.5x openssl", r, r <= 0.5)
        rss = max(v["up_rss"], v["down_rss"]) / MIB
        t("peak RSS in bulk <= 3 MiB", rss, rss <= 3, "{:.1f} MiB")
        st = m.get("vers-tunnel static")
        if st:
            rss = max(st["up_rss"], st["down_rss"]) / MIB
            t("peak RSS in bulk <= 3 MiB (static binary)", rss, rss <= 3, "{:.1f} MiB")
        r = v["rtt_med"] / s["rtt_med"]
        t("1-byte RTT median <= socat's", r, r <= 1)
    if failures:
        out.append("")
        out.append("Runs that did not end cleanly (exit status or data mismatch):")
        out += [f"- {f}" for f in failures]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "backend":
        backend(int(sys.argv[2]), sys.argv[3])
    else:
        main()
