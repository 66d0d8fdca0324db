#!/usr/bin/env bash
# build-shim.sh DIR: builds tests/windows/bcryptprimitives.c with mingw and puts
# bcryptprimitives.dll in DIR, beside the .exe files Wine 8.0 runs there (Rust's
# std imports ProcessPrng from it, and Wine 8.0 has no such DLL).
# Needs x86_64-w64-mingw32-gcc (Debian package gcc-mingw-w64-x86-64).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v x86_64-w64-mingw32-gcc >/dev/null || {
    echo "build-shim.sh: x86_64-w64-mingw32-gcc not found (apt-get install gcc-mingw-w64-x86-64)" >&2
    exit 1
}
mkdir -p "$1"
x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Werror \
    -o "$1/bcryptprimitives.dll" "$here/bcryptprimitives.c" -ladvapi32
