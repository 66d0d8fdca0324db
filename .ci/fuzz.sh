#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo-fuzz, nightly), each run briefly from its
# seeds: any crash (a panic, a failed property, a sanitizer report) fails the
# run, and libFuzzer prints the input and writes it to fuzz/artifacts/TARGET/.
# Installs cargo-fuzz and the nightly toolchain when missing. .ci/run calls it.
#
# The seed is fixed (FUZZ_SEED, default 1) and the run starts from the
# committed seeds only, so CI repeats the same inputs every time and fails on a
# change of ours, never on what a random run happened to find; FUZZ_SEED=0 asks
# libFuzzer for a random seed, to explore.
#
#   .ci/fuzz.sh                  # every target, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=300 FUZZ_SEED=0 .ci/fuzz.sh x509 json
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
started=$SECONDS
seconds=${FUZZ_SECONDS:-20}
seed=${FUZZ_SEED:-1}

say() { printf 'fuzz: [%4d s] %s\n' "$((SECONDS - started))" "$*" >&2; }

# libFuzzer is C++: ./test.sh installs g++ (its packages list) before this runs.
command -v c++ >/dev/null || { say "error: no C++ compiler (c++) to build libFuzzer: apt-get install g++"; exit 1; }
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Debug assertions on: an arithmetic overflow is a finding too.
say "building the targets"
cargo +nightly fuzz build --debug-assertions

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
    # New inputs go to a fresh corpus (not committed); seeds/ is only read.
    rm -rf "corpus/$target"
    mkdir -p "corpus/$target" "seeds/$target"
    if ! cargo +nightly fuzz run --debug-assertions "$target" "corpus/$target" "seeds/$target" -- \
        -seed="$seed" -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        # The property that failed, then libFuzzer's account of the input.
        grep -E -A 3 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer: (timeout|out-of-memory)' "$log" >&2 || true
        sed -n '/^Failing input:/,$p' "$log" | head -n 40 >&2
        say "$target: FAILED; the input is in fuzz/artifacts/$target/ (see above)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    say "$target: ${seconds}s, ${runs:-?} inputs, no crash"
done
say "every target ran clean"
