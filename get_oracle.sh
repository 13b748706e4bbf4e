#!/usr/bin/env bash
# Makes, once, what the tests compare rx-repack with: px-repack's output on
# the SAG-anon series (run ./get_examples.sh DIR first). Into DIR (default:
# examples-data):
#   DIR/pypx-venv/     px-repack (pypx 3.12.6, pydicom<3), the format oracle,
#                      and pynetdicom, a sender for rx-listen's tests
#   DIR/cube-venv/     ChRIS's side of rx-listen's tests: a Celery 5 worker
#                      (celery[redis]), as CUBE runs it, and a NATS client
#                      (nats-py) to read LONK's progress
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
#   DIR/conformance/   the conformance corpus and its verdicts (issue 13):
#     files/           every public DICOM sample the package registries
#                      ship (see `conformance_corpus` below), by source:
#                      files/<source>/<path in the package>
#     verdicts.tsv     per file: name, size, dcmdump's exit status and
#                      first error line, pydicom's verdict and exception
#     SOURCES          each source's package and version, and what was
#                      left out (duplicates, too big)
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

# pynetdicom, a DICOM network peer for rx-listen's tests (2.1 is the
# last to work with pydicom 2.4), into the same venv.
if ! "$venv/bin/python" -c 'import pynetdicom' 2>/dev/null; then
  echo "get_oracle: installing pynetdicom 2.1.1 into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pynetdicom==2.1.1'
fi

# ChRIS's side: a Celery 5 worker with its Redis transport (CUBE in
# rx-listen's tests: it executes the registrations rx-listen sends), and
# nats-py, which reads LONK's progress as ChRIS's UI does.
cube_venv="$dir/cube-venv"
if [ ! -e "$cube_venv/.installed" ]; then
  echo "get_oracle: installing Celery 5 and nats-py into $cube_venv"
  rm -rf "$cube_venv"
  python3 -m venv "$cube_venv"
  "$cube_venv/bin/pip" install --quiet --disable-pip-version-check 'celery[redis]==5.7.0' 'nats-py==2.16.0'
  "$cube_venv/bin/pip" freeze --disable-pip-version-check >"$cube_venv/.installed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rx-repack-oracle.XXXXXX")
px_job=
trap '[ -z "$px_job" ] || kill "$px_job" 2>/dev/null; rm -rf "$work"' EXIT

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

# px-repack's output and the conformance corpus below are made at once:
# they are independent, and on two cores that saves a fifth of a fresh
# clone's test command.
if [ "$(cat "$oracle/STAMP" 2>/dev/null)" = "$stamp" ]; then
  echo "get_oracle: px-repack's output is ready in $oracle"
else
  px_oracle &
  px_job=$!
fi

# The conformance corpus (issue 13): every public DICOM sample the package
# registries ship, and, per file, whether DCMTK's dcmdump and pydicom read
# it. tests/it/conformance.rs runs rx-repack on each and checks the rule
# (README, "Conformance"). Bump conformance_recipe when what is made below
# changes, and RECIPE in tests/it/conformance.rs with it.
conformance_recipe=1
# The packages besides pydicom 2.4.5 and pydicom-data whose samples are
# taken, in this order (a file with the same bytes as one taken before is
# left out).
pypi_sources=('pydicom==3.0.2' 'pynetdicom==3.0.4' 'nibabel==5.4.2' 'deid-data==0.0.20')
debian_sources=(octave-dicom dicomscope dicom3tools)
conformance="$dir/conformance"
conformance_stamp=$(
  echo "conformance recipe $conformance_recipe"
  grep -iE '^pydicom==' "$venv/.installed"
  echo "pydicom-data==1.0.0"
  printf '%s\n' "${pypi_sources[@]}" "${debian_sources[@]}"
  dcmdump --version | sed -n 1p
)

conformance_corpus() {
  echo "get_oracle: making the conformance corpus and its verdicts in $conformance"
  local start=$SECONDS partial="$conformance.partial" src="$work/conformance"
  rm -rf "$partial" "$src"
  mkdir -p "$partial/files" "$src"

  # pydicom-data goes into px-repack's venv, where pydicom 2.4.5 is; the
  # other packages are only unpacked (pynetdicom 3 and pydicom 3 need a
  # pydicom 3: they cannot share the venv).
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps 'pydicom-data==1.0.0'
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --dest "$src/pypi" "${pypi_sources[@]}"
  mkdir "$src/unpacked"
  for archive in "$src"/pypi/*; do
    python3 -c 'import shutil, sys; shutil.unpack_archive(sys.argv[1], sys.argv[2], "zip" if sys.argv[1].endswith(".whl") else None)' \
      "$archive" "$src/unpacked/$(basename "$archive")"
  done
  # Debian's packages are downloaded, not installed, and unpacked.
  mkdir "$src/debian"
  if ! (cd "$src/debian" && apt-get download -q "${debian_sources[@]}" >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$src/debian" && apt-get download -q "${debian_sources[@]}" >/dev/null)
  fi
  local deb
  for deb in "$src"/debian/*.deb; do
    dpkg-deb -x "$deb" "$src/unpacked/$(basename "$deb")"
  done

  # source name, directory: the samples are the files under it (searched
  # recursively) named *.dcm or holding `DICM` at byte 128; a .gz or .zip
  # holding one counts, unpacked. Left out: a file with the same bytes as
  # one taken before (pydicom 3 repeats most of pydicom 2's), and one over
  # 32 MiB (two ultrasound cines of 43 and 104 MB; the corpus stays near
  # 120 MB).
  local u="$src/unpacked"
  {
    printf 'pydicom\t%s\n' "$site/pydicom/data"
    printf 'pydicom-data\t%s\n' "$site/data_store/data"
    printf 'pydicom-3\t%s\n' "$u"/pydicom-3.0.2-*.whl/pydicom/data
    printf 'pynetdicom\t%s\n' "$u"/pynetdicom-3.0.4-*.whl/pynetdicom/tests/dicom_files
    printf 'nibabel\t%s\n' "$u"/nibabel-5.4.2-*.whl/nibabel
    printf 'deid-data\t%s\n' "$u"/deid-data-0.0.20*/deid-data-0.0.20/deid_data/data
    printf 'debian-octave-dicom\t%s\n' "$u"/octave-dicom_*.deb/usr/share/octave/packages/dicom-*/imdata
    printf 'debian-dicomscope\t%s\n' "$u"/dicomscope_*.deb/usr/share/dicomscope
    printf 'debian-dicom3tools\t%s\n' "$u"/dicom3tools_*.deb/usr/share/doc/dicom3tools/examples
  } >"$src/list"
  python3 - "$src/list" "$partial/files" >"$partial/SOURCES" <<'PY'
import gzip, hashlib, os, sys, zipfile

list_file, out = sys.argv[1], sys.argv[2]
LIMIT = 32 * 1024 * 1024
seen = {}  # md5 -> corpus name

def is_sample(name, head):
    return name.lower().endswith(".dcm") or head[128:132] == b"DICM"

def take(source, rel, data):
    digest = hashlib.md5(data).hexdigest()
    if digest in seen:
        same.append(f"{rel} ({seen[digest]})")
        return
    name = f"{source}/{rel}"
    path = os.path.join(out, name)
    if os.path.exists(path):
        sys.exit(f"get_oracle: two samples named {name}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    seen[digest] = name
    return name

for line in open(list_file):
    source, root = line.rstrip("\n").split("\t")
    if not os.path.isdir(root):
        sys.exit(f"get_oracle: {root} is missing: where {source}'s samples should be")
    print(f"{source}: {root.split('/unpacked/')[-1]}")
    taken, same = 0, []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(d, f)
            rel = os.path.relpath(path, root)
            if os.path.islink(path) or f.endswith((".py", ".pyc")):
                continue
            if f.endswith(".gz"):
                data = gzip.open(path).read()
                if is_sample(f[:-3], data[:132]):
                    taken += take(source, rel[:-3], data) is not None
                continue
            if f.endswith(".zip"):
                with zipfile.ZipFile(path) as z:
                    for member in z.infolist():
                        if member.is_dir() or not is_sample(member.filename, z.open(member).read(132)):
                            continue
                        inner = os.path.join(os.path.dirname(rel), member.filename)
                        if member.file_size > LIMIT:
                            print(f"  left out {inner} (in {rel}): {member.file_size} bytes, over 32 MiB")
                            continue
                        taken += take(source, inner, z.read(member)) is not None
                continue
            with open(path, "rb") as fh:
                head = fh.read(132)
            if is_sample(f, head):
                if os.path.getsize(path) > LIMIT:
                    print(f"  left out {rel}: {os.path.getsize(path)} bytes, over 32 MiB")
                    continue
                taken += take(source, rel, open(path, "rb").read()) is not None
    print(f"  {taken} files")
    if same:
        print(f"  left out {len(same)} with the same bytes as a file taken before:", ", ".join(same))
PY
  {
    echo "versions:"
    grep -iE '^(pydicom|pydicom-data)==' <("$venv/bin/pip" freeze --disable-pip-version-check)
    printf '%s\n' "${pypi_sources[@]}"
    for deb in "$src"/debian/*.deb; do
      echo "$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version) (Debian)"
    done
    dcmdump --version | sed -n 1p
  } >>"$partial/SOURCES"

  # The verdicts. dcmdump: the exit status of `dcmdump -q FILE` (quiet: it
  # prints no message), and what a plain `dcmdump FILE` prints on stderr:
  # its first error line (E:), or its first line (a warning, W:) when it
  # prints no error. pydicom 2.4.5, reading the header as px-repack reads
  # a file: dcmread(stop_before_pixels=True), no force, then getattr for
  # every keyword of ds.dir(); "ok", or "error" and the exception.
  local names
  mapfile -t names < <(cd "$partial/files" && find . -type f -printf '%P\n' | LC_ALL=C sort)
  : >"$work/dcmdump.tsv"
  local name status message
  for name in "${names[@]}"; do
    status=0
    dcmdump -q "$partial/files/$name" >/dev/null 2>&1 || status=$?
    message=$(dcmdump "$partial/files/$name" 2>&1 >/dev/null |
      awk '/^E:/ && e == "" { e = $0 } NR == 1 { f = $0 } END { print (e != "" ? e : f) }' || true)
    printf '%s\t%s\t%s\n' "$name" "$status" "${message//"$partial/files/"/}" >>"$work/dcmdump.tsv"
  done
  (cd "$partial/files" && "$venv/bin/python" - "$work/dcmdump.tsv") >"$partial/verdicts.tsv" <<'PY'
import os, sys, warnings

import pydicom

warnings.simplefilter("ignore")

def one_line(text):
    return " ".join(str(text).split())

def pydicom_verdict(path):
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ds.dir():
            getattr(ds, keyword)
    except Exception as e:
        return "error", one_line(f"{type(e).__name__}: {e}")
    return "ok", ""

print("name\tsize\tdcmdump\tdcmdump_message\tpydicom\tpydicom_message")
for line in open(sys.argv[1]):
    name, status, message = line.rstrip("\n").split("\t")
    verdict, why = pydicom_verdict(name)
    print(f"{name}\t{os.path.getsize(name)}\t{status}\t{one_line(message)}\t{verdict}\t{why}")
PY

  echo "$conformance_stamp" >"$partial/STAMP"
  rm -rf "$conformance"
  mv "$partial" "$conformance"
  echo "get_oracle: the conformance corpus is ready in $conformance" \
    "(${#names[@]} files, $(du -sh "$conformance/files" | cut -f1); $((SECONDS - start)) s)"
}

if [ "$(cat "$conformance/STAMP" 2>/dev/null)" = "$conformance_stamp" ]; then
  echo "get_oracle: the conformance corpus is ready in $conformance"
else
  conformance_corpus
fi
if [ -n "$px_job" ]; then
  wait "$px_job" || { echo "get_oracle: px-repack's output could not be made" >&2; exit 1; }
  px_job=
fi

# pydicom's text of every keyword element (issue 13): what px-repack puts
# in the study-series record, `"%s" % getattr(ds, keyword)` for each
# keyword of `ds.dir()`, sequences and all, for files that cover
# sequences, character sets, big endian and private tags. The files are
# read as px-repack reads them, whole (elements after the pixel data, such
# as DataSetTrailingPadding, are in its record), PixelData itself left out
# as px-repack leaves it out. tests/it/pydicom_text.rs
# reads each with rx-repack's reader and compares. Bump
# pydicom_text_recipe when what is made below changes, and RECIPE in
# tests/it/pydicom_text.rs with it.
pydicom_text_recipe=3
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
    ds = pydicom.dcmread(path, force=force)
    elements = {}
    for keyword in ds.dir():
        if keyword == "PixelData":
            continue
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
