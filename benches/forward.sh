#!/usr/bin/env bash
# One command: benches/forward.sh [--size-mib N] [--runs N] [--connections N] [--idle N]
#
# Builds vers-tunnel (release), installs haproxy, socat, stunnel4 and openssl if
# missing, and runs `vers-tunnel forward`, `socat TCP-LISTEN,fork OPENSSL:` and
# stunnel (client = yes) side by side through the same loopback TLS edge
# (haproxy), all verifying the certificate. Prints a markdown report; a copy
# goes to target/bench/forward.md. Loopback only; ports and certificates are
# made at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in haproxy socat stunnel openssl python3; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
need=("${need[@]/#stunnel/stunnel4}")
if ((${#need[@]})); then
    echo "forward: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
echo "forward: building (release)" >&2
cargo build --release --quiet --bin vers-tunnel
mkdir -p "$target/bench"
python3 benches/forward.py --bin "$target/release/vers-tunnel" \
    --out "$target/bench/forward.md" "$@"
