"""What a durable filing's system calls cost beyond the floor
(docs/durability.md): the SAG-anon instances' bytes, read into memory
first, filed one after another into OUT_DIR the way VARIANT says, with
the seconds taken printed (not Python's start, nor its reading of the
series). benches/filing_calls.sh runs the variants on a fresh directory
each, alternated with benches/fsync_floor.py (the floor: each instance's
bytes to a new file, fsynced once), and prints medians.

- instance: as rx-listen --fsync always files an instance without its
  image record: an unnamed file (O_TMPFILE) written, written back
  (sync_file_range, waited for), linked to its name, then fsynced, and
  its directory;
- filing: the same with the image record (about 1 KB) in a directory of
  its own, as rx-listen files one alone: both written back, both
  linked, both files fsynced at once (the record's on a second thread),
  then both directories;
- filing-syncfs: the same, with one syncfs(2) in place of the fsyncs;
- filing-unsynced: the filing's writes and names, with no write-back
  and no sync: what the other filing variants add to it is their syncs;
- filing-logged: the filing with a write-ahead log in place of its
  syncs (not what rx-listen does; docs/durability.md): both files
  written and linked with no sync, and the instance's and the record's
  bytes appended to a log whose blocks were written and synced before
  the loop, then fdatasync'd (data and a cache flush, no commit).

Usage: filing_calls.py SERIES_DIR OUT_DIR VARIANT
"""

import ctypes
import os
import queue
import sys
import threading
import time

SYNC_FILE_RANGE_WAIT_BEFORE, SYNC_FILE_RANGE_WRITE, SYNC_FILE_RANGE_WAIT_AFTER = 1, 2, 4
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def checked(result, call):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{call}: {os.strerror(errno)}")


def write_back(fds):
    for flags in (SYNC_FILE_RANGE_WRITE,
                  SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER):
        for fd in fds:
            checked(libc.sync_file_range(fd, 0, 0, flags), "sync_file_range")


def link(fd, path):
    checked(libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, path.encode(),
                        AT_SYMLINK_FOLLOW), "linkat")


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)


def unnamed(directory, data):
    fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o644)
    os.write(fd, data)
    return fd


series, out, variant = sys.argv[1:4]
if variant not in ("instance", "filing", "filing-syncfs", "filing-unsynced", "filing-logged"):
    sys.exit(f"filing_calls: unknown variant {variant}")
blobs = []
for name in sorted(os.listdir(series)):
    with open(os.path.join(series, name), "rb") as f:
        blobs.append(f.read())
record = b'{"image": "' + b"x" * 1000 + b'"}'
series_dir, image_dir, work_dir = (os.path.join(out, d) for d in ("series", "img", "work"))
for directory in (series_dir, image_dir, work_dir):
    os.makedirs(directory)
# The record's fsync, made on a second thread while the instance's is made.
to_sync, synced = queue.Queue(), queue.Queue()


def syncer():
    while True:
        os.fsync(to_sync.get())
        synced.put(True)


threading.Thread(target=syncer, daemon=True).start()
if variant == "filing-logged":
    log = os.open(os.path.join(out, "log"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    room = sum(len(blob) + len(record) for blob in blobs)
    os.write(log, bytes(room))
    os.fsync(log)
    fsync_dir(out)
    logged = 0

started = time.monotonic()
for i, blob in enumerate(blobs):
    name = f"{i}.dcm"
    if variant == "instance":
        fd = unnamed(work_dir, blob)
        write_back([fd])
        link(fd, os.path.join(series_dir, name))
        os.fsync(fd)
        fsync_dir(series_dir)
        os.close(fd)
    else:
        instance, image = unnamed(work_dir, blob), unnamed(work_dir, record)
        if variant not in ("filing-unsynced", "filing-logged"):
            write_back([instance, image])
        link(instance, os.path.join(series_dir, name))
        link(image, os.path.join(image_dir, name + ".json"))
        if variant == "filing-logged":
            logged += os.pwrite(log, blob + record, logged)
            os.fdatasync(log)
        elif variant == "filing-syncfs":
            checked(libc.syncfs(instance), "syncfs")
        elif variant == "filing":
            to_sync.put(image)
            os.fsync(instance)
            synced.get()
            fsync_dir(series_dir)
            fsync_dir(image_dir)
        os.close(instance)
        os.close(image)
print(f"{variant}: {time.monotonic() - started:.3f} s")
