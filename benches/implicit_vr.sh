#!/usr/bin/env bash
# Benchmark (issue 13): the per-file cost of an implicit-VR instance. The
# SAG-anon series as it is (explicit VR little endian) beside a copy
# converted with `dcmconv +ti` (implicit VR little endian), each repacked
# storescp-style: one rx-repack process per file (fd --exec, as storescp
# --fork would run it), copy mode with a log dir, files on /dev/shm.
# Implicit VR must cost at most 10% more per call.
#
# Usage: benches/implicit_vr.sh
# Environment: RUNS (hyperfine runs per contender and round, default 10),
# ROUNDS (default 2: the contenders alternate first and second, so a
# machine that slows down during the run does not favour one; the times
# of all rounds are pooled), LIMIT (the largest implicit/explicit ratio
# of the medians, default 1.10), BENCH_TMPDIR (where the files go,
# default /dev/shm), OUT (default target/bench/implicit_vr.md, in
# CARGO_TARGET_DIR when set).
# Needs: hyperfine, fd (Debian: hyperfine, fd-find) and DCMTK's dcmconv.
# Exit status: 0 within the limit, 1 over it, 2 on setup errors.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-2}
LIMIT=${LIMIT:-1.10}
OUT=${OUT:-${CARGO_TARGET_DIR:-target}/bench/implicit_vr.md}

die() {
  echo "implicit_vr: $*" >&2
  exit 2
}
fd=$(command -v fdfind || command -v fd || true)
for tool in hyperfine "$fd" dcmconv dcmdump; do
  [ -n "$tool" ] && command -v "$tool" >/dev/null ||
    die "needs hyperfine, fd and DCMTK: apt-get install hyperfine fd-find dcmtk"
done

./get_examples.sh examples-data >/dev/null
rx=$(benches/build.sh) || die "cargo build --release failed"

need_kib=$(($(du -sk examples-data/SAG-anon | cut -f1) * 6))
root=${BENCH_TMPDIR:-/dev/shm}
if [ ! -d "$root" ] || [ "$(df -Pk "$root" | awk 'NR==2 {print $4}')" -lt "$need_kib" ]; then
  root=${TMPDIR:-/tmp}
fi
work=$(mktemp -d -p "$root")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/explicit" "$work/implicit" "$(dirname "$OUT")"
cp examples-data/SAG-anon/*.dcm "$work/explicit/"
for f in "$work"/explicit/*.dcm; do
  dcmconv +ti "$f" "$work/implicit/$(basename "$f")"
done
n=$(find "$work/explicit" -name '*.dcm' | wc -l)
syntax() { dcmdump -q -M +P TransferSyntaxUID "$1" | sed 's/.*=\([A-Za-z]*\).*/\1/'; }
[ "$(syntax "$work/explicit/$(ls "$work/explicit" | head -n 1)")" = LittleEndianExplicit ] ||
  die "the SAG-anon files are not explicit VR little endian"
[ "$(syntax "$work/implicit/$(ls "$work/implicit" | head -n 1)")" = LittleEndianImplicit ] ||
  die "dcmconv +ti did not make implicit VR little endian"

data=$work/data log=$work/log
clean="rm -rf $data $log"
command_for() {
  echo "$fd -e dcm . $work/$1 -x $rx --xcrdir {//} --xcrfile {/} --datadir $data --logdir $log"
}

# Both must repack every file, and alike: the same tree, byte counts aside.
for kind in explicit implicit; do
  $clean
  eval "$(command_for "$kind")" || die "rx-repack failed on the $kind files"
  placed=$(find "$data" -name '*.dcm' | wc -l)
  [ "$placed" -eq "$n" ] || die "$placed of $n $kind files placed"
  (cd "$data" && find . -type f | sort) >"$work/$kind.tree"
done
cmp -s "$work/explicit.tree" "$work/implicit.tree" ||
  die "the explicit and implicit files were placed at different paths"

for round in $(seq 1 "$ROUNDS"); do
  order=(explicit implicit)
  [ $((round % 2)) -eq 0 ] && order=(implicit explicit)
  for kind in "${order[@]}"; do
    echo "implicit_vr: round $round, $kind" >&2
    hyperfine --style basic --warmup 1 --runs "$RUNS" --prepare "$clean; sync" \
      --export-json "$work/$kind-$round.json" "$(command_for "$kind")" >&2
  done
done

machine="$(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)), files on $(df -T "$work" | awk 'NR==2 {print $2}')"
status=0
python3 - "$work" "$n" "$ROUNDS" "$LIMIT" "$machine" "$(git rev-parse --short HEAD)" >"$OUT" <<'EOF' || status=$?
import glob, json, statistics, sys
work, n, rounds, limit, machine, commit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
times = {
    kind: [t for f in sorted(glob.glob(f"{work}/{kind}-*.json")) for t in json.load(open(f))["results"][0]["times"]]
    for kind in ("explicit", "implicit")
}
median = {k: statistics.median(v) for k, v in times.items()}
# CPU time (user + system, hyperfine's means), which the other load on a
# shared machine disturbs less than the wall-clock time.
cpu = {
    kind: statistics.mean(r["user"] + r["system"] for f in glob.glob(f"{work}/{kind}-*.json") for r in json.load(open(f))["results"])
    for kind in times
}
ratio = median["implicit"] / median["explicit"]
print(f"{n} SAG-anon instances, one rx-repack process per file (fd --exec), copy mode with a log dir;")
print(f"{rounds} rounds, runs pooled; at {commit}; machine: {machine}.\n")
print("| transfer syntax | median | per call | CPU per call | runs |")
print("|---|---:|---:|---:|---:|")
for kind, label in (("explicit", "explicit VR little endian (as received)"), ("implicit", "implicit VR little endian (dcmconv +ti)")):
    print(f"| {label} | {median[kind]:.3f} s | {median[kind] / n * 1000:.2f} ms | {cpu[kind] / n * 1000:.2f} ms | {len(times[kind])} |")
verdict = "met" if ratio <= limit else "NOT met"
print(f"\nimplicit / explicit: {ratio:.2f}x (target <= {limit:.2f}x): {verdict}; CPU time {cpu['implicit'] / cpu['explicit']:.2f}x")
sys.exit(0 if ratio <= limit else 1)
EOF
cat "$OUT"
exit "$status"
