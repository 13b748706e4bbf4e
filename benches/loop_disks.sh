#!/usr/bin/env bash
# The journaled disks benches/listen.sh --durable measures, as loop
# mounts of image files: a 6 GiB ext4 (with its journal, as users' disks
# are) and a 6 GiB XFS, at /mnt/rx-bench-ext4 and /mnt/rx-bench-xfs.
# The images are allocated in full (fallocate) and the loop devices do
# direct I/O, so a flush reaches the disk below without going through
# the page cache of the host's file system (whose own writeback made the
# timings of a sparse image swing by 3x).
#
# Usage: benches/loop_disks.sh up | down | list   (up and down as root)
set -euo pipefail
images=${LOOP_DISKS_DIR:-/var/tmp}
case "${1:-}" in
up)
  for fs in ext4 xfs; do
    mnt=/mnt/rx-bench-$fs img=$images/rx-bench-$fs.img
    mountpoint -q "$mnt" && continue
    command -v "mkfs.$fs" >/dev/null || { echo "loop_disks: needs mkfs.$fs (apt-get install xfsprogs)" >&2; exit 2; }
    rm -f "$img"
    fallocate -l 6G "$img"
    dev=$(losetup --direct-io=on -f --show "$img")
    if [ "$fs" = ext4 ]; then mkfs.ext4 -q "$dev"; else mkfs.xfs -q -f "$dev"; fi
    mkdir -p "$mnt"
    mount "$dev" "$mnt"
  done
  ;;
down)
  for fs in ext4 xfs; do
    mnt=/mnt/rx-bench-$fs
    if mountpoint -q "$mnt"; then
      dev=$(findmnt -n -o SOURCE "$mnt")
      umount "$mnt"
      losetup -d "$dev" 2>/dev/null || true
    fi
    rm -f "$images/rx-bench-$fs.img"
  done
  ;;
list)
  for fs in ext4 xfs; do
    mountpoint -q "/mnt/rx-bench-$fs" && echo "/mnt/rx-bench-$fs"
  done
  true
  ;;
*)
  echo "usage: benches/loop_disks.sh up | down | list" >&2
  exit 2
  ;;
esac
