"""pydicom's verdict on DICOM files, for the `structure` fuzz target (fuzz/rule.rs).

Reads one path a line on stdin and answers one line on stdout: `ok`, or
`error<TAB>Type: message`. A file reads if pydicom 2.x reads its header as
px-repack does (and as get_oracle.sh's conformance verdicts do):
`dcmread(path, stop_before_pixels=True)` without `force=True`, then `getattr`
for every keyword of `ds.dir()`. Run with examples-data/pypx-venv/bin/python.
"""

import sys
import warnings

import pydicom

warnings.simplefilter("ignore")


def verdict(path):
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for keyword in ds.dir():
            getattr(ds, keyword)
    except Exception as e:  # any failure is pydicom failing on the file
        return "error\t" + " ".join(f"{type(e).__name__}: {e}".split())[:400]
    return "ok"


for line in sys.stdin:
    sys.stdout.write(verdict(line.rstrip("\n")) + "\n")
    sys.stdout.flush()
