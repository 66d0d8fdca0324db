#!/usr/bin/env bash
# benches/profile.sh up|down [SIZE_MIB]: where vers-tunnel's CPU goes in one bulk
# transfer through the same loopback edge as compare.sh, with perf.
#
# perf attaches to the running client (-p) instead of starting it: a parent
# perf would keep the client's stdout pipe open, and the harness would never
# see EOF. Needs perf (Debian: linux-perf); prints the top symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: benches/profile.sh up|down [SIZE_MIB]}"
size="${2:-512}"
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >&2; }
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
cargo build --profile profiling --quiet --bin vers-tunnel --example plain_relay
out="$target/bench/perf-$dir"
mkdir -p "$out"
rm -f "$out"/*.data
wrap="$out/wrap.sh"
cat >"$wrap" <<WRAP
#!/usr/bin/env bash
exec 3<&0
"$target/profiling/vers-tunnel" "\$@" <&3 3<&- &
pid=\$!
exec 0</dev/null 1>/dev/null 3<&-
perf record -q -F 4000 -g -o "$out/\$pid.data" -p \$pid 2>/dev/null &
wait \$pid
st=\$?
wait
exit \$st
WRAP
chmod +x "$wrap"
python3 benches/compare.py --bin "$wrap" --floor "$target/profiling/examples/plain_relay" \
    --only vers-tunnel --dirs "$dir" --runs 1 --life-runs 0 --rtts 0 --size-mib "$size" >/dev/null
# The largest profile is the bulk transfer (the others are the short TLS probe).
# shellcheck disable=SC2012 # names are "PID.data"
data="$(ls -S "$out"/*.data | head -1)"
echo "profile: $data"
perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | head -25
