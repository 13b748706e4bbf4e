#!/usr/bin/env bash
# Benchmark (issue 15): "sixteen associations at once, each sending a
# 200 MiB instance: peak RSS at most sixteen times the per-association
# bound." ASSOCIATIONS storescu processes (default 16) each send one
# instance of BIG_SIZE_MIB MiB (default 200; each a different instance of
# one series) to one rx-listen on loopback, all at once; rx-listen's peak
# RSS (VmHWM) is read before it stops, and compared with ASSOCIATIONS
# times PER_ASSOCIATION_MIB (default 4, the bound each association is held
# to: one PDU of at most 128 KiB in dicom-ul's buffer and one decoded, a
# command set of at most 64 KiB, the header read back up to the pixel
# data, and its thread's stack).
#
#   benches/listen_many_big.sh
#   ASSOCIATIONS=4 BIG_SIZE_MIB=32 benches/listen_many_big.sh   # quick
#
# Environment: ASSOCIATIONS, BIG_SIZE_MIB, PER_ASSOCIATION_MIB, BENCH_TMPDIR
# (where the instances and the data dir go, 2 x ASSOCIATIONS x BIG_SIZE_MIB
# in all, deleted at the end; default TMPDIR or /tmp: a disk).
# Exit status: 0 within the bound, 1 over it, 2 on setup errors.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${ASSOCIATIONS:-16}
size_mib=${BIG_SIZE_MIB:-200}
bound_mib=${PER_ASSOCIATION_MIB:-4}
command -v storescu >/dev/null || { echo "listen_many_big: needs DCMTK (storescu): apt-get install dcmtk" >&2; exit 2; }
rx_listen=$(dirname "$(benches/build.sh)")/rx-listen
work=$(mktemp -d -p "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 1 "$n"); do
  mkdir -p "$work/in/$i"
  python3 benches/make_big_instance.py "$work/in/$i/big.dcm" "$size_mib" "$i"
done

port=11298
"$rx_listen" --aet RX --datadir "$work/data" --logdir "$work/log" \
  --max-associations "$n" "127.0.0.1:$port" 2>"$work/listen.log" &
pid=$!
sleep 0.5
idle_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
started=$(date +%s.%N)
senders=()
for i in $(seq 1 "$n"); do
  TCP_NODELAY=1 storescu -aec RX 127.0.0.1 "$port" "$work/in/$i/big.dcm" &
  senders+=($!)
done
failed=0
for s in "${senders[@]}"; do wait "$s" || failed=$((failed + 1)); done
seconds=$(echo "$(date +%s.%N) - $started" | bc)
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid"
pid=
placed=$(find "$work/data" -name '*.dcm' -size +1M | wc -l)
if [ "$failed" -ne 0 ] || [ "$placed" -ne "$n" ]; then
  echo "listen_many_big: $failed senders failed, $placed of $n instances placed" >&2
  cat "$work/listen.log" >&2
  exit 2
fi
limit_kib=$((n * bound_mib * 1024))
echo "listen_many_big: $n associations at once, each a ${size_mib} MiB instance: all placed in ${seconds} s;" \
  "rx-listen peak RSS $((peak_kib / 1024)) MiB ($peak_kib KiB; idle $((idle_kib / 1024)) MiB)," \
  "bound $n x ${bound_mib} MiB = $((limit_kib / 1024)) MiB"
[ "$peak_kib" -le "$limit_kib" ]
