#!/usr/bin/env bash
# Where four senders' time goes with --fsync always (issue 23, target 2):
# the CPU each load takes, whose it is, and the context switches.
#
# On DISK (default: the journaled ext4 of benches/loop_disks.sh), RUNS
# rounds (default 5) of: rx-listen --fsync never and always, four
# storescu at once with 96 instances each (384, as benches/listen.sh
# --durable sends them); and the floor with four writers
# (benches/fsync_floor.py --writers 4), with its fsyncs and without.
# For each: the seconds taken and the CPU seconds the whole machine spent
# meanwhile (/proc/stat), split into the senders' (bash's `times` of the
# four storescu), rx-listen's (/proc/PID/stat) and the rest (kernel
# threads: the journal, write-back, the loop device; and anything else
# running), and, for rx-listen's, the context switches per instance
# (/proc/stat's ctxt).
# Medians, as a Markdown table on stdout.
#
# Usage: benches/durable_cpu.sh [DISK]
# Needs: DCMTK (storescu, dcmodify), python3, ./get_examples.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
disk=${1:-/mnt/rx-bench-ext4}
RUNS=${RUNS:-5}
[ -d "$disk" ] || { echo "durable_cpu: no $disk (benches/loop_disks.sh up)" >&2; exit 2; }
./get_examples.sh examples-data >/dev/null
rx_listen=$(dirname "$(benches/build.sh)")/rx-listen
series=$PWD/examples-data/SAG-anon
work=$(mktemp -d -p "$disk")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
benches/make_halves.sh "$series" "$work/halves"
port=11900
for mode in never always; do
  "$rx_listen" --aet RX --fsync $mode --datadir "$work/$mode/data" --logdir "$work/$mode/log" \
    -v 0 $((port + ${#pids[@]})) >"$work/$mode.log" 2>&1 &
  pids+=($!)
done
sleep 0.5
hz=$(getconf CLK_TCK)

machine() { # the machine's busy CPU ticks and context switches so far
  awk '/^cpu / {busy = $2 + $3 + $4 + $7 + $8} /^ctxt/ {ctxt = $2} END {print busy, ctxt}' /proc/stat
}
cpu_ticks() { # pid: its CPU ticks so far (user and system)
  awk '{print $14 + $15}' "/proc/$1/stat"
}
send_four() { # port: the four storescu at once, then their CPU times (bash's `times`)
  bash -c "for i in 1 2 3 4; do storescu -aec RX +sd 127.0.0.1 $1 $work/halves/\$i & done; wait; times"
}
seconds_of_times() { # bash's `times` on stdin ("0m0.12s 0m0.03s", the
  # children's on the last line): their user and system CPU seconds
  tail -n 1 | tr 'ms' '  ' | awk '{print $1 * 60 + $2 + $3 * 60 + $4}'
}
measure() { # name pid|- command...: one run; appends a line to $work/runs
  local name=$1 pid=$2 busy ctxt busy_after ctxt_after started ended out rx=0 rx_before=0
  shift 2
  rm -rf "$work/out" "$work/never/data" "$work/never/log" "$work/always/data" "$work/always/log"
  sync
  sleep "${BENCH_SETTLE:-3}"
  read -r busy ctxt < <(machine)
  [ "$pid" = - ] || rx_before=$(cpu_ticks "$pid")
  started=$(date +%s%N)
  out=$("$@")
  ended=$(date +%s%N)
  [ "$pid" = - ] || rx=$(($(cpu_ticks "$pid") - rx_before))
  read -r busy_after ctxt_after < <(machine)
  # The floor times its writes itself ("N writers, M instances: S s, C
  # CPU s"), without Python's start and its reading of the series.
  case $name in
    rx-*) echo "$name $(((ended - started) / 1000)) $((busy_after - busy)) $(seconds_of_times <<<"$out") $rx $((ctxt_after - ctxt))" ;;
    *) echo "$name $(awk '{print $5 * 1e6, $7 * '"$hz"'}' <<<"$out") 0 0 $((ctxt_after - ctxt))" ;;
  esac >>"$work/runs"
}
for round in $(seq "$RUNS"); do
  measure rx-never "${pids[0]}" send_four $port
  measure rx-always "${pids[1]}" send_four $((port + 1))
  measure floor - python3 benches/fsync_floor.py "$series" "$work/out" --writers 4
  measure floor-no-fsync - python3 benches/fsync_floor.py "$series" "$work/out" --writers 4 --no-fsync
done

python3 - "$work/runs" "$hz" "$disk" "$(df -T "$disk" | awk 'NR==2 {print $2}')" <<'EOF'
import statistics, sys
runs, hz, disk, fs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = {}
for line in open(runs):
    name, us, busy, senders, rx, ctxt = line.split()
    rows.setdefault(name, []).append((float(us) / 1e6, float(busy) / hz, float(senders), float(rx) / hz, int(ctxt)))
print(f"#### {fs} ({disk}): 384 instances, four at once; medians of {len(rows['floor'])} rounds\n")
print("| load | seconds | CPU s, machine | senders | rx-listen | the rest | context switches per instance |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, label in [("rx-never", "rx-listen --fsync never"), ("rx-always", "rx-listen --fsync always"),
                    ("floor", "the floor, 4 writers"), ("floor-no-fsync", "the floor's writes, no fsync")]:
    med = [statistics.median(column) for column in zip(*rows[name])]
    wall, busy, senders, rx, ctxt = med
    own = name.startswith("rx-")
    rest = busy - senders - rx if own else busy
    cells = [f"{wall:.3f}", f"{busy:.2f}", f"{senders:.2f}" if own else "", f"{rx:.2f}" if own else "",
             f"{rest:.2f}" if own else "", f"{ctxt / 384:.0f}" if own else ""]
    print(f"| {label} | " + " | ".join(cells) + " |")
never = [r[1] for r in rows["rx-never"]]
floor_durable = statistics.median(r[1] for r in rows["floor"]) - statistics.median(r[1] for r in rows["floor-no-fsync"])
never_wall = statistics.median(r[0] for r in rows["rx-never"])
bound = (statistics.median(never) + floor_durable) / 2
print(f"\nThe least `always` could take on two cores, were it to add no more CPU than the floor's "
      f"fsyncs do ({floor_durable:.2f} CPU s) and keep both cores busy: {bound:.3f} s, "
      f"{bound / never_wall:.2f}x never.")
EOF
