"""After a power cut (benches/listen_powercut.sh): is every instance the
sender saw acknowledged whole, named and recorded, is no file in the tree
torn, and does every record parse?

Usage: powercut_check.py SERIES_DIR STORESCU_LOG DATADIR LOGDIR
SERIES_DIR: what was sent; STORESCU_LOG: storescu -v's log up to the
cut. Prints one line; exits 1
if an acknowledged instance is missing, torn or unrecorded, or if a file
in the tree or a record is torn.
"""

import hashlib
import json
import os
import sys

series, log, datadir, logdir = sys.argv[1:5]


def digest(path):
    """The digest of a DICOM file's data set: what follows its file meta
    group (rx-listen writes a meta group of its own; the data set
    arrives bit for bit). A file too short to hold one digests whole."""
    with open(path, "rb") as f:
        data = f.read()
    start = 0
    if data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00" and data[136:138] == b"UL":
        start = 144 + int.from_bytes(data[140:144], "little")
    return hashlib.sha256(data[start:]).hexdigest()


acknowledged, sending = [], None
for line in open(log, errors="replace"):
    if line.startswith("I: Sending file: "):
        sending = line[len("I: Sending file: "):].strip()
    elif line.startswith("I: Received Store Response (Success)") and sending:
        acknowledged.append(sending)
        sending = None
sources = {digest(path): path for path in set(acknowledged)}
known = {digest(os.path.join(series, name)) for name in os.listdir(series)}

placed, torn = {}, []
for root, _, names in os.walk(datadir):
    for name in names:
        path = os.path.join(root, name)
        h = digest(path)
        placed[h] = name
        if h not in known:
            torn.append(path)

records, bad_records = set(), []
for root, dirs, names in os.walk(logdir):
    dirs[:] = [d for d in dirs if d != ".rx-repack"]
    for name in names:
        path = os.path.join(root, name)
        try:
            with open(path) as f:
                json.load(f)
        except (ValueError, OSError):
            bad_records.append(path)
            continue
        if root.endswith("-img"):
            records.add(name[:-len(".json")])

missing = [src for h, src in sources.items() if h not in placed]
unrecorded = [src for h, src in sources.items() if h in placed and placed[h] not in records]
ok = not (missing or unrecorded or torn or bad_records)
print(f"{len(sources)} acknowledged: {len(missing)} missing, {len(unrecorded)} unrecorded; "
      f"{len(placed)} files in the tree, {len(torn)} torn; {len(bad_records)} torn records"
      + ("" if ok else f"; e.g. {(missing + unrecorded + torn + bad_records)[0]}"))
sys.exit(0 if ok else 1)
