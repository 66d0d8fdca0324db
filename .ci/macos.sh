#!/usr/bin/env bash
# The macOS binaries, built and linted on Linux: release builds for Apple silicon
# and Intel Macs with cargo-zigbuild (Zig compiles ring's C and links against the
# macOS library stubs it carries, so no macOS SDK is needed), a check that each
# is a Mach-O executable a Mac would load, and clippy of every target (library,
# binary, tests, examples) for both. Nothing here runs a binary: there is no
# Mac. .ci/run calls it; it works on any Linux machine with rustup and python3.
#
#   .ci/macos.sh    # -> target/{aarch64,x86_64}-apple-darwin/release/vers-tunnel
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

readonly TARGETS=(aarch64-apple-darwin x86_64-apple-darwin)
# From PyPI, pinned so that a run builds with what the last one did.
readonly TOOLS=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
# The oldest macOS the binaries load on. Unset, Zig 0.17 stamps its own default,
# macOS 15, and every older Mac refuses the binary. 11 is the first release for
# Apple silicon (and Rust's minimum for aarch64-apple-darwin).
export MACOSX_DEPLOYMENT_TARGET=11.0

say() { printf 'macos: [%4d s] %s\n' "$((SECONDS - started))" "$*" >&2; }
die() {
    printf 'macos: error: %s\n' "$*" >&2
    exit 1
}

target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
tools="$target_dir/macos-tools"
venv="$tools/venv"

# ---- tools --------------------------------------------------------------------

# Zig and cargo-zigbuild in a virtualenv under target/ (cargo clean removes it),
# reused while it holds the pinned versions.
install_tools() {
    if [ "$(cat "$tools/installed" 2>/dev/null)" = "${TOOLS[*]}" ]; then
        return 0
    fi
    command -v python3 >/dev/null || die "python3 is needed for Zig from PyPI (Debian: apt-get install python3-venv)"
    say "installing ${TOOLS[*]} into $venv"
    rm -rf -- "$venv" "$tools/installed"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${TOOLS[@]}" ||
        die "pip could not install ${TOOLS[*]}"
    printf '%s\n' "${TOOLS[*]}" >"$tools/installed"
}

install_tools
# This Zig, not one that happens to be on PATH; its wrappers under target/ too.
export CARGO_ZIGBUILD_PYTHON_PATH="$venv/bin/python3"
export CARGO_ZIGBUILD_CACHE_DIR="$tools/cache"
zigbuild() { "$venv/bin/cargo-zigbuild" "$@"; }

missing=()
for triple in "${TARGETS[@]}"; do
    [ -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ] || missing+=("$triple")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "rustup target add ${missing[*]}"
    rustup target add "${missing[@]}" >/dev/null || die "rustup could not add ${missing[*]}"
fi

# ---- build and check ----------------------------------------------------------

# `file` and the Rust check agree that $2 is a Mach-O executable for the CPU $1.
check_binary() {
    local cpu=$1 bin=$2 kind
    kind=$(file -b "$bin") || die "file (Debian package file) could not read $bin"
    case "$kind" in
        "Mach-O 64-bit $cpu executable"*) ;;
        *) die "$bin is not a Mach-O $cpu executable; file says: $kind" ;;
    esac
    cargo run --quiet --locked --example check_macho -- "$cpu" "$MACOSX_DEPLOYMENT_TARGET" "$bin" ||
        die "$bin failed the Mach-O check (see above)"
}

# rustc warns that it cannot find the macOS SDK (there is no xcrun here): Zig's
# stubs of the system libraries stand in for it.
for triple in "${TARGETS[@]}"; do
    say "cargo zigbuild --release --target $triple"
    zigbuild zigbuild --release --locked --target "$triple"
done
for triple in "${TARGETS[@]}"; do
    bin="$target_dir/$triple/release/vers-tunnel"
    case "$triple" in aarch64-*) cpu=arm64 ;; *) cpu=x86_64 ;; esac
    check_binary "$cpu" "$bin"
    say "$bin: $(wc -c <"$bin" | tr -d ' ') bytes, $(file -b "$bin" | cut -d, -f1)"
done

# ---- clippy -------------------------------------------------------------------

# What a contributor on a Mac builds with `cargo test`: the unit tests, the
# integration tests (those that need Linux are compiled out there, and the run
# lists them as one ignored test) and the examples. Zig compiles ring's C for
# the build of the tests' dependencies too.
for triple in "${TARGETS[@]}"; do
    say "cargo clippy --all-targets --target $triple"
    zigbuild clippy --locked --target "$triple" --all-targets -- -D warnings
done

say "done in $((SECONDS - started)) s"
