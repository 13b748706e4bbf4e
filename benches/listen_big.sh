#!/usr/bin/env bash
# Benchmark (issue 14): "A 1 GiB instance is received with a peak RSS under
# 64 MiB." storescu sends one instance of BIG_SIZE_MIB MiB (default 1024) to
# rx-listen on loopback; its peak RSS (VmHWM) is read before it stops.
#
#   benches/listen_big.sh                    # 1 GiB
#   BIG_SIZE_MIB=64 benches/listen_big.sh    # quick
#
# Environment: BIG_SIZE_MIB, RSS_LIMIT_MIB (default 64), BENCH_TMPDIR (where
# the instance and the data dir go; default TMPDIR or /tmp: a disk).
# Exit status: 0 under the limit, 1 over it, 2 on setup errors.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${BIG_SIZE_MIB:-1024}
limit_mib=${RSS_LIMIT_MIB:-64}
command -v storescu >/dev/null || { echo "listen_big: needs DCMTK (storescu)" >&2; exit 2; }
rx_listen=$(dirname "$(benches/build.sh)")/rx-listen
work=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}")
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/in"
python3 benches/make_big_instance.py "$work/in/big.dcm" "$size_mib"

"$rx_listen" --aet RX --datadir "$work/data" --logdir "$work/log" 127.0.0.1:11299 2>"$work/listen.log" &
pid=$!
sleep 0.5
started=$(date +%s.%N)
TCP_NODELAY=1 storescu -aec RX 127.0.0.1 11299 "$work/in/big.dcm"
seconds=$(echo "$(date +%s.%N) - $started" | bc)
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid"
placed=$(find "$work/data" -name '*.dcm' -size +1M | wc -l)
[ "$placed" -eq 1 ] || { echo "listen_big: the instance was not placed" >&2; cat "$work/listen.log" >&2; exit 2; }
echo "listen_big: ${size_mib} MiB instance received and filed in ${seconds} s; rx-listen peak RSS $((peak_kib / 1024)) MiB (limit ${limit_mib} MiB)"
[ "$peak_kib" -lt $((limit_mib * 1024)) ]
