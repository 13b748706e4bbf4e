#!/usr/bin/env bash
# What ChRIS's sinks cost rx-listen in CPU, which drifts less than wall
# time on this machine: N series (SAG-anon, each under a series UID of
# its own) sent by storescu to (g) rx-listen --layout chris and to (h)
# the same with OPTIONS (default: registering on Redis and publishing on
# NATS, both started here), in turn; then each rx-listen's CPU seconds
# (user + system, /proc/PID/stat).
#
# Usage: [N=20] [BENCH_TMPDIR=/dev/shm] benches/chris_cpu.sh [OPTIONS...]
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in redis-server redis-cli nats-server storescu dcmodify; do
  command -v $tool >/dev/null || { echo "chris_cpu: needs $tool" >&2; exit 2; }
done
./get_examples.sh examples-data >/dev/null
rx_listen=$(dirname "$(benches/build.sh)")/rx-listen
series=$PWD/examples-data/SAG-anon
N=${N:-20}
work=$(mktemp -d -p "${BENCH_TMPDIR:-/dev/shm}")
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port=11700
redis-server --bind 127.0.0.1 --port $((port + 20)) --save '' --appendonly no >/dev/null &
nats-server -a 127.0.0.1 -p $((port + 21)) >/dev/null 2>&1 &
sleep 0.5
[ $# -gt 0 ] || set -- --celery-broker "redis://127.0.0.1:$((port + 20))/0" \
  --nats "nats://127.0.0.1:$((port + 21))"
common=(--aet RX --layout chris -v 0 --series-settle 0.2)
"$rx_listen" "${common[@]}" --datadir "$work/g/data" --logdir "$work/g/log" $((port + 1)) 2>"$work/g.log" &
g=$!
"$rx_listen" "${common[@]}" --datadir "$work/h/data" --logdir "$work/h/log" "$@" $((port + 2)) 2>"$work/h.log" &
h=$!
sleep 1
for i in $(seq 1 "$N"); do
  mkdir -p "$work/series/$i"
  cp "$series"/*.dcm "$work/series/$i/"
  dcmodify -nb -q -ma "(0020,000E)=1.2.826.0.1.3680043.8.498.$$.$i" "$work/series/$i"/*.dcm
  for p in $((port + 1)) $((port + 2)); do
    TCP_NODELAY=1 storescu -aec RX +sd 127.0.0.1 $p "$work/series/$i"
  done
done
sleep 2
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
echo "$N series each: (g) $(cpu $g) s of CPU, (h) $(cpu $h) s with: $*"
echo "tasks on the broker: $(redis-cli -p $((port + 20)) llen main2)"
