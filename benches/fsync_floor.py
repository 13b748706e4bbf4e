"""The disk's floor for a durable receiver (benches/listen.sh --durable):
the SAG-anon instances' bytes, read into memory first, each written to a
new file in OUT_DIR and, unless --no-fsync, fsynced once: one commit per
instance, the least a receiver that acknowledges only what is on disk
can cost a sender that waits for each answer. No names are synced, no
records written: nothing a receiver could skip. It prints the seconds
its writes took (not Python's start, nor its reading of the series).

With --writers N (docs/durability.md, four senders), N threads write
the first 96 instances each, to directories of their own, each file
fsynced and then its directory, as N associations' filings would be;
it prints the seconds taken and the CPU seconds the whole machine spent
meanwhile (user and system, from /proc/stat), kernel threads included.

Usage: fsync_floor.py SERIES_DIR OUT_DIR [--no-fsync] [--writers N]
"""

import os
import sys
import threading
import time

series, out = sys.argv[1], sys.argv[2]
options = sys.argv[3:]
fsync = "--no-fsync" not in options
writers = int(options[options.index("--writers") + 1]) if "--writers" in options else None
blobs = []
for name in sorted(os.listdir(series)):
    with open(os.path.join(series, name), "rb") as f:
        blobs.append(f.read())
os.makedirs(out, exist_ok=True)


def write(directory, blobs, sync_dir):
    for i, blob in enumerate(blobs):
        fd = os.open(os.path.join(directory, f"{i}.dcm"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, blob)
        if fsync:
            os.fsync(fd)
        os.close(fd)
        if fsync and sync_dir:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dir_fd)
            os.close(dir_fd)


def busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


if writers is None:
    started = time.monotonic()
    write(out, blobs, sync_dir=False)
    print(f"the floor{'' if fsync else ', no fsync'}: {time.monotonic() - started:.3f} s")
else:
    threads = []
    for n in range(writers):
        directory = os.path.join(out, str(n))
        os.mkdir(directory)
        threads.append(threading.Thread(target=write, args=(directory, blobs[:96], True)))
    busy, started = busy_seconds(), time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took, busy = time.monotonic() - started, busy_seconds() - busy
    print(f"{writers} writers, {writers * 96} instances: {took:.3f} s, {busy:.2f} CPU s")
