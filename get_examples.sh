#!/usr/bin/env bash
# Puts the example series into DIR (default: examples-data):
#   DIR/SAG-anon/             the 192 instances of the SAG-anon MR series, and
#                             nothing else (a batch or `storescu +sd` over it
#                             meets only DICOM files)
#   DIR/SAG-anon.LICENSE      its licence (MIT) and README, beside it
#   DIR/SAG-anon.README.md
# Safe to run again: a complete copy is kept. The tests also need px-repack's
# output on it: ./get_oracle.sh DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-examples-data}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

series="$dir/SAG-anon"
complete() {
  [ "$(find "$1" -maxdepth 1 -type f -name '*.dcm' 2>/dev/null | wc -l)" -eq 192 ] &&
    [ "$(find "$1" -mindepth 1 2>/dev/null | wc -l)" -eq 192 ]
}

if ! complete "$series"; then
  rm -rf "$series" "$series.partial"
  mkdir -p "$series.partial"
  shared=$(ls -d "$here"/../shared/examples/FNNDSC-SAG-anon-* 2>/dev/null | head -n 1 || true)
  if [ -n "$shared" ]; then
    echo "get_examples: copying SAG-anon from $shared"
    cp -r "$shared"/. "$series.partial"
  else
    echo "get_examples: downloading SAG-anon from github.com/FNNDSC/SAG-anon"
    if ! curl -fsSL https://github.com/FNNDSC/SAG-anon/archive/refs/heads/master.tar.gz |
      tar -xz -C "$series.partial" --strip-components=1; then
      rm -rf "$series.partial"
      echo "get_examples: could not download SAG-anon; put the series (192 .dcm files) in $series," >&2
      echo "get_examples: or run from a checkout with ../shared/examples/FNNDSC-SAG-anon-* beside it" >&2
      exit 1
    fi
  fi
  chmod -R u+w "$series.partial"
  # Only the instances stay in the series directory; the rest (LICENSE,
  # README.md) goes beside it as SAG-anon.<name>.
  find "$series.partial" -mindepth 1 -maxdepth 1 ! -name '*.dcm' -print0 |
    while IFS= read -r -d '' extra; do
      rm -rf "$series.$(basename "$extra")"
      mv "$extra" "$series.$(basename "$extra")"
    done
  if ! complete "$series.partial"; then
    echo "get_examples: $series.partial does not hold exactly 192 .dcm files:" >&2
    find "$series.partial" -mindepth 1 ! -name '*.dcm' | head >&2
    exit 1
  fi
  mv "$series.partial" "$series"
fi
echo "get_examples: ready in $dir"
