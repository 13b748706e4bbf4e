"""The disk's floor for a durable receiver (benches/listen.sh --durable):
the SAG-anon instances' bytes, read into memory first, each written to a
new file in OUT_DIR and, unless --no-fsync, fsynced once: one commit per
instance, the least a receiver that acknowledges only what is on disk
can cost a sender that waits for each answer. No names are synced, no
records written: nothing a receiver could skip.

Usage: fsync_floor.py SERIES_DIR OUT_DIR [--no-fsync]
"""

import os
import sys

series, out = sys.argv[1], sys.argv[2]
fsync = "--no-fsync" not in sys.argv[3:]
blobs = []
for name in sorted(os.listdir(series)):
    with open(os.path.join(series, name), "rb") as f:
        blobs.append(f.read())
os.makedirs(out, exist_ok=True)
for i, blob in enumerate(blobs):
    fd = os.open(os.path.join(out, f"{i}.dcm"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, blob)
    if fsync:
        os.fsync(fd)
    os.close(fd)
