#!/usr/bin/env bash
# What exact durability's system calls cost beside the floor, with no
# receiver (docs/durability.md, one sender): on DIR, a directory of the
# disk to measure, ROUNDS rounds (default 5) of benches/fsync_floor.py
# with and without its fsyncs and benches/filing_calls.py's filing
# variants, each on a fresh directory, in that order; then each one's
# median and, against the floor's commit (the floor less its writes),
# what the filing's syncs cost: exact (as rx-listen makes them) and
# with a write-ahead log (not built).
# Usage: benches/filing_calls.sh DIR [ROUNDS]   Needs: ./get_examples.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 rounds=${2:-5}
series=examples-data/SAG-anon
[ -d "$series" ] || { echo "filing_calls.sh: no $series: run ./get_examples.sh examples-data" >&2; exit 1; }
work=$(mktemp -d -p "$dir" filing-calls.XXXXXX)
trap 'rm -rf "$work"' EXIT
for ((round = 1; round <= rounds; round++)); do
  for variant in floor floor-unsynced filing-unsynced filing filing-logged; do
    out=$work/$variant.$round
    case $variant in
      floor) printf 'floor '; python3 benches/fsync_floor.py "$series" "$out" ;;
      floor-unsynced) printf 'floor-unsynced '; python3 benches/fsync_floor.py "$series" "$out" --no-fsync ;;
      *) python3 benches/filing_calls.py "$series" "$out" "$variant" ;;
    esac
    rm -rf "$out"
    sync
    sleep 1
  done
done | python3 -c '
import statistics, sys
times = {}
for line in sys.stdin:
    # "floor the floor: 0.118 s" or "filing: 0.164 s": the variant first.
    variant, seconds = line.split()[0].rstrip(":"), float(line.split()[-2])
    times.setdefault(variant, []).append(seconds)
median = {v: statistics.median(t) for v, t in times.items()}
for variant, seconds in median.items():
    print(f"{variant}: {seconds:.3f} s (of {len(times[variant])}: " + ", ".join(f"{t:.3f}" for t in times[variant]) + ")")
commit = median["floor"] - median["floor-unsynced"]
for variant, what in (("filing", "exact"), ("filing-logged", "with a write-ahead log")):
    cost = median[variant] - median["filing-unsynced"]
    print(f"syncs of a filing, {what}: {cost / commit:.2f}x the commit of the floor")
'
