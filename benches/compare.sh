#!/usr/bin/env bash
# One command: benches/compare.sh [--size-mib N] [--runs N] [--life-runs N] [--rtts N]
#
# Builds vers-tunnel (release) and the floor relay, installs haproxy, socat and
# openssl if missing, and runs vers-tunnel, socat and openssl s_client through
# the same loopback TLS edge (haproxy). Prints a markdown report; a copy goes to
# target/bench/compare.md. Loopback only; ports and certificates made at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in haproxy socat openssl python3; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if ((${#need[@]})); then
    echo "compare: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin vers-tunnel --example plain_relay
static=()
musl="$target/x86_64-unknown-linux-musl/release/vers-tunnel"
[[ -x "$musl" ]] && static=(--static-bin "$musl")

mkdir -p "$target/bench"
exec python3 benches/compare.py \
    --bin "$target/release/vers-tunnel" \
    --floor "$target/release/examples/plain_relay" \
    "${static[@]}" --out "$target/bench/compare.md" "$@"
