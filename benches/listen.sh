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
#   (f) (e) with series events             --exec-on-series (a hook that
#                                          counts the series' files) and
#                                          --events-ndjson: the hook must
#                                          not slow receiving (<= 1.05x (e))
#
# (c), (d) and (e) write the tree and pypx's records; (c) names its files
# uniquely (+uf: the four senders below send the same SOP instance UIDs).
# The runs go in rounds, each contender once per round in an order rotated
# each round: this machine drifts (a contender's median moved by 1.8x
# between two blocks of runs), and a drift then hits every contender
# alike. Each run starts with empty directories: the last run's files are
# moved aside, and deleted after each round (then the suite waits for
# BENCH_SETTLE seconds, 6 unless the files are on tmpfs): ext4 without a
# journal (this machine's disk) skips inodes freed in the last 5 s, so
# deleting right before a run made each new file's inode a scan.
# Then four senders at once, each sending the series
# under a study (and series) of its own, 768 instances: (c), (d) and (e)
# again, and (f), in instances/s and MB/s. The results go to OUT (a Markdown table)
# and, drawn, to OUT with .svg for .md (benches/listen_report.py).
#
# Usage: benches/listen.sh [--quick | --events | --chris | --durable | --metrics]
# --quick (CI): 3 runs of (c) and (e), one sender; fails unless rx-listen
# (e) is faster than storescp with rx-repack (c).
# --events: (e) and (f) alone, one sender then four, RUNS rounds each:
# what series events with a hook cost receiving (target <= 1.05x).
# --chris: (g) rx-listen --layout chris and (h) the same registering with
# CUBE on a Redis broker and publishing LONK progress on NATS (both
# started here: redis-server, nats-server), one sender then four: what
# ChRIS's sinks cost receiving (target <= 1.05x).
# --durable (issue 23): on each disk of DISKS, rx-listen --fsync never
# and always against the disk's floor (benches/fsync_floor.py: the same
# bytes, one fsync per instance, and without the fsync) and the receivers
# a user would pick instead: storescp writing files, pynetdicom's
# storescp, dicom-rs's storescp --non-blocking (built once into
# examples-data/dicom-storescp), Orthanc with SyncStorageArea false and
# true (restarted empty before each run). One sender with the series,
# then four at once with 96 instances each (384) under studies of their
# own. DISKS defaults to /dev/shm and the journaled ext4 and XFS loop
# mounts that benches/loop_disks.sh makes. Report: target/bench/durable.md
# and .svg (benches/durable_report.py).
# --metrics (issue 24): (e) against (m), the same with --metrics on and
# scraped every second (curl), one sender then four: what the metrics
# cost receiving (target <= 1.02x).
# Environment: RUNS (rounds after a warm-up one; default 10), BENCH_TMPDIR (where the received files
# go; default /dev/shm, a RAM file system: set it to a directory on a disk
# to measure the disk), OUT (default target/bench/listen.md).
# Needs: hyperfine, DCMTK (storescp, storescu), ./get_examples.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false events=false chris=false durable=false metrics=false
[ "${1:-}" = --quick ] && quick=true
[ "${1:-}" = --durable ] && durable=true
[ "${1:-}" = --metrics ] && metrics=true
[ "${1:-}" = --events ] && events=true
[ "${1:-}" = --chris ] && chris=true
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
pids=() disk_work=() trap_more=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for more in "${trap_more[@]}"; do eval "$more" || true; done
  wait 2>/dev/null || true
  rm -rf "$work" "${disk_work[@]}"
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
mkdir -p "$work/b/in"
start b storescp -aet RX -od "$work/b/in" $((port + 2))
mkdir -p "$work/c/in"
start c storescp --fork +uf -aet RX -od "$work/c/in" -xcr \
  "$rx_repack --xcrdir #p --xcrfile #f --datadir $work/c/data --logdir $work/c/log --cleanup" $((port + 3))
start d "$rx_listen" --aet RX --fsync never --datadir "$work/d/data" --logdir "$work/d/log" -v 0 $((port + 4))
start e "$rx_listen" --aet RX --fsync always --datadir "$work/e/data" --logdir "$work/e/log" -v 0 $((port + 5))
pid_e=${pids[-1]}
mkdir -p "$work/hook"
start f "$rx_listen" --aet RX --fsync always --datadir "$work/f/data" --logdir "$work/f/log" -v 0 \
  --exec-on-series "/bin/sh -c 'ls \"\$0\" | wc -l >> \"\$1\"' #p $work/hook/counts" \
  --events-ndjson "$work/hook/events.ndjson" $((port + 6))

expect_placed() { # count [name...]: each (default (c) to (f)) placed that many
  local name n count=$1
  shift
  [ $# -gt 0 ] || set -- c d e f
  for name in "$@"; do
    n=$(find "$work/$name/data" -name '*.dcm' | wc -l)
    [ "$n" -eq "$count" ] || { echo "listen: ($name) placed $n of $count" >&2; exit 1; }
  done
}
clear() { # name: its last run's files moved aside, its input dir made
  echo "aside=$work/trash/\$(date +%s%N); mkdir -p \$aside;
    for dir in data log in; do [ ! -e $work/$1/\$dir ] || mv $work/$1/\$dir \$aside; done;
    mkdir $work/$1/in; sync"
}
settle=${BENCH_SETTLE:-6}
[ "$(df -T "$work" | awk 'NR==2 {print $2}')" = tmpfs ] && settle=${BENCH_SETTLE:-0}
rounds() { # json (name prepare command)...: hyperfine, one run each per round
  local json=$1 round i at n
  shift
  local -a contenders=("$@") args
  n=$((${#contenders[@]} / 3))
  for round in $(seq 0 "$RUNS"); do
    args=()
    for i in $(seq 0 $((n - 1))); do
      at=$(((i + round) % n * 3))
      args+=(-n "${contenders[at]}" --prepare "${contenders[at + 1]}" "${contenders[at + 2]}")
    done
    hyperfine --style none --runs 1 --export-json "$work/round-$round.json" "${args[@]}"
    rm -rf "$work/trash"
    sync
    sleep "$settle"
  done
  # Round 0 warms up; the others, merged as one hyperfine run.
  python3 - "$json" $(seq -f "$work/round-%g.json" 1 "$RUNS") <<'EOF'
import json, statistics, sys
times = {}
for path in sys.argv[2:]:
    for result in json.load(open(path))["results"]:
        times.setdefault(result["command"], []).extend(result["times"])
results = [{"command": name, "times": t, "mean": statistics.mean(t),
            "median": statistics.median(t)} for name, t in times.items()]
json.dump({"results": results}, open(sys.argv[1], "w"), indent=1)
EOF
}
all_placed() { # name count: waits until storescp's rx-repacks placed them
  echo "while [ \$(find $work/$1/data -name '*.dcm' 2>/dev/null | wc -l) -lt $2 ]; do sleep 0.005; done"
}

if $durable; then
  pypx_python=$PWD/examples-data/pypx-venv/bin/python
  "$pypx_python" -c 'import pynetdicom' 2>/dev/null ||
    { echo "listen: --durable needs pynetdicom: ./get_oracle.sh examples-data" >&2; exit 2; }
  command -v Orthanc >/dev/null || { echo "listen: --durable needs Orthanc (apt-get install orthanc)" >&2; exit 2; }
  dicom_rs=$PWD/examples-data/dicom-storescp/bin/dicom-storescp
  if [ ! -x "$dicom_rs" ]; then
    echo "listen: building dicom-rs's storescp (once) into examples-data/dicom-storescp" >&2
    cargo install --quiet --locked dicom-storescp@0.10.1 --root examples-data/dicom-storescp \
      --target-dir target/dicom-storescp
  fi
  DISKS=${DISKS:-/dev/shm $(benches/loop_disks.sh list)}
  benches/make_halves.sh "$series" "$work/halves"
  four_halves="for i in 1 2 3 4; do SEND $work/halves/\$i & done; wait"
  disk_index=0
  reports=()
  for disk in $DISKS; do
    disk_index=$((disk_index + 1))
    work=$(mktemp -d -p "$disk")
    disk_work+=("$work")
    base=$((port + 30 + disk_index * 20))
    settle=${BENCH_SETTLE:-6}
    [ "$(df -T "$work" | awk 'NR==2 {print $2}')" = tmpfs ] && settle=${BENCH_SETTLE:-0}
    servers_from=${#pids[@]}
    start d "$rx_listen" --aet RX --fsync never --datadir "$work/d/data" --logdir "$work/d/log" -v 0 $((base + 1))
    start e "$rx_listen" --aet RX --fsync always --datadir "$work/e/data" --logdir "$work/e/log" -v 0 $((base + 2))
    mkdir -p "$work/b/in" "$work/p/in" "$work/r/in"
    start b storescp --fork -aet RX -od "$work/b/in" $((base + 3))
    start p "$pypx_python" -m pynetdicom storescp -aet RX -od "$work/p/in" $((base + 4))
    start r "$dicom_rs" --non-blocking -o "$work/r/in" -p $((base + 5))
    # Orthanc, restarted empty before each of its runs (it keeps what it
    # stored, and would skip instances sent again).
    cat >"$work/orthanc.sh" <<ORTHANC
#!/usr/bin/env bash
# orthanc.sh NAME SYNC PORT: Orthanc NAME, empty, SyncStorageArea SYNC.
set -eu
dir=$work/\$1
[ -f \$dir.pid ] && kill \$(cat \$dir.pid) 2>/dev/null && while kill -0 \$(cat \$dir.pid) 2>/dev/null; do sleep 0.05; done
rm -rf \$dir; mkdir -p \$dir
cat >\$dir.json <<JSON
{"Name": "bench", "StorageDirectory": "\$dir", "IndexDirectory": "\$dir",
 "DicomAet": "RX", "DicomPort": \$3, "HttpPort": \$((\$3 + 1000)), "RemoteAccessAllowed": false,
 "DicomCheckCalledAet": false, "SyncStorageArea": \$2, "Plugins": []}
JSON
Orthanc \$dir.json >\$dir.log 2>&1 &
echo \$! >\$dir.pid
for i in \$(seq 200); do echoscu -aec RX 127.0.0.1 \$3 2>/dev/null && exit 0; sleep 0.05; done
echo "orthanc.sh: Orthanc did not start (\$dir.log)" >&2; exit 1
ORTHANC
    chmod +x "$work/orthanc.sh"
    orthanc_stop="for n in s t; do [ -f $work/\$n.pid ] && kill \$(cat $work/\$n.pid) 2>/dev/null; done; true"
    trap_more+=("$orthanc_stop")
    floor="python3 benches/fsync_floor.py $series $work/floor/\$(date +%s%N)"
    clear_floor="rm -rf $work/floor; sync"
    one() { echo "$send $1 $series"; }
    four_of() { echo "${four_halves//SEND/$send $1}"; }
    # The receivers: (name, prepare, port offset) each.
    receivers=(d "$(clear d)" 1 e "$(clear e)" 2 b "$(clear b)" 3 p "$(clear p)" 4
      r "$(clear r)" 5 s "$work/orthanc.sh s false $((base + 6))" 6
      t "$work/orthanc.sh t true $((base + 7))" 7)
    sent_by() { # sender (one or four_of): the receivers as rounds takes them
      local i
      contenders=()
      for ((i = 0; i < ${#receivers[@]}; i += 3)); do
        contenders+=("${receivers[i]}" "${receivers[i + 1]}" "$($1 $((base + receivers[i + 2])))")
      done
    }
    sent_by one
    rounds "$work/one.json" \
      n "$clear_floor" "$floor --no-fsync" \
      o "$clear_floor" "$floor" \
      "${contenders[@]}"
    expect_placed 192 d e
    sent_by four_of
    rounds "$work/four.json" "${contenders[@]}"
    expect_placed 384 d e
    eval "$orthanc_stop"
    kill "${pids[@]:servers_from}" 2>/dev/null || true
    reports+=("$disk" "$(df -T "$work" | awk 'NR==2 {print $2}')" "$work/one.json" "$work/four.json")
  done
  python3 benches/durable_report.py "${OUT%/*}/durable.svg" "${reports[@]}" >"${OUT%/*}/durable.md"
  cat "${OUT%/*}/durable.md"
  exit
fi

if $quick; then
  rounds "$work/times.json" \
    c "$(clear c)" "$send $((port + 3)) $series && $(all_placed c 192)" \
    e "$(clear e)" "$send $((port + 5)) $series"
  python3 - "$work/times.json" <<'EOF'
import json, sys
median = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
ratio = median["e"] / median["c"]
print(f"rx-listen {median['e']:.3f} s, storescp + rx-repack {median['c']:.3f} s: {ratio:.2f}x (must be < 1)")
sys.exit(0 if ratio < 1 else 1)
EOF
  exit
fi

# Four senders at once: the series under four studies of its own.
make_studies() {
  for i in 1 2 3 4; do
    mkdir -p "$work/studies/$i"
    cp "$series"/*.dcm "$work/studies/$i/"
    dcmodify -nb -q -ma "(0020,000D)=1.2.826.0.1.3680043.8.498.$$.$i" \
      -ma "(0020,000E)=1.2.826.0.1.3680043.8.498.$$.$i.1" "$work/studies/$i"/*.dcm
  done
}
four() { # port: four storescu at once, one study each
  echo "for i in 1 2 3 4; do $send $1 $work/studies/\$i & done; wait"
}

if $chris; then
  # ChRIS's services, and rx-listen filing for it without and with them.
  for tool in redis-server nats-server; do
    command -v $tool >/dev/null || { echo "listen: --chris needs $tool (apt-get install $tool)" >&2; exit 2; }
  done
  start redis redis-server --bind 127.0.0.1 --port $((port + 20)) --save '' --appendonly no
  start nats nats-server -a 127.0.0.1 -p $((port + 21))
  start g "$rx_listen" --aet RX --layout chris --datadir "$work/g/data" --logdir "$work/g/log" -v 0 \
    --series-settle 0.5 $((port + 7))
  start h "$rx_listen" --aet RX --layout chris --datadir "$work/h/data" --logdir "$work/h/log" -v 0 \
    --series-settle 0.5 --celery-broker redis://127.0.0.1:$((port + 20))/0 \
    --nats nats://127.0.0.1:$((port + 21)) $((port + 8))
  make_studies
  # (h)'s last series registered before its dirs are moved aside (at
  # most 10 s): a run then starts as quiet as one of (g)'s, not while
  # the last series settles into dirs that are gone.
  quiet_h="for i in \$(seq 200); do
      [ -n \"\$(find $work/h/log/.rx-repack/series/open $work/h/log/.rx-repack/outbox/celery -maxdepth 1 -name '*.json' 2>/dev/null)\" ] || break
      sleep 0.05; done; $(clear h)"
  rounds "$work/one.json" \
    g "$(clear g)" "$send $((port + 7)) $series" \
    h "$quiet_h" "$send $((port + 8)) $series"
  rounds "$work/four.json" \
    g "$(clear g)" "$(four $((port + 7)))" \
    h "$quiet_h" "$(four $((port + 8)))"
  # The tasks reached the broker (each series once it settled).
  sleep 2
  tasks=$(redis-cli -p $((port + 20)) llen main2 2>/dev/null || echo 0)
  [ "${tasks:-0}" -gt 0 ] || { echo "listen: (h) registered nothing" >&2; exit 1; }
  python3 - "$work/one.json" "$work/four.json" "$(df -T "$work" | awk 'NR==2 {print $2}')" "$tasks" <<'EOF'
import json, sys
for label, path in [("one sender", sys.argv[1]), ("four senders", sys.argv[2])]:
    median = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    print(f"{label}, files on {sys.argv[3]}: (g) rx-listen --layout chris {median['g']:.3f} s, "
          f"(h) with Redis and NATS {median['h']:.3f} s: {median['h'] / median['g']:.2f}x")
print(f"({sys.argv[4]} tasks on the broker)")
EOF
  exit
fi

if $metrics; then
  start m "$rx_listen" --aet RX --fsync always --datadir "$work/m/data" --logdir "$work/m/log" -v 0 \
    --metrics 127.0.0.1:$((port + 9)) $((port + 10))
  pid_m=${pids[-1]}
  start scraper bash -c "while curl -sf -o /dev/null http://127.0.0.1:$((port + 9))/metrics; do sleep 1; done"
  make_studies
  rounds "$work/one.json" \
    e "$(clear e)" "$send $((port + 5)) $series" \
    m "$(clear m)" "$send $((port + 10)) $series"
  rounds "$work/four.json" \
    e "$(clear e)" "$(four $((port + 5)))" \
    m "$(clear m)" "$(four $((port + 10)))"
  instances=$(curl -sf http://127.0.0.1:$((port + 9))/metrics | grep '^rx_listen_instances_total{outcome="success"}' | cut -d' ' -f2)
  [ "${instances:-0}" -gt 0 ] || { echo "listen: (m) counted no instance" >&2; exit 1; }
  # CPU time (user + system, in clock ticks), which drifts less than
  # wall time: (e) and (m) received the same instances.
  cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  python3 - "$work/one.json" "$work/four.json" "$(df -T "$work" | awk 'NR==2 {print $2}')" "$instances" \
    "$(cpu "$pid_e")" "$(cpu "$pid_m")" <<'EOF'
import json, sys
for label, path in [("one sender", sys.argv[1]), ("four senders", sys.argv[2])]:
    median = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    print(f"{label}, files on {sys.argv[3]}: (e) rx-listen --fsync always {median['e']:.3f} s, "
          f"(m) with --metrics, scraped each second {median['m']:.3f} s: {median['m'] / median['e']:.2f}x")
print(f"({sys.argv[4]} instances counted by (m))")
e, m = int(sys.argv[5]), int(sys.argv[6])
print(f"CPU time: (e) {e / 100:.2f} s, (m) {m / 100:.2f} s: {m / e:.2f}x")
EOF
  exit
fi

if $events; then
  make_studies
  rounds "$work/one.json" \
    e "$(clear e)" "$send $((port + 5)) $series" \
    f "$(clear f)" "$send $((port + 6)) $series"
  rounds "$work/four.json" \
    e "$(clear e)" "$(four $((port + 5)))" \
    f "$(clear f)" "$(four $((port + 6)))"
  python3 - "$work/one.json" "$work/four.json" "$(df -T "$work" | awk 'NR==2 {print $2}')" <<'EOF'
import json, sys
for label, path in [("one sender", sys.argv[1]), ("four senders", sys.argv[2])]:
    median = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
    print(f"{label}, files on {sys.argv[3]}: (e) rx-listen --fsync always {median['e']:.3f} s, "
          f"(f) with series events and a hook {median['f']:.3f} s: {median['f'] / median['e']:.2f}x")
EOF
  exit
fi

rounds "$work/times.json" \
  a "sync" "$send $((port + 1)) $series" \
  b "$(clear b)" "$send $((port + 2)) $series" \
  c "$(clear c)" "$send $((port + 3)) $series && $(all_placed c 192)" \
  d "$(clear d)" "$send $((port + 4)) $series" \
  e "$(clear e)" "$send $((port + 5)) $series" \
  f "$(clear f)" "$send $((port + 6)) $series"

expect_placed 192

make_studies
rounds "$work/four.json" \
  c "$(clear c)" "$(four $((port + 3))) && $(all_placed c 768)" \
  d "$(clear d)" "$(four $((port + 4)))" \
  e "$(clear e)" "$(four $((port + 5)))" \
  f "$(clear f)" "$(four $((port + 6)))"
expect_placed 768
# The hook ran for the series (its events come after the settle time).
sleep 4
[ -s "$work/hook/counts" ] || { echo "listen: (f) ran no hook" >&2; exit 1; }
bytes=$(du -sb "$work/studies" | cut -f1)

filesystem=$(df -T "$work" | awk 'NR==2 {print $2}')
python3 benches/listen_report.py "$work/times.json" "$work/four.json" "$bytes" \
  "$filesystem" "${OUT%.md}.svg" >"$OUT"
cat "$OUT"
