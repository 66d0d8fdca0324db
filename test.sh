#!/usr/bin/env bash
# test.sh: the whole test suite, from a fresh Debian machine with Rust.
#
#   ./test.sh                      # every test (cargo test --locked)
#   ./test.sh --test tunnel ssh::  # arguments go on to cargo test
#
# The tests drive real programs (sshd, ssh, rsync, openssl, man...), so first it
# makes sure their Debian packages are installed: as root it installs what is
# missing with apt-get; otherwise it stops and prints the apt-get line to run.
# It adds the Rust targets the static-build tests compile for, then runs
# cargo test. .ci/run calls it too, so CI runs exactly this.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "test.sh: run it with bash (./test.sh), not sh" >&2
    exit 2
fi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# The Debian packages the tests use; a test whose program is missing fails,
# naming its package. Add one here when a test starts using a new program.
packages=(
    openssh-server openssh-client # sshd, ssh, scp, sftp, ssh-keygen: tests/tunnel/{ssh,session,multiplex}.rs
    rsync                         # rsync -e ssh
    tmux                          # the interactive ssh session
    openssl                       # s_client side-by-side; the TLS 1.0/1.1 server of the fault tests
    socat haproxy                 # haproxy: a real edge for the doctor tests and benches/; socat: benches/
    tinyproxy                     # the real HTTP proxy of tests/tunnel/proxy.rs and forward.rs
    squid                         # the most common corporate proxy: half-close through it, tests/tunnel/proxy.rs
    file                          # tests/ship.rs: is the static binary static
    iproute2                      # ss: the keepalive timer
    util-linux                    # unshare: private mount namespaces for the static binaries; setpriv
    passwd                        # useradd, userdel: the fresh account of tests/tunnel/multiplex.rs
    musl-tools                    # musl-gcc for the x86_64 static build
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross # the arm64 static build
    qemu-user                     # runs the arm64 binary
    postgresql                    # a real PostgreSQL server and psql behind forward (tests/tunnel/forward_clients.rs)
    curl python3                  # curl and Python's http.server through forward
    man-db                        # man -l renders the man page
    python3-venv                  # the virtualenv .ci/macos.sh puts Zig into (CI's next step)
    g++                           # libFuzzer, which .ci/fuzz.sh builds (C++, after the tests)
    bash-completion zsh fish      # each shell loads the installed completions
    gcc-mingw-w64-x86-64 wine64   # vers-tunnel.exe built here and run under Wine 8 (tests/tunnel/windows.rs, tests/ship/windows.rs)
    ca-certificates               # the host roots Wine's certificate store holds (tests/ship/windows.rs)
)
# The Rust standard libraries the static-build tests (tests/ship.rs) and the
# Windows build (tests/tunnel/windows.rs, tests/ship/windows.rs) compile for.
rust_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu)

say() { printf 'test.sh: %s\n' "$*" >&2; }

missing=()
if command -v dpkg-query >/dev/null; then
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
else
    say "not a Debian system (no dpkg-query): the tests need the programs of these Debian packages: ${packages[*]}"
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "the tests need these packages, which are not installed: ${missing[*]}"
        say "install them, then run ./test.sh again:"
        printf '    sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { say "cargo not found; install Rust (rustup) first"; exit 1; }
# The target's standard library in this toolchain, checked as install.sh does
# (`rustup target list --installed` can miss a target that is there).
sysroot=$(rustc --print sysroot)
for t in "${rust_targets[@]}"; do
    [ -d "$sysroot/lib/rustlib/$t/lib" ] && continue
    command -v rustup >/dev/null || {
        say "the Rust standard library for $t is not installed, and there is no rustup to add it"
        exit 1
    }
    say "adding the Rust target $t"
    rustup target add "$t"
done

if [ "$(id -u)" -ne 0 ]; then
    say "note: not root, so the tests that need private network and mount namespaces will fail"
fi
say "cargo test --locked $*"
exec cargo test --locked "$@"
