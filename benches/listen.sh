#!/usr/bin/env bash
# Benchmark (issue 14): receiving the SAG-anon series (192 instances, one
# association, DCMTK's storescu on loopback) and filing it, every way:
#
#   (a) storescp --ignore                  the sender's floor: nothing kept
#   (b) storescp writing the files         -od DIR, nothing else
#   (c) storescp --fork -xcr rx-repack     one rx-repack per file, --cleanup;
#                                          timed until all 192 are placed
#   (d) rx-listen --fsync never
#   (e) rx-listen --fsync always           (its default)
#
# (c), (d) and (e) write the tree and pypx's records. Each run starts with
# empty directories. Usage: benches/listen.sh
# Environment: RUNS (default 10), BENCH_TMPDIR (where the received files
# go; default /dev/shm, a RAM file system: set it to a directory on a disk
# to measure the disk), OUT (default target/bench/listen.md).
# Needs: hyperfine, DCMTK (storescp, storescu), ./get_examples.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
OUT=${OUT:-target/bench/listen.md}
for tool in hyperfine storescp storescu; do
  command -v "$tool" >/dev/null || {
    echo "listen: needs hyperfine and DCMTK: apt-get install hyperfine dcmtk" >&2
    exit 2
  }
done

./get_examples.sh examples-data >/dev/null
rx_repack=$(benches/build.sh)
rx_listen=$(dirname "$rx_repack")/rx-listen
series=$PWD/examples-data/SAG-anon

root=${BENCH_TMPDIR:-/dev/shm}
work=$(mktemp -d -p "$root")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$(dirname "$OUT")"
export TCP_NODELAY=1

port=11200
start() { # name command...: runs a server in the background on $port
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  sleep 0.5
}
send="storescu -aec RX +sd 127.0.0.1"
placed="find $work/c/data -name '*.dcm' | wc -l"

start a storescp --ignore -aet RX $((port + 1))
mkdir -p "$work/b"
start b storescp -aet RX -od "$work/b" $((port + 2))
mkdir -p "$work/c/in"
start c storescp --fork -aet RX -od "$work/c/in" -xcr \
  "$rx_repack --xcrdir #p --xcrfile #f --datadir $work/c/data --logdir $work/c/log --cleanup" $((port + 3))
start d "$rx_listen" --aet RX --fsync never --datadir "$work/d/data" --logdir "$work/d/log" -v 0 $((port + 4))
start e "$rx_listen" --aet RX --fsync always --datadir "$work/e/data" --logdir "$work/e/log" -v 0 $((port + 5))

hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/times.json" \
  -n a --prepare "sync" "$send $((port + 1)) $series" \
  -n b --prepare "rm -rf $work/b/*; sync" "$send $((port + 2)) $series" \
  -n c --prepare "rm -rf $work/c/data $work/c/log $work/c/in/*; sync" \
  "$send $((port + 3)) $series && while [ \$($placed) -lt 192 ]; do sleep 0.005; done" \
  -n d --prepare "rm -rf $work/d/data $work/d/log; sync" "$send $((port + 4)) $series" \
  -n e --prepare "rm -rf $work/e/data $work/e/log; sync" "$send $((port + 5)) $series" >&2

for name in c d e; do
  n=$(find "$work/$name/data" -name '*.dcm' | wc -l)
  [ "$n" -eq 192 ] || { echo "listen: ($name) placed $n of 192" >&2; exit 1; }
done

filesystem=$(df -T "$work" | awk 'NR==2 {print $2}')
python3 - "$work/times.json" "$filesystem" >"$OUT" <<'EOF'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
names = {
    "a": "storescp --ignore (the sender's floor)",
    "b": "storescp writing the files",
    "c": "storescp --fork -xcr rx-repack --cleanup (until all placed)",
    "d": "rx-listen --fsync never",
    "e": "rx-listen --fsync always",
}
print(f"storescu sending 192 SAG-anon instances on one association, loopback; files on {sys.argv[2]}.\n")
print("| | receiver | median | runs |")
print("|---|---|---:|---:|")
for key, name in names.items():
    r = results[key]
    print(f"| ({key}) | {name} | {r['median']:.3f} s | {len(r['times'])} |")
median = {k: results[k]["median"] for k in names}
print()
print(f"rx-listen (e) / storescp writing (b): {median['e'] / median['b']:.2f}x; "
      f"(d) / (b): {median['d'] / median['b']:.2f}x; "
      f"(e) / storescp + rx-repack (c): {median['e'] / median['c']:.2f}x")
EOF
cat "$OUT"
