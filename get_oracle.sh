#!/usr/bin/env bash
# Makes, once, what the tests compare rx-repack with: px-repack's output on
# the SAG-anon series (run ./get_examples.sh DIR first). Into DIR (default:
# examples-data):
#   DIR/pypx-venv/     px-repack (pypx 3.12.6, pydicom<3), the format oracle
#   DIR/px-oracle/     its output, one directory per case:
#     records/         once per file in name order, our series template: what
#                      the log dir must hold byte for byte
#     px-default/      px-repack's own default templates (batch mode)
#     pypx-310/        pypx 3.10's series template (batch mode)
#     substr/          --parseAllFilesWithSubStr 0001,.dcm over the series
#                      and a file that does not match
#   each holding
#     args             px-repack's options for the case
#     tree.md5         px-repack's data dir: `md5sum` of every file, by
#                      relative path (the 43 MB of copies are not kept)
#     log/             px-repack's log dir, as written
#     datadir          the data dir px-repack wrote to, as it appears in
#                      the records (SeriesBaseDir, FSlocation)
#   DIR/px-oracle/STAMP  the recipe, the versions and the series it was made
#                      from; a different one remakes the oracle
#   DIR/pydicom-text/  pydicom 2.4.5's text of every keyword element, as
#                      px-repack's series record holds it (see
#                      `pydicom_text` below):
#     files/           the files it was made from: SAG-anon's first
#                      instance, pydicom's test_files and charset_files,
#                      and crafted/: private elements inside sequences,
#                      in implicit VR, explicit VR and big endian
#     text.json        per file: pydicom's verdict, and the text of each
#                      element (or why it has none)
#     STAMP            the recipe and versions; a different one remakes it
# Each is kept when its STAMP matches; made in DIR/<name>.partial and
# renamed when complete, so an interrupted run leaves no half oracle.
set -euo pipefail

# Bump when what is made below changes, and RECIPE in tests/it/oracle.rs
# with it: the tests then ask for the oracle to be made again.
recipe=1
rx_series='%_pad|5,0_SeriesNumber-%SeriesDescription-%_seahash|7_SeriesInstanceUID'
pypx_310_series='%_pad|5,0_SeriesNumber-%SeriesDescription'

dir=${1:-examples-data}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
series="$dir/SAG-anon"
if [ "$(find "$series" -maxdepth 1 -name '*.dcm' 2>/dev/null | wc -l)" -ne 192 ]; then
  echo "get_oracle: the SAG-anon series is not in $series: run ./get_examples.sh $dir first" >&2
  exit 1
fi

# px-repack in a venv; .installed is written once pip has finished.
venv="$dir/pypx-venv"
if [ ! -e "$venv/.installed" ]; then
  echo "get_oracle: installing px-repack (pypx 3.12.6) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pypx==3.12.6' 'pydicom<3'
  "$venv/bin/pip" freeze --disable-pip-version-check >"$venv/.installed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rx-repack-oracle.XXXXXX")
trap 'rm -rf "$work"' EXIT

oracle="$dir/px-oracle"
stamp=$(
  echo "recipe $recipe"
  grep -iE '^(pypx|pydicom)==' "$venv/.installed"
  echo "SAG-anon $(cd "$series" && LC_ALL=C ls | xargs md5sum | md5sum | cut -d' ' -f1)"
)

px_oracle() {
  echo "get_oracle: running px-repack on $series"
  start=$SECONDS
  partial="$oracle.partial"
  rm -rf "$partial"
  mkdir -p "$partial"

  # px-repack writing case $1's data and records into the scratch dir (it
  # also makes empty `data` and `services` dirs beside the log dir); the
  # remaining arguments say what to repack and how.
  px() {
    local case=$1
    shift
    "$venv/bin/px-repack" --datadir "$work/$case/data" --logdir "$work/$case/log" \
      --verbosity 0 "$@"
  }

  # Keeps what the tests compare of case $1 (the remaining arguments: its
  # options, for the record), checking px-repack placed all 192 instances,
  # and drops its copies.
  keep() {
    local case=$1 data="$work/$1/data"
    shift
    mkdir "$partial/$case"
    mv "$work/$case/log" "$partial/$case/log"
    printf '%s\n' "$@" >"$partial/$case/args"
    echo "$data" >"$partial/$case/datadir"
    (cd "$data" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
      >"$partial/$case/tree.md5"
    local placed
    placed=$(wc -l <"$partial/$case/tree.md5")
    if [ "$placed" -ne 192 ]; then
      echo "get_oracle: px-repack placed $placed files in case $case, not 192" >&2
      exit 1
    fi
    rm -rf "${work:?}/$case"
  }

  # records: what 192 px-repack calls, one per file in name order, write. The
  # study-series record keeps the elements of the first instance seen, and
  # the other records do not depend on the order, so one call on the first
  # file and one batch over the 191 others make the same records, in a few
  # seconds instead of minutes (tests/check_oracle_shortcut.sh compares).
  mapfile -t names < <(cd "$series" && LC_ALL=C ls)
  px records --seriesDirTemplate "$rx_series" --xcrdir "$series" --xcrfile "${names[0]}"
  mkdir "$work/rest"
  for name in "${names[@]:1}"; do
    cp -p "$series/$name" "$work/rest/"
  done
  px records --seriesDirTemplate "$rx_series" --xcrdir "$work/rest" --parseAllFilesWithSubStr .dcm
  keep records --seriesDirTemplate "$rx_series" "(once per file, in name order)"
  rm -rf "$work/rest"

  px px-default --xcrdir "$series" --parseAllFilesWithSubStr .dcm
  keep px-default --parseAllFilesWithSubStr .dcm

  px pypx-310 --seriesDirTemplate "$pypx_310_series" --xcrdir "$series" --parseAllFilesWithSubStr .dcm
  keep pypx-310 --seriesDirTemplate "$pypx_310_series" --parseAllFilesWithSubStr .dcm

  mkdir "$work/incoming"
  cp -p "$series"/*.dcm "$work/incoming/"
  echo "not selected" >"$work/incoming/notes.txt"
  px substr --seriesDirTemplate "$rx_series" --xcrdir "$work/incoming" --parseAllFilesWithSubStr 0001,.dcm
  keep substr --seriesDirTemplate "$rx_series" --parseAllFilesWithSubStr 0001,.dcm \
    "(over the series and notes.txt)"

  cp "$venv/.installed" "$partial/VERSIONS"
  echo "$stamp" >"$partial/STAMP"
  rm -rf "$oracle"
  mv "$partial" "$oracle"
  echo "get_oracle: px-repack's output is ready in $oracle ($((SECONDS - start)) s)"
}

if [ "$(cat "$oracle/STAMP" 2>/dev/null)" = "$stamp" ]; then
  echo "get_oracle: px-repack's output is ready in $oracle"
else
  px_oracle
fi

# pydicom's text of every keyword element (issue 13): what px-repack puts
# in the study-series record, `"%s" % getattr(ds, keyword)` for each
# keyword of `ds.dir()`, sequences and all, for files that cover
# sequences, character sets, big endian and private tags. The files are
# read as px-repack reads them but without the pixel data
# (`stop_before_pixels`), which the record leaves out. tests/it/pydicom_text.rs
# reads each with rx-repack's reader and compares. Bump
# pydicom_text_recipe when what is made below changes, and RECIPE in
# tests/it/pydicom_text.rs with it.
pydicom_text_recipe=2
pydicom_text="$dir/pydicom-text"
pydicom_data=$("$venv/bin/python" -c 'import os, pydicom.data; print(os.path.dirname(pydicom.data.__file__))')
pydicom_text_stamp=$(
  echo "pydicom-text recipe $pydicom_text_recipe"
  grep -iE '^pydicom==' "$venv/.installed"
  echo "SAG-anon $(cd "$series" && LC_ALL=C ls | xargs md5sum | md5sum | cut -d' ' -f1)"
)

pydicom_text_oracle() {
  echo "get_oracle: writing down pydicom's text of the elements in $pydicom_text"
  local start=$SECONDS partial="$pydicom_text.partial"
  rm -rf "$partial"
  mkdir -p "$partial/files/SAG-anon"
  local first
  first=$(cd "$series" && LC_ALL=C ls | sed -n 1p)
  cp "$series/$first" "$partial/files/SAG-anon/"
  # Every file of pydicom's test data but its notes, dumps, JSON and
  # archives; those pydicom cannot read are kept with its reason, those
  # without a file meta group read again with force=True.
  local set
  for set in test_files charset_files; do
    (cd "$pydicom_data" && find "$set" -type f \
      ! -name '*.txt' ! -name '*.dump' ! -name '*.json' ! -name '*.gz' ! -name '*.py' \
      -print0 | xargs -0 cp --parents -t "$partial/files")
  done
  # No file of pydicom's has private elements inside a sequence: these
  # have, known to its private dictionary and not, in three encodings
  # (in implicit VR only pydicom's private dictionary gives their VRs).
  mkdir "$partial/files/crafted"
  "$venv/bin/python" - "$partial/files/crafted" <<'PY'
import os, sys
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

# Keep the UN elements below UN when writing (reading converts them).
pydicom.config.replace_un_with_known_vr = False

def item(n):
    i = Dataset()
    i.add_new(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.4")
    i.add_new(0x00081155, "UI", f"1.2.3.4.{n}")
    i.add_new(0x00090010, "LO", "GEMS_IDEN_01")
    i.add_new(0x00091001, "LO", "GE_GENESIS_FF ")
    i.add_new(0x00091002, "SH", "CT01")
    i.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    # Written as UN: pydicom reads it as its private dictionary's DS.
    i.add_new(0x0019100B, "UN", b"2570.0")
    i.add_new(0x0019100C, "IS", "1000")
    i.add_new(0x0019100E, "FD", [0.5, -0.25, 1.0])
    i.add_new(0x00191027, "FD", [1.5, 0.0, 0.0, 2.5, 0.0, 3.5])
    i.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
    i.add_new(0x00290011, "LO", "NOT A KNOWN CREATOR")
    i.add_new(0x00291008, "CS", "IMAGE NUM 4")
    i.add_new(0x00291009, "LO", "20090819")
    i.add_new(0x00291010, "OB", bytes(range(40)))
    i.add_new(0x00291018, "CS", "MR")
    i.add_new(0x00291101, "LO", "unknown")
    i.add_new(0x00291102, "OB", b"\x01\x02")
    i.add_new(0x00291103, "UN", b"xy")
    # Standard elements written as UN: read in their dictionary's VR.
    i.add_new(0x00181020, "UN", b"SW 1.0")
    i.add_new(0x00280010, "UN", b"\x00\x02")
    i.add_new(0x00431001, "SS", 7)
    nested = Dataset()
    nested.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
    nested.add_new(0x00291008, "CS", "NESTED")
    i.add_new(0x00291120, "SQ", Sequence([nested, Dataset()]))
    return i

for name, syntax in [
    ("private_in_sequence_implicit.dcm", ImplicitVRLittleEndian),
    ("private_in_sequence_explicit.dcm", ExplicitVRLittleEndian),
    ("private_in_sequence_big_endian.dcm", ExplicitVRBigEndian),
]:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.is_implicit_VR = syntax.is_implicit_VR
    ds.is_little_endian = syntax.is_little_endian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = "Crafted^Private"
    ds.ReferencedImageSequence = Sequence([item(1), item(2)])
    ds.save_as(os.path.join(sys.argv[1], name), write_like_original=False)
PY
  "$venv/bin/python" - "$partial/files" >"$partial/text.json" <<'PY'
import json, os, sys, warnings
import pydicom

warnings.simplefilter("ignore")
root = sys.argv[1]

def one_line(text):
    return " ".join(str(text).split())

def texts(path, force=False):
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=force)
    elements = {}
    for keyword in ds.dir():
        # As px-repack: "no attribute" when the value cannot be had; a
        # value that cannot be printed is an error it does not catch.
        try:
            value = getattr(ds, keyword)
        except Exception:
            elements[keyword] = "no attribute"
            continue
        try:
            elements[keyword] = "%s" % value
        except Exception as e:
            elements[keyword] = {"error": one_line(f"{type(e).__name__}: {e}")}
    return elements

out = {}
for folder, _, names in sorted(os.walk(root)):
    for name in sorted(names):
        path = os.path.join(folder, name)
        rel = os.path.relpath(path, root)
        try:
            out[rel] = {"pydicom": "ok", "elements": texts(path)}
        except pydicom.errors.InvalidDicomError as e:
            # No file meta group: px-repack refuses the file, but pydicom's
            # text of what force=True reads still says how to print it.
            why = one_line(f"{type(e).__name__}: {e}")
            try:
                out[rel] = {"pydicom": "forced", "why": why, "elements": texts(path, force=True)}
            except Exception as e:
                out[rel] = {"pydicom": "error", "why": one_line(f"{type(e).__name__}: {e}")}
        except Exception as e:
            out[rel] = {"pydicom": "error", "why": one_line(f"{type(e).__name__}: {e}")}
json.dump(dict(sorted(out.items())), sys.stdout, indent=1, ensure_ascii=False)
print()
PY

  echo "$pydicom_text_stamp" >"$partial/STAMP"
  rm -rf "$pydicom_text"
  mv "$partial" "$pydicom_text"
  echo "get_oracle: pydicom's text is ready in $pydicom_text" \
    "($(find "$pydicom_text/files" -type f | wc -l) files; $((SECONDS - start)) s)"
}

if [ "$(cat "$pydicom_text/STAMP" 2>/dev/null)" = "$pydicom_text_stamp" ]; then
  echo "get_oracle: pydicom's text is ready in $pydicom_text"
else
  pydicom_text_oracle
fi
