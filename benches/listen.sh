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
# (c), (d) and (e) write the tree and pypx's records; (c) names its files
# uniquely (+uf: the four senders below send the same SOP instance UIDs). Each run starts with
# empty directories. Then four senders at once, each sending the series
# under a study (and series) of its own, 768 instances: (c), (d) and (e)
# again, in instances/s and MB/s. The results go to OUT (a Markdown table)
# and, drawn, to OUT with .svg for .md (benches/listen_report.py).
#
# Usage: benches/listen.sh [--quick]
# --quick (CI): 3 runs of (c) and (e), one sender; fails unless rx-listen
# (e) is faster than storescp with rx-repack (c).
# Environment: RUNS (default 10), BENCH_TMPDIR (where the received files
# go; default /dev/shm, a RAM file system: set it to a directory on a disk
# to measure the disk), OUT (default target/bench/listen.md).
# Needs: hyperfine, DCMTK (storescp, storescu), ./get_examples.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = --quick ] && quick=true
RUNS=${RUNS:-10}
$quick && RUNS=3
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

start a storescp --ignore -aet RX $((port + 1))
mkdir -p "$work/b"
start b storescp -aet RX -od "$work/b" $((port + 2))
mkdir -p "$work/c/in"
start c storescp --fork +uf -aet RX -od "$work/c/in" -xcr \
  "$rx_repack --xcrdir #p --xcrfile #f --datadir $work/c/data --logdir $work/c/log --cleanup" $((port + 3))
start d "$rx_listen" --aet RX --fsync never --datadir "$work/d/data" --logdir "$work/d/log" -v 0 $((port + 4))
start e "$rx_listen" --aet RX --fsync always --datadir "$work/e/data" --logdir "$work/e/log" -v 0 $((port + 5))

expect_placed() { # count: (c), (d) and (e) must each have placed that many
  local name n
  for name in c d e; do
    n=$(find "$work/$name/data" -name '*.dcm' | wc -l)
    [ "$n" -eq "$1" ] || { echo "listen: ($name) placed $n of $1" >&2; exit 1; }
  done
}
clear() { echo "rm -rf $work/$1/data $work/$1/log $work/$1/in/*; sync"; }
all_placed() { # name count: waits until storescp's rx-repacks placed them
  echo "while [ \$(find $work/$1/data -name '*.dcm' 2>/dev/null | wc -l) -lt $2 ]; do sleep 0.005; done"
}

if $quick; then
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/times.json" \
    -n c --prepare "$(clear c)" "$send $((port + 3)) $series && $(all_placed c 192)" \
    -n e --prepare "$(clear e)" "$send $((port + 5)) $series" >&2
  python3 - "$work/times.json" <<'EOF'
import json, sys
median = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
ratio = median["e"] / median["c"]
print(f"rx-listen {median['e']:.3f} s, storescp + rx-repack {median['c']:.3f} s: {ratio:.2f}x (must be < 1)")
sys.exit(0 if ratio < 1 else 1)
EOF
  exit
fi

hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/times.json" \
  -n a --prepare "sync" "$send $((port + 1)) $series" \
  -n b --prepare "rm -rf $work/b/*; sync" "$send $((port + 2)) $series" \
  -n c --prepare "$(clear c)" "$send $((port + 3)) $series && $(all_placed c 192)" \
  -n d --prepare "$(clear d)" "$send $((port + 4)) $series" \
  -n e --prepare "$(clear e)" "$send $((port + 5)) $series" >&2

expect_placed 192

# Four senders at once: the series under four studies of its own.
for i in 1 2 3 4; do
  mkdir -p "$work/studies/$i"
  cp "$series"/*.dcm "$work/studies/$i/"
  dcmodify -nb -q -ma "(0020,000D)=1.2.826.0.1.3680043.8.498.$$.$i" \
    -ma "(0020,000E)=1.2.826.0.1.3680043.8.498.$$.$i.1" "$work/studies/$i"/*.dcm
done
four() { # port: four storescu at once, one study each
  echo "for i in 1 2 3 4; do $send $1 $work/studies/\$i & done; wait"
}
hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/four.json" \
  -n c --prepare "$(clear c)" "$(four $((port + 3))) && $(all_placed c 768)" \
  -n d --prepare "$(clear d)" "$(four $((port + 4)))" \
  -n e --prepare "$(clear e)" "$(four $((port + 5)))" >&2
expect_placed 768
bytes=$(du -sb "$work/studies" | cut -f1)

filesystem=$(df -T "$work" | awk 'NR==2 {print $2}')
python3 benches/listen_report.py "$work/times.json" "$work/four.json" "$bytes" \
  "$filesystem" "${OUT%.md}.svg" >"$OUT"
cat "$OUT"
