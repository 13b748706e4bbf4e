#!/usr/bin/env bash
# Checks the shortcut get_oracle.sh takes for its `records` case: one
# px-repack call on the first file and one batch over the 191 others must
# write the same log dir as 192 px-repack calls, one per file in name order
# (as the tests run rx-repack). Runs those 192 calls (about 5 minutes) and
# compares every record byte for byte, once the data dir is substituted,
# except the stat fields that differ between any two copies of a file
# (atime, ctime, mtime, ino), which it lists. Not part of `cargo test`: run
# it by hand after changing the recipe in get_oracle.sh.
#   tests/check_oracle_shortcut.sh [DIR]   (default: examples-data)
set -euo pipefail

dir=$(cd "${1:-examples-data}" && pwd)
series="$dir/SAG-anon"
oracle="$dir/px-oracle/records"
[ -d "$oracle/log" ] || {
  echo "no oracle in $oracle: run ./get_oracle.sh $dir first" >&2
  exit 1
}
work=$(mktemp -d "${TMPDIR:-/tmp}/rx-repack-shortcut.XXXXXX")
trap 'rm -rf "$work"' EXIT

mapfile -t args <"$oracle/args"
start=$SECONDS
for name in $(cd "$series" && LC_ALL=C ls); do
  "$dir/pypx-venv/bin/px-repack" --datadir "$work/data" --logdir "$work/log" --verbosity 0 \
    "${args[0]}" "${args[1]}" --xcrdir "$series" --xcrfile "$name"
done
echo "192 px-repack calls: $((SECONDS - start)) s"

python3 - "$oracle/log" "$(cat "$oracle/datadir")" "$work/log" "$work/data" <<'EOF'
import json, os, sys

short_log, short_data, each_log, each_data = sys.argv[1:]
VOLATILE = {"atime", "ctime", "mtime", "ino"}

def files(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, fs in os.walk(root) for f in fs
    )

def text(root, rel, data):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read().replace(data.encode() + b"/", b"DATA/")

def strip(value):
    """The record without its volatile stat fields."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    return value

names = files(short_log)
assert names == files(each_log), "the two log dirs hold different files"
same_bytes, same_but_stat, differing = 0, 0, set()
for rel in names:
    a, b = text(short_log, rel, short_data), text(each_log, rel, each_data)
    if a == b:
        same_bytes += 1
        continue
    assert "-img/" in rel, f"{rel} differs"
    ja, jb = json.loads(a), json.loads(b)
    assert strip(ja) == strip(jb), f"{rel} differs beyond stat fields"
    # Same keys in the same order, and the same text once the volatile
    # values are blanked.
    blank = lambda t: b"\n".join(
        line.split(b":")[0] if line.strip().split(b":")[0].strip(b'"').decode() in VOLATILE else line
        for line in t.split(b"\n")
    )
    assert blank(a) == blank(b), f"{rel}: layout differs"
    series = next(iter(ja.values()))
    stat_a = next(iter(series["imageObj"].values()))
    stat_b = next(iter(next(iter(jb.values()))["imageObj"].values()))
    differing |= {k for k in stat_a if stat_a[k] != stat_b[k]}
    same_but_stat += 1
print(f"{len(names)} records: {same_bytes} byte-identical, {same_but_stat} identical but "
      f"for the stat fields {sorted(differing)}")
assert differing <= VOLATILE
EOF
