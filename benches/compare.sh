#!/usr/bin/env bash
# One command: benches/compare.sh [--with-aws-lc] [--size-mib N] [--runs N] [--life-runs N] [--rtts N]
#
# Builds vers-tunnel (release, and static musl when that target is installed)
# and the floor relay, installs haproxy, socat and openssl if missing, and runs
# vers-tunnel, socat and openssl s_client through the same loopback TLS edge
# (haproxy). Prints a markdown report; a copy goes to target/bench/compare.md.
# --with-aws-lc also builds vers-tunnel with rustls's aws-lc-rs provider (from
# a patched copy of the crate: the product itself only has ring) and measures
# it alongside. Loopback only; ports and certificates are made at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

with_aws_lc=false
if [[ "${1:-}" == --with-aws-lc ]]; then
    with_aws_lc=true
    shift
fi

need=()
for tool in haproxy socat openssl python3; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
musl=x86_64-unknown-linux-musl
want_static=false
# The target's standard library in this toolchain, as install.sh checks it
# (`rustup target list --installed` can miss a target that is there).
if [ -d "$(rustc --print sysroot)/lib/rustlib/$musl/lib" ]; then
    want_static=true
    command -v musl-gcc >/dev/null || need+=(musl-tools)
fi
if ((${#need[@]})); then
    echo "compare: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

target="${CARGO_TARGET_DIR:-target}"
echo "compare: building (release)" >&2
cargo build --release --quiet --bin vers-tunnel --example plain_relay
extra=()
if $want_static; then
    echo "compare: building (static, $musl)" >&2
    cargo build --release --quiet --bin vers-tunnel --target "$musl"
    bin="$target/$musl/release/vers-tunnel"
    extra=(--variant "vers-tunnel static=$bin")
else
    echo "compare: no $musl target installed; skipping the static binary" >&2
fi

if $with_aws_lc; then
    echo "compare: building the aws-lc-rs variant (first time: a few minutes)" >&2
    copy="$(mktemp -d)"
    trap 'rm -rf "$copy"' EXIT
    cp -r Cargo.toml Cargo.lock build.rs src examples "$copy/"
    sed -i 's/features = \["ring", /features = ["aws_lc_rs", /' "$copy/Cargo.toml"
    sed -i -e 's/rustls::crypto::ring::default_provider()/rustls::crypto::aws_lc_rs::default_provider()/' \
        -e 's/CRYPTO_PROVIDER: &str = "ring"/CRYPTO_PROVIDER: \&str = "aws-lc-rs"/' "$copy/src/tls.rs"
    if ! grep -q aws_lc_rs "$copy/Cargo.toml" || ! grep -q aws_lc_rs "$copy/src/tls.rs" ||
        ! grep -q '"aws-lc-rs"' "$copy/src/tls.rs"; then
        echo "compare: could not switch the copy to aws-lc-rs (Cargo.toml or src/tls.rs changed)" >&2
        exit 1
    fi
    aws_target="$(realpath -m "$target")/aws-lc"
    (cd "$copy" && CARGO_TARGET_DIR="$aws_target" cargo build --release --quiet --bin vers-tunnel)
    extra+=(--variant "vers-tunnel aws-lc-rs=$aws_target/release/vers-tunnel")
fi

mkdir -p "$target/bench"
python3 benches/compare.py \
    --bin "$target/release/vers-tunnel" \
    --floor "$target/release/examples/plain_relay" \
    "${extra[@]}" --out "$target/bench/compare.md" "$@"
