#!/usr/bin/env bash
# Benchmark: "A 1 GiB instance is repacked with peak RSS under 32 MiB and in
# at most twice the time of `cp` of the same file."
#
#   benches/big_instance.sh                   # 1 GiB, the real claim
#   BIG_SIZE_MIB=64 benches/big_instance.sh   # quick smoke run
#
# Environment:
#   BIG_SIZE_MIB   PixelData size in MiB (default 1024; max 4095, the
#                  element length is 32 bits)
#   RUNS, WARMUP   hyperfine runs / warm-up runs (default 5 / 1)
#   RSS_LIMIT_MIB  peak RSS limit (default 32)
#   TIME_RATIO_MAX limit on median(rx-repack) / median(cp) (default 2)
#   TMPDIR         where the scratch dir goes (mktemp -d); the source and the
#                  copies must live on the file system you want to measure
#   RESULTS_DIR    where hyperfine's exports and the summary are kept
#                  (default target/bench/big_instance)
#
# Exit status: 0 if both limits hold, 1 if one fails, 2 on setup errors.
set -euo pipefail

size_mib=${BIG_SIZE_MIB:-1024}
runs=${RUNS:-5}
warmup=${WARMUP:-1}
rss_limit_mib=${RSS_LIMIT_MIB:-32}
ratio_max=${TIME_RATIO_MAX:-2}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
results=${RESULTS_DIR:-$target_dir/bench/big_instance}

die() { echo "big_instance: $*" >&2; exit 2; }

[[ $size_mib =~ ^[0-9]+$ ]] && ((size_mib >= 1 && size_mib <= 4095)) \
    || die "BIG_SIZE_MIB must be an integer in 1..4095 (got '$size_mib')"
command -v hyperfine >/dev/null || die "hyperfine is not installed"
command -v python3 >/dev/null || die "python3 is needed to write the test file"
if [[ ! -x /usr/bin/time ]]; then
    # GNU time (not the shell keyword) is what reports peak RSS.
    echo "installing GNU time ..." >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null \
        || die "/usr/bin/time is missing and could not be installed"
fi

# --- 1. build -----------------------------------------------------------
bin=$("$repo/benches/build.sh") || die "cargo build --release failed"
[[ -x $bin ]] || die "no binary at $bin"

# --- scratch space ------------------------------------------------------
work=$(mktemp -d -t rx-repack-bench.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
mkdir -p "$results" "$work/in" "$work/cp-out"

# At most three copies exist at once: the source, rx-repack's output and,
# briefly, a staged temp file or cp's output (each is deleted before the next
# command runs). Ask for 3x the size plus 256 MiB of headroom.
need_kib=$(( (size_mib * 3 + 256) * 1024 ))
avail_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
((avail_kib >= need_kib)) \
    || die "need $((need_kib / 1024)) MiB free in $work, have $((avail_kib / 1024)) MiB"

# --- 2. synthesise the instance -----------------------------------------
# Explicit VR little endian, preamble + DICM + file meta group, a handful of
# identifying tags, then (7FE0,0010) OW of exactly BIG_SIZE_MIB MiB
# (512x512 16-bit frames, 2 per MiB). The pixel bytes are one seeded random
# MiB repeated: written fast, and not zeros, so no layer can take a shortcut
# on all-zero blocks.
src=$work/in/big.dcm
python3 "$repo/benches/make_big_instance.py" "$src" "$size_mib"
src_bytes=$(stat -c %s "$src")
# An independent check that the file is well-formed, when DCMTK is around
# (-M: large values are not loaded, so this reads only the header).
if command -v dcmdump >/dev/null; then
    dcmdump -M -q "$src" >/dev/null || die "dcmdump cannot parse the generated file"
fi

# Warm the page cache: every measured command then reads the same cached
# source, which is fair to both. Writes still go through the page cache;
# each --prepare below syncs, so one run's writeback never lands in the
# next run's timing.
cat "$src" >/dev/null

# --- 3. peak RSS and correctness of one run -----------------------------
rx_out=$work/rx-out
rx_cmd=("$bin" --xcrdir "$work/in" --xcrfile big.dcm --datadir "$rx_out")
/usr/bin/time -v -o "$results/time-v-rx-repack.txt" "${rx_cmd[@]}" \
    || die "rx-repack failed (see $results/time-v-rx-repack.txt)"
/usr/bin/time -v -o "$results/time-v-cp.txt" cp "$src" "$work/cp-out/big.dcm"
rm -f "$work/cp-out/big.dcm"

max_rss_kib() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
rx_rss_kib=$(max_rss_kib "$results/time-v-rx-repack.txt")
cp_rss_kib=$(max_rss_kib "$results/time-v-cp.txt")

mapfile -t outputs < <(find "$rx_out" -type f)
((${#outputs[@]} == 1)) \
    || die "expected exactly one file under --datadir, found ${#outputs[@]}: ${outputs[*]}"
cmp -s "$src" "${outputs[0]}" || die "output ${outputs[0]} differs from the source"
identical="yes (${outputs[0]#"$rx_out"/})"

# --- 4. time against cp --------------------------------------------------
# Both write a fresh file on the same file system as the source: --prepare
# removes the previous output (so every run really copies) and syncs.
hyperfine --runs "$runs" --warmup "$warmup" --style basic \
    --export-markdown "$results/hyperfine.md" \
    --export-json "$results/hyperfine.json" \
    --prepare "rm -rf '$rx_out' && sync" \
    --command-name rx-repack "$(printf '%q ' "${rx_cmd[@]}")" \
    --prepare "rm -f '$work/cp-out/big.dcm' && sync" \
    --command-name cp "cp '$src' '$work/cp-out/big.dcm'" >&2

# --- 5. summary -----------------------------------------------------------
read -r rx_median cp_median < <(python3 - "$results/hyperfine.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(r["rx-repack"], r["cp"])
PY
)
verdicts=$(python3 - "$rx_rss_kib" "$rss_limit_mib" "$rx_median" "$cp_median" "$ratio_max" <<'PY'
import sys
rss_kib, rss_lim, rx, cp, ratio_max = (float(a) for a in sys.argv[1:])
ratio = rx / cp
print(f"{rss_kib / 1024:.1f} {'PASS' if rss_kib / 1024 < rss_lim else 'FAIL'} "
      f"{ratio:.2f} {'PASS' if ratio <= ratio_max else 'FAIL'}")
PY
)
read -r rx_rss_mib rss_verdict ratio time_verdict <<<"$verdicts"

summary=$results/summary.md
{
    echo "## rx-repack big instance benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "Machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ { print $2 }') RAM," \
        "scratch on $(df -PT "$work" | awk 'NR == 2 { print $2 }')" \
        "($(df -P "$work" | awk 'NR == 2 { print $1 }')), kernel $(uname -r)"
    echo
    echo "| | value | limit | result |"
    echo "|---|---|---|---|"
    printf '| file size | %d bytes (%.1f MiB) | | |\n' "$src_bytes" \
        "$(echo "$src_bytes" | awk '{ print $1 / 1048576 }')"
    echo "| output byte-identical | $identical | | PASS |"
    echo "| peak RSS rx-repack | $rx_rss_mib MiB | < $rss_limit_mib MiB | $rss_verdict |"
    printf '| peak RSS cp (reference) | %.1f MiB | | |\n' "$(awk "BEGIN { print $cp_rss_kib / 1024 }")"
    printf '| median time rx-repack | %.3f s | | |\n' "$rx_median"
    printf '| median time cp | %.3f s | | |\n' "$cp_median"
    echo "| ratio rx-repack / cp | $ratio | <= $ratio_max | $time_verdict |"
    echo
    echo "hyperfine ($runs runs, $warmup warm-up):"
    echo
    cat "$results/hyperfine.md"
} >"$summary"
cat "$summary"

[[ $rss_verdict == PASS && $time_verdict == PASS ]]
