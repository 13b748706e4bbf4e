"""A disk that can lose its power, for benches/listen_powercut.sh.

A FUSE file system (mfusepy) holding one file, `disk.img`, which the
trial puts under a loop device and formats. Writes that reach it are
applied at once (what the running system reads back), and kept as
pending until a flush (the loop device turns a cache flush, and so every
journal commit and fsync, into an fsync of this file): only a flush
makes them durable. Creating the file `cut` is the power cut: from then
on nothing is made durable, and what was written since the last flush
is kept aside. Operations run one at a time, so the cut falls between
two of them.

On unmount it leaves, beside the initial image IMAGE:
  IMAGE.durable   what the disk held at its last flush before the cut
  IMAGE.pending   the writes after that flush (offset, length, bytes),
                  which a real disk may or may not have kept

Usage: powercut_disk.py IMAGE MOUNTPOINT
"""

import errno
import os
import pickle
import stat
import sys

import mfusepy as fuse


class CuttableDisk(fuse.Operations):
    def __init__(self, image):
        self.image = image
        size = os.path.getsize(image)
        self.size = size
        # What the running system sees, and what a power cut would leave.
        self.current = os.open(image, os.O_RDWR)
        self.durable_path = image + ".durable"
        os.system(f"cp --sparse=always '{image}' '{self.durable_path}'")
        self.durable = os.open(self.durable_path, os.O_RDWR)
        self.pending = []
        self.cut = False

    def getattr(self, path, fh=None):
        if path == "/":
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path == "/disk.img":
            return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": self.size}
        if path == "/cut" and self.cut:
            return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
        raise fuse.FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", "disk.img"] + (["cut"] if self.cut else [])

    def open(self, path, flags):
        if path != "/disk.img":
            raise fuse.FuseOSError(errno.ENOENT)
        return 0

    def create(self, path, mode, fi=None):
        if path != "/cut":
            raise fuse.FuseOSError(errno.EACCES)
        self.cut = True
        with open(self.image + ".pending", "wb") as out:
            pickle.dump(self.pending, out)
        return 0

    def utimens(self, path, times=None):
        return 0

    def read(self, path, size, offset, fh):
        return os.pread(self.current, size, offset)

    def write(self, path, data, offset, fh):
        data = bytes(data)
        os.pwrite(self.current, data, offset)
        if not self.cut:
            self.pending.append((offset, data))
        return len(data)

    def truncate(self, path, length, fh=None):
        return 0

    def fsync(self, path, datasync, fh):
        if not self.cut:
            for offset, data in self.pending:
                os.pwrite(self.durable, data, offset)
            self.pending = []
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def destroy(self, path):
        if not self.cut:
            with open(self.image + ".pending", "wb") as out:
                pickle.dump(self.pending, out)
        os.close(self.durable)


if __name__ == "__main__":
    image, mountpoint = sys.argv[1], sys.argv[2]
    fuse.FUSE(CuttableDisk(image), mountpoint, foreground=True, nothreads=True)
