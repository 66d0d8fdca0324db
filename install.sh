#!/usr/bin/env bash
# install.sh: build and install vers-tunnel, and set ssh up to use it.
# Run ./install.sh --help for the flags.
# "A && B || die" is meant throughout: die when either A or B fails.
# shellcheck disable=SC2015
if [ -z "${BASH_VERSION:-}" ]; then
    echo "install.sh: run it with bash (./install.sh), not sh" >&2
    exit 2
fi
set -euo pipefail
# A failure inside $(...) fails the assignment too. Bash 4.4 and later; macOS's
# /bin/bash is 3.2, where the assignment still fails when the last command does.
shopt -s inherit_errexit 2>/dev/null || true

readonly NAME=vers-tunnel
readonly START_MARKER="# >>> vers-tunnel >>>"
readonly END_MARKER="# <<< vers-tunnel <<<"

usage() {
    cat <<'EOF'
Usage: ./install.sh [OPTIONS]

Builds vers-tunnel from this checkout (cargo build --release --locked) and installs it
as DIR/vers-tunnel, with its man page and bash, zsh and fish completions under
DIR/../share (DIR/share when DIR does not end in /bin).

Options:
  --prefix DIR          Directory the binary goes in (default: ~/.local/bin, or
                        /usr/local/bin when run as root; on macOS too, where
                        /usr/local/bin needs sudo and ssh finds the binary by
                        the full path the config names)
  --static              Linux only: build a static binary (x86_64-unknown-linux-musl, or
                        aarch64-unknown-linux-musl on an arm64 machine), adding the
                        rustup target when it is missing
  --target TRIPLE       With --static: build for this musl target instead, e.g.
                        aarch64-unknown-linux-musl from an x86_64 machine (needs
                        aarch64-linux-gnu-gcc, Debian package gcc-aarch64-linux-gnu)
  --binary FILE         Install FILE instead of building (e.g. a downloaded macOS
                        binary, or a static one built elsewhere); it must run
                        here: its --version is checked first. With --uninstall:
                        the vers-tunnel that takes the block out of ~/.ssh/config
                        (instead of DIR/vers-tunnel: when that is gone, or older
                        than this script)
  --ssh-config          Add the `vers-tunnel ssh-config` block to ~/.ssh/config between
                        marker comments, at the top (ssh takes the first value it finds);
                        re-running replaces the block, nothing outside the markers changes
                        (the binary does the edit: `vers-tunnel ssh-config --install`)
  --system-ssh-config   Write the block to /etc/ssh/ssh_config.d/vers-tunnel.conf for
                        every user of this machine (root only; for VM images)
  --multiplex           With --ssh-config or --system-ssh-config: let runs to the same VM
                        share one connection (ControlMaster; `ssh -O exit HOST` ends it)
  --persist DURATION    With --multiplex: how long an idle shared connection stays open
                        (ssh's time format: 30s, 10m, 1h30m; default 10m)
  --uninstall           Remove DIR/vers-tunnel, its man page and completions, and the
                        ~/.ssh/config block (and, with --system-ssh-config, the system file)
  -h, --help            Show this help

Environment:
  VERS_TUNNEL_SSH_ETC   For tests: use this directory instead of /etc/ssh (and skip the
                        root check)
  CARGO_TARGET_DIR      Where cargo builds, as usual

Examples:
  ./install.sh --ssh-config                      # laptop: ~/.local/bin + ~/.ssh/config
  ./install.sh --ssh-config --multiplex          # ... with one shared connection per VM
  ./install.sh --static --prefix /usr/local/bin --system-ssh-config   # VM image
  ./install.sh --uninstall
EOF
}

# Progress goes to stderr, like cargo's.
say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
usage_error() {
    printf 'install.sh: %s (see --help)\n' "$*" >&2
    exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---- portability --------------------------------------------------------------
# One script for Linux and macOS: macOS has BSD head, stat, readlink, sed and
# install, and bash 3.2 as /bin/bash, so only what both understand is used.

os=$(uname -s)
readonly os
is_macos() { [ "$os" = Darwin ]; }

# The SHA-256 of $1 in hex: sha256sum on Linux, shasum on macOS.
sha256_of() {
    local sum
    sum=$(sha256sum -- "$1" 2>/dev/null) || sum=$(shasum -a 256 -- "$1" 2>/dev/null) || return 1
    printf '%s\n' "${sum%% *}"
}

# macOS quarantines what a browser downloads, and Gatekeeper will not run a
# quarantined binary that is not notarized; the user chose this file.
clear_quarantine() {
    is_macos && xattr -p com.apple.quarantine "$1" >/dev/null 2>&1 || return 0
    xattr -d com.apple.quarantine "$1" || die "cannot remove macOS's download quarantine from $1"
    say "removed macOS's download quarantine (com.apple.quarantine) from the copy to install"
}

# ---- arguments ----------------------------------------------------------------

prefix=""
static=0
target=""
binary=""
user_config=0
system_config=0
multiplex=0
persist=""
uninstall=0

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) need_value "$@"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --static) static=1; shift ;;
        --target) need_value "$@"; target=$2; shift 2 ;;
        --target=*) target=${1#--target=}; shift ;;
        --binary) need_value "$@"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#--binary=}; shift ;;
        --ssh-config) user_config=1; shift ;;
        --system-ssh-config) system_config=1; shift ;;
        --multiplex) multiplex=1; shift ;;
        --persist) need_value "$@"; persist=$2; shift 2 ;;
        --persist=*) persist=${1#--persist=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
done

[ -z "$target" ] || [ "$static" -eq 1 ] || usage_error "--target needs --static"
[ -z "$binary" ] || [ "$static" -eq 0 ] || usage_error "--binary and --static exclude each other"
[ -z "$persist" ] || [ "$multiplex" -eq 1 ] || usage_error "--persist needs --multiplex"
[ "$multiplex" -eq 0 ] || [ "$uninstall" -eq 1 ] || [ "$user_config" -eq 1 ] || [ "$system_config" -eq 1 ] ||
    usage_error "--multiplex goes with --ssh-config or --system-ssh-config"
if is_macos && [ "$static" -eq 1 ]; then
    usage_error "--static is Linux-only: it builds a static musl binary for Linux, and macOS has no static executables (every program links libSystem); on macOS run it without --static"
fi

if [ -z "$prefix" ]; then
    if is_root; then prefix=/usr/local/bin; else prefix="${HOME:?HOME is not set}/.local/bin"; fi
fi
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
prefix=${prefix%/}
readonly bin="$prefix/$NAME"

# The man page and completions go beside the binary's directory, where man,
# bash-completion, zsh and fish look: ~/.local/bin -> ~/.local/share,
# /usr/local/bin -> /usr/local/share.
if [ "$(basename "$prefix")" = bin ]; then
    share_dir="$(dirname "$prefix")"
    share_dir="${share_dir%/}/share"
else
    share_dir="$prefix/share"
fi
readonly share_dir
# Each generated file, relative to share/ in this checkout and to $share_dir
# (examples/gen_docs makes them).
readonly docs=(
    man/man1/vers-tunnel.1
    bash-completion/completions/vers-tunnel
    zsh/site-functions/_vers-tunnel
    fish/vendor_completions.d/vers-tunnel.fish
)

ssh_etc=${VERS_TUNNEL_SSH_ETC:-/etc/ssh}
readonly ssh_etc
readonly system_file="$ssh_etc/ssh_config.d/$NAME.conf"

# ---- building -----------------------------------------------------------------

repo_dir() { cd "$(dirname "${BASH_SOURCE[0]}")" && pwd; }

host_musl_target() {
    case "$(uname -m)" in
        x86_64 | amd64) echo x86_64-unknown-linux-musl ;;
        aarch64 | arm64) echo aarch64-unknown-linux-musl ;;
        *) die "no static build for $(uname -m); build without --static" ;;
    esac
}

# Makes sure the Rust standard library for $1 is installed, for the toolchain
# this checkout builds with.
ensure_rust_target() {
    local triple=$1 dir sysroot
    dir=$(repo_dir)
    sysroot=$(cd "$dir" && rustc --print sysroot) || die "rustc not found; install Rust (rustup) first"
    [ -d "$sysroot/lib/rustlib/$triple/lib" ] && return 0
    command -v rustup >/dev/null ||
        die "the Rust standard library for $triple is not installed, and there is no rustup to add it; install it for $(rustc --version), or build without --static"
    say "adding the Rust target $triple (rustup target add $triple)"
    (cd "$dir" && rustup target add "$triple") ||
        die "could not add the Rust target $triple (rustup target add $triple failed, see above); install it by hand, or build without --static"
}

# ring compiles C and assembly for the target. Use the target's musl gcc when
# there is one (musl-gcc, from musl-tools, for this machine's architecture),
# else the architecture's GNU gcc: ring's C includes only a few freestanding
# headers (stdint.h, string.h), which glibc's serve as well. For another
# architecture that gcc also links.
setup_c_compiler() {
    local triple=$1 arch host_arch cc_var linker_var candidate cc=""
    arch=${triple%%-*}
    case "$(uname -m)" in
        amd64) host_arch=x86_64 ;;
        arm64) host_arch=aarch64 ;;
        *) host_arch=$(uname -m) ;;
    esac
    cc_var="CC_${triple//-/_}"
    linker_var="CARGO_TARGET_$(printf '%s' "$triple" | tr 'a-z-' 'A-Z_')_LINKER"
    if [ -n "${!cc_var:-}" ]; then
        cc=${!cc_var}
    else
        for candidate in "$arch-linux-musl-gcc" musl-gcc "$arch-linux-gnu-gcc"; do
            if [ "$candidate" = musl-gcc ] && [ "$arch" != "$host_arch" ]; then continue; fi
            if command -v "$candidate" >/dev/null; then
                cc=$candidate
                break
            fi
        done
        if [ -z "$cc" ]; then
            if [ "$arch" = "$host_arch" ]; then
                die "building for $triple needs a C compiler: musl-gcc (Debian: apt-get install musl-tools) or $arch-linux-gnu-gcc"
            fi
            die "building for $triple needs the C cross compiler $arch-linux-gnu-gcc (Debian: apt-get install gcc-$arch-linux-gnu)"
        fi
        export "$cc_var=$cc"
    fi
    if [ "$arch" != "$host_arch" ] && [ -z "${!linker_var:-}" ]; then
        export "$linker_var=$cc"
    fi
    say "compiling ring's C for $triple with $cc"
}

# Builds, and sets artifact to the path of the binary cargo produced.
build() {
    local dir out args=(build --release --locked --bin "$NAME" --message-format=json-render-diagnostics)
    dir=$(repo_dir)
    command -v cargo >/dev/null || die "cargo not found; install Rust (rustup) first, or use --binary FILE"
    if is_macos && ! xcode-select -p >/dev/null 2>&1; then
        die "building on macOS needs Apple's command line tools, for the C compiler and linker: run xcode-select --install, or use --binary FILE"
    fi
    if [ "$static" -eq 1 ]; then
        [ -n "$target" ] || target=$(host_musl_target)
        case "$target" in *-linux-musl*) ;; *) usage_error "--static builds musl targets, not $target" ;; esac
        say "building a static $NAME for $target"
        ensure_rust_target "$target"
        setup_c_compiler "$target"
        args+=(--target "$target")
    else
        say "building $NAME"
    fi
    out=$(cd "$dir" && cargo "${args[@]}") || die "cargo build failed (see above)"
    # cargo reports the binary it built as the artifact with an "executable".
    artifact=$(printf '%s\n' "$out" | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4) || true
    [ -n "$artifact" ] && [ -f "$artifact" ] || die "cargo did not report the binary it built"
}

# Fails unless $1 has no ELF interpreter (no dynamic loader, no libc to match).
check_static() {
    local file=$1
    if ! command -v file >/dev/null; then
        say "note: 'file' is not installed, so the binary was not checked for being static"
        return 0
    fi
    case "$(file -b "$file")" in
        *"dynamically linked"*) die "$file is dynamically linked; the static build went wrong" ;;
    esac
}

# A downloaded binary may lack its x bit, be for another system or CPU, or be
# no binary at all (an error page, which must not run as a shell script): a
# copy of it is checked and tried before anything is installed. Sets artifact
# to that copy.
check_binary() {
    local file=$1 try="$scratch/$NAME" magic version
    [ -f "$file" ] || die "no such file: $file"
    cp -- "$file" "$try" && chmod 0755 "$try" || die "cannot copy $file"
    magic=$(od -An -tx1 -N4 -- "$try" | tr -d ' \n') || magic=""
    case "$magic" in
        7f454c46 | cffaedfe | cafebabe) ;; # ELF, 64-bit Mach-O, universal Mach-O
        *) die "$file is not a program (neither ELF nor Mach-O); it is: $(describe "$file")" ;;
    esac
    clear_quarantine "$try"
    version=$("$try" --version 2>/dev/null | head -n 1) || version=""
    case "$version" in
        "$NAME "*) ;;
        *) die "$file is not a $NAME for this machine ($(uname -sm)): it did not answer --version; it is: $(describe "$file")" ;;
    esac
    artifact=$try
}

# What file(1) says $1 is, if file is installed.
describe() { file -b -- "$1" 2>/dev/null || echo "unknown (file(1) is not installed)"; }

# ---- installing the binary ----------------------------------------------------

install_binary() {
    local src=$1 tmp
    mkdir -p "$prefix" || die "cannot create $prefix"
    # Into a temporary name and then renamed: a running ssh may be using the old one.
    tmp="$prefix/.$NAME.new.$$"
    cp "$src" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$bin" || {
        rm -f "$tmp"
        die "cannot install $bin"
    }
    local version digest
    version=$("$bin" --version 2>/dev/null | head -n 1) || version="it does not run on this machine"
    digest=$(sha256_of "$bin") || digest="unknown"
    say "installed $bin ($version, sha256 $digest)"
    case ":${PATH:-}:" in
        *":$prefix:"*) ;;
        *) say "note: $prefix is not in PATH (the ssh config names the full path, so ssh works anyway)" ;;
    esac
}

# ---- man page and completions -------------------------------------------------

install_docs() {
    local src_dir doc src dest tmp
    src_dir="$(repo_dir)/share"
    for doc in "${docs[@]}"; do
        src="$src_dir/$doc"
        dest="$share_dir/$doc"
        [ -f "$src" ] || die "$src is missing from this checkout (cargo run --example gen_docs makes it)"
        mkdir -p "$(dirname "$dest")" || die "cannot create $(dirname "$dest")"
        tmp="$(dirname "$dest")/.$NAME.new.$$"
        cp "$src" "$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$dest" || {
            rm -f "$tmp"
            die "cannot install $dest"
        }
    done
    say "installed the man page and bash, zsh and fish completions under $share_dir"
    # Debian's zsh looks in /usr/local/share/zsh/site-functions, not in ~/.local/share.
    case "$share_dir" in
        /usr/local/share | /usr/share) ;;
        *) say "note: for zsh, add $share_dir/zsh/site-functions to fpath before compinit" ;;
    esac
}

remove_docs() {
    local doc removed=0
    for doc in "${docs[@]}"; do
        if [ -e "$share_dir/$doc" ]; then
            rm -f -- "$share_dir/$doc" || die "cannot remove $share_dir/$doc"
            removed=1
        fi
    done
    if [ "$removed" -eq 1 ]; then say "removed the man page and completions from $share_dir"; fi
}

# ---- ssh config files ---------------------------------------------------------

# Gives $1 the content of the file $3 through a temporary file in the same
# directory and a rename, keeping $1's mode (and owner, when root) if it exists,
# or giving it mode $2 if not. Returns 1, touching nothing, when nothing changes.
replace_file() {
    local file=$1 mode=$2 content=$3 tmp
    if [ -e "$file" ] && cmp -s "$content" "$file"; then
        return 1
    fi
    tmp=$(mktemp "$(dirname "$file")/.$NAME.XXXXXX") || die "cannot write in $(dirname "$file")"
    if [ -e "$file" ]; then
        cp -p -- "$file" "$tmp" || { rm -f "$tmp"; die "cannot copy $file"; }
    else
        chmod "$mode" "$tmp"
    fi
    cat -- "$content" >"$tmp" && mv -f -- "$tmp" "$file" || {
        rm -f "$tmp"
        die "cannot write $file"
    }
}

# The options of the block, for the installed binary.
block_args() {
    block=(--path "$bin")
    if [ "$multiplex" -eq 1 ]; then block+=(--multiplex); fi
    if [ -n "$persist" ]; then block+=(--persist "$persist"); fi
}

# Runs `$1 ssh-config ...` for the arguments after $2, dying unless it worked:
# with the words $2 when it refuses them (status 2, after its own line).
run_ssh_config() {
    local tool=$1 refused=$2 status=0
    shift 2
    "$tool" ssh-config "$@" || status=$?
    case "$status" in
        0) ;;
        # A failure it explained (markers that are not one block, a file it
        # cannot write): nothing was changed.
        1) exit 1 ;;
        2) die "$refused" ;;
        *) die "$tool ssh-config failed; the ssh config needs a binary that runs on this machine" ;;
    esac
}

# The block `vers-tunnel ssh-config` prints for the installed binary.
ssh_config_text() {
    local block
    block_args
    # A --persist it refuses: its own line says why.
    run_ssh_config "$bin" "no ssh config written" "${block[@]}"
}

# ~/.ssh/config is edited by the binary (`vers-tunnel ssh-config --install`,
# src/ssh/file.rs), so that the rules exist once and hold on every platform:
# the block at the top between markers, every other byte kept, mode kept,
# ~/.ssh created 0700. $1 is the binary to run; the block names $bin.
add_user_config() {
    local block
    block_args
    run_ssh_config "$1" "no ssh config written" --install "${block[@]}"
}

# Takes the block out of ~/.ssh/config with the binary --binary names, or the
# installed one; with neither, says how when there is a block to take out.
remove_user_config() {
    local config="${HOME:?HOME is not set}/.ssh/config"
    # A binary older than this script has no --uninstall.
    local old="has no ssh-config --uninstall (it is older than this install.sh), so nothing was removed: pass --binary FILE with a newer vers-tunnel, or delete the lines from '$START_MARKER' to '$END_MARKER' in $config by hand"
    if [ -n "$binary" ]; then
        check_binary "$binary"
        run_ssh_config "$artifact" "$binary $old" --uninstall
    elif [ -x "$bin" ]; then
        run_ssh_config "$bin" "$bin $old" --uninstall
    elif grep -q -F -e "$START_MARKER" -e "$END_MARKER" -- "$config" 2>/dev/null; then
        die "$config has a vers-tunnel block, and there is no $bin to take it out: pass the --prefix you installed with, or --binary FILE (a vers-tunnel that runs here)"
    else
        say "no vers-tunnel block in $config"
    fi
}

check_system_access() {
    if [ -z "${VERS_TUNNEL_SSH_ETC:-}" ] && ! is_root; then
        die "--system-ssh-config writes $ssh_etc and needs root (run it with sudo)"
    fi
}

add_system_config() {
    local text dir new="$scratch/system.conf"
    check_system_access
    dir=$(dirname "$system_file")
    mkdir -p "$dir" || die "cannot create $dir"
    text=$(ssh_config_text) || exit 1
    printf '%s\n' \
        "# Written by vers-tunnel's install.sh --system-ssh-config; --uninstall --system-ssh-config removes it." \
        "$text" >"$new"
    if replace_file "$system_file" 0644 "$new"; then
        say "wrote $system_file"
    else
        say "$system_file is already up to date"
    fi
    # Debian and Ubuntu include ssh_config.d; some other systems do not.
    if ! grep -qiE "^[[:space:]]*Include[[:space:]].*ssh_config\.d/" "$ssh_etc/ssh_config" 2>/dev/null; then
        say "warning: $ssh_etc/ssh_config does not include $dir/*.conf, so ssh will not read $system_file;"
        say "warning: add this line at the top of $ssh_etc/ssh_config: Include $dir/*.conf"
    fi
}

remove_system_config() {
    check_system_access
    if [ -e "$system_file" ]; then
        rm -f -- "$system_file" || die "cannot remove $system_file"
        say "removed $system_file"
    else
        say "no $system_file"
    fi
}

# ---- main ---------------------------------------------------------------------

scratch=$(mktemp -d "${TMPDIR:-/tmp}/$NAME-install.XXXXXX") || die "cannot create a temporary directory"
trap 'rm -rf -- "$scratch"' EXIT

if [ "$uninstall" -eq 1 ]; then
    # First, while the binary that edits it is still there: markers that are
    # not one block stop the uninstall before anything is removed.
    remove_user_config
    if [ -e "$bin" ]; then
        rm -f -- "$bin" || die "cannot remove $bin"
        say "removed $bin"
    else
        say "no $bin (if you installed elsewhere, pass the same --prefix)"
    fi
    remove_docs
    if [ "$system_config" -eq 1 ]; then remove_system_config; fi
    exit 0
fi

if [ -n "$binary" ]; then
    check_binary "$binary"
else
    build
fi
if [ "$static" -eq 1 ]; then check_static "$artifact"; fi
# Before anything is installed, by the binary about to be: markers that are not
# one block refuse the install with nothing changed.
if [ "$user_config" -eq 1 ]; then add_user_config "$artifact"; fi
install_binary "$artifact"
install_docs
if [ "$system_config" -eq 1 ]; then add_system_config; fi
