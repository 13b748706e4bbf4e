#!/usr/bin/env bash
# Puts what the tests and benchmarks need into DIR (default: examples-data):
#   DIR/SAG-anon/       the 192-instance SAG-anon MR series (MIT licence)
#   DIR/pypx-venv/      px-repack (pypx 3.12.6), the format oracle
# Safe to run again: finished parts are kept.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-examples-data}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

series="$dir/SAG-anon"
if [ "$(find "$series" -name '*.dcm' 2>/dev/null | wc -l)" -ne 192 ]; then
  rm -rf "$series" "$series.partial"
  shared=$(ls -d "$here"/../shared/examples/FNNDSC-SAG-anon-* 2>/dev/null | head -n 1 || true)
  if [ -n "$shared" ]; then
    echo "get_examples: copying SAG-anon from $shared"
    cp -r "$shared" "$series.partial"
  else
    echo "get_examples: downloading SAG-anon from github.com/FNNDSC/SAG-anon"
    mkdir -p "$series.partial"
    if ! curl -fsSL https://github.com/FNNDSC/SAG-anon/archive/refs/heads/master.tar.gz \
      | tar -xz -C "$series.partial" --strip-components=1; then
      rm -rf "$series.partial"
      echo "get_examples: could not download SAG-anon; put the series (192 .dcm files) in $series," >&2
      echo "get_examples: or run from a checkout with ../shared/examples/FNNDSC-SAG-anon-* beside it" >&2
      exit 1
    fi
  fi
  chmod -R u+w "$series.partial"
  mv "$series.partial" "$series"
fi

venv="$dir/pypx-venv"
if ! "$venv/bin/px-repack" --version >/dev/null 2>&1 && [ ! -x "$venv/bin/px-repack" ]; then
  echo "get_examples: installing px-repack (pypx 3.12.6) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pypx==3.12.6' 'pydicom<3'
fi
echo "get_examples: ready in $dir"
