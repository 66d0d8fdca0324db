#!/usr/bin/env bash
# One command: benches/multiplex.sh [--runs N]
#
# What ssh connection sharing (`vers-tunnel ssh-config --multiplex`) saves, in one
# run: N sequential `ssh VM true` without and with it, and the deploy recipe
# (`scp` of a small file, then `ssh`) N times each way. The VM is a throwaway
# sshd on [::1], behind a loopback TLS edge (haproxy terminating TLS 1.3 and
# routing on SNI, as benches/compare.sh uses), reached through the release
# vers-tunnel as `ProxyCommand vers-tunnel %h`. Prints a markdown table (also
# written to target/bench/multiplex.md). Loopback only; ports, keys and
# certificates are made at run time and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20
case "${1:-}" in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    "") ;;
    *) echo "usage: benches/multiplex.sh [--runs N]" >&2; exit 2 ;;
esac

need=()
for tool in sshd:openssh-server ssh:openssh-client haproxy:haproxy openssl:openssl python3:python3; do
    PATH="$PATH:/usr/sbin" command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "multiplex: needs ${need[*]}: sudo apt-get install -y ${need[*]}" >&2
        exit 1
    fi
    echo "multiplex: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
echo "multiplex: building (release)" >&2
cargo build --release --quiet --locked --bin vers-tunnel
bin="$(realpath "$target/release/vers-tunnel")"
readonly host=bench.vm.vers.sh

d="$(mktemp -d "${TMPDIR:-/tmp}/vt-mux.XXXXXX")"
pids=()
cleanup() {
    for config in "$d"/plain.conf "$d"/shared.conf; do
        [ -e "$config" ] && ssh -F "$config" -O exit "$host" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])'; }
# Waits until something accepts on [::1]:$1.
wait_port() {
    local port=$1 i
    for ((i = 0; i < 500; i++)); do
        python3 -c "import socket,sys; socket.create_connection(('::1', $port), timeout=1)" 2>/dev/null && return 0
        sleep 0.02
    done
    echo "multiplex: nothing listened on [::1]:$port; sshd and haproxy said:" >&2
    cat "$d/sshd.log" "$d/haproxy.log" >&2
    exit 1
}

# The edge's CA and certificate (ECDSA P-256), as compare.py makes them.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
    -subj "/CN=vers-tunnel bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout "$d/srv.key" -out "$d/srv.csr" -subj "/CN=$host" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$host" >"$d/ext"
openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/srv.pem" -days 2 -extfile "$d/ext" 2>/dev/null
cat "$d/srv.pem" "$d/srv.key" >"$d/edge.pem"

# The VM: sshd on [::1] with its own keys, as tests/tunnel/util/sshd.rs runs it.
user=$(id -un)
ssh-keygen -q -t ed25519 -N "" -f "$d/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$d/id"
[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
sshd_port=$(free_port)
cat >"$d/sshd_config" <<EOF
ListenAddress [::1]:$sshd_port
HostKey $d/host_key
AuthorizedKeysFile $d/id.pub
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
# scp speaks SFTP since OpenSSH 9.0.
Subsystem sftp internal-sftp
# bash sources ~/.bashrc for every command sshd runs (unless SHLVL says it is
# nested), and a developer's may be slow (pyenv init here: ~100 processes, 0.3 s
# a session). That is not the connection's cost and both modes would pay it, so
# the client sends SHLVL=1.
AcceptEnv SHLVL
LogLevel ERROR
EOF
"$(PATH="$PATH:/usr/sbin" command -v sshd)" -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
pids+=($!)

edge_port=$(free_port)
cat >"$d/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend edge
  bind [::1]:$edge_port ssl crt $d/edge.pem
  use_backend vm if { ssl_fc_sni -i $host }
backend vm
  server sshd [::1]:$sshd_port
EOF
haproxy -db -f "$d/haproxy.cfg" >"$d/haproxy.log" 2>&1 &
pids+=($!)
wait_port "$sshd_port"
wait_port "$edge_port"
echo "$host $(cut -d' ' -f1,2 "$d/host_key.pub")" >"$d/known_hosts"

# The client configs: the bench's own lines first (ssh takes the first value of
# each option: key, known_hosts, the block's own ProxyCommand with the edge and CA
# added, and the control socket in the temp dir), then the block vers-tunnel
# ssh-config prints.
write_config() {
    local file=$1 block command
    shift
    block=$("$bin" ssh-config --path "$bin" "$@")
    # The block's ProxyCommand up to its final %h: its flags (--make-ssh-dir
    # with --multiplex) are part of what is measured.
    command=$(printf '%s\n' "$block" | sed -n 's/^ *ProxyCommand \(.*\) %h$/\1/p')
    {
        printf 'Host %s\n' "$host"
        printf '    User %s\n    IdentityFile %s\n    IdentitiesOnly yes\n' "$user" "$d/id"
        printf '    UserKnownHostsFile %s\n    GlobalKnownHostsFile /dev/null\n' "$d/known_hosts"
        printf '    StrictHostKeyChecking yes\n    BatchMode yes\n    SetEnv SHLVL=1\n'
        printf '    ProxyCommand %s --cacert %s --connect-to %%h:443:[::1]:%s %%h\n' "$command" "$d/ca.pem" "$edge_port"
        printf '    ControlPath %s/cm-%%C\n' "$d"
        printf '%s\n' "$block"
    } >"$file"
}
write_config "$d/plain.conf"
write_config "$d/shared.conf" --multiplex
head -c 4096 /dev/urandom >"$d/app.tar.gz"

# Milliseconds since an $EPOCHREALTIME.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sum() { awk '{ s += $1 } END { printf "%.0f\n", s }'; }
run_ssh() { ssh -F "$1" "$host" true </dev/null; }
deploy() {
    scp -q -F "$1" "$d/app.tar.gz" "$host:$d/uploaded.tar.gz" </dev/null &&
        ssh -F "$1" "$host" "cmp -s $d/app.tar.gz $d/uploaded.tar.gz" </dev/null
}
close_master() { ssh -F "$d/shared.conf" -O exit "$host" 2>/dev/null || true; }

# One connection before timing, so neither mode pays for cold caches.
run_ssh "$d/plain.conf"

echo "multiplex: $runs x ssh true, without sharing" >&2
: >"$d/plain.ms"
for ((i = 0; i < runs; i++)); do t=$EPOCHREALTIME; run_ssh "$d/plain.conf"; since "$t" >>"$d/plain.ms"; done
echo "multiplex: $runs x ssh true, with sharing (the first opens the connection)" >&2
close_master
: >"$d/shared.ms"
for ((i = 0; i < runs; i++)); do t=$EPOCHREALTIME; run_ssh "$d/shared.conf"; since "$t" >>"$d/shared.ms"; done
close_master

echo "multiplex: $runs x scp + ssh, without sharing, and with it (each pair from no connection)" >&2
: >"$d/deploy-plain.ms"
: >"$d/deploy-shared.ms"
for ((i = 0; i < runs; i++)); do
    t=$EPOCHREALTIME; deploy "$d/plain.conf"; since "$t" >>"$d/deploy-plain.ms"
    t=$EPOCHREALTIME; deploy "$d/shared.conf"; since "$t" >>"$d/deploy-shared.ms"
    close_master
done

plain_med=$(median <"$d/plain.ms")
shared_med=$(median <"$d/shared.ms")
plain_sum=$(sum <"$d/plain.ms")
shared_sum=$(sum <"$d/shared.ms")
first=$(head -n 1 "$d/shared.ms")
dp=$(median <"$d/deploy-plain.ms")
ds=$(median <"$d/deploy-shared.ms")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

mkdir -p "$target/bench"
{
    echo "Through a loopback haproxy TLS 1.3 edge to sshd on [::1], release vers-tunnel, $runs runs each, one run of benches/multiplex.sh:"
    echo
    echo "| | without sharing | with \`--multiplex\` | ratio |"
    echo "|---|---:|---:|---:|"
    echo "| $runs sequential \`ssh VM true\`, total | ${plain_sum} ms | ${shared_sum} ms | $(ratio "$plain_sum" "$shared_sum")x |"
    echo "| one \`ssh VM true\`, median | ${plain_med} ms | ${shared_med} ms (the first, which connects: ${first} ms) | $(ratio "$plain_med" "$shared_med")x |"
    echo "| \`scp\` 4 KiB then \`ssh\` (deploy), median of $runs, from no connection | ${dp} ms | ${ds} ms | $(ratio "$dp" "$ds")x |"
} | tee "$target/bench/multiplex.md"
