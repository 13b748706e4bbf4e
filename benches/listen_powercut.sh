#!/usr/bin/env bash
# Power-cut trials (issue 23): storescu sends the series to rx-listen,
# whose data dir and log dir are on a disk that loses its power at a
# random moment; then the disk as a power cut may have left it is mounted
# (the file system replays its journal) and benches/powercut_check.py
# checks that every instance the sender saw acknowledged before the cut
# is whole, named and recorded, that no file in the tree is torn, and
# that every record parses.
#
# The disk is benches/powercut_disk.py: a FUSE file under a loop device,
# so every cache flush the file system asks for (each journal commit,
# each fsync) reaches it. A write is durable only once a flush followed
# it. After the cut, each trial mounts three disks: what the last flush
# made durable; that with every write since (a disk that lost nothing);
# and that with a random half of them, in order (a disk whose cache
# lost the rest). A real power cut leaves one of the many such states,
# so the trials sample them rather than prove them all.
#
# Usage: benches/listen_powercut.sh [TRIALS]   (as root: loop devices
# and mounts; default 10 trials per file system)
# Environment: FILESYSTEMS (default "ext4 xfs"), FSYNC (rx-listen's
# --fsync, default always: with never, acknowledged instances are lost,
# which shows the check can fail).
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
filesystems=${FILESYSTEMS:-ext4 xfs}
fsync=${FSYNC:-always}
[ "$(id -u)" = 0 ] || { echo "listen_powercut: run it as root (loop devices, mounts)" >&2; exit 2; }
for tool in storescu echoscu losetup; do
  command -v $tool >/dev/null || {
    echo "listen_powercut: needs $tool (apt-get install dcmtk mount)" >&2
    exit 2
  }
done
venv=$PWD/examples-data/powercut-venv
if ! "$venv/bin/python" -c 'import mfusepy' 2>/dev/null; then
  echo "listen_powercut: installing mfusepy into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'mfusepy==3.1.1'
fi
./get_examples.sh examples-data >/dev/null
rx_repack=$(benches/build.sh)
rx_listen=$(dirname "$rx_repack")/rx-listen
series=$PWD/examples-data/SAG-anon
export TCP_NODELAY=1

root=$(mktemp -d -p /dev/shm)
pids=() mounts=() loops=()
teardown() { # what a trial set up, in reverse; the disk goes last
  local m
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  for m in "${loops[@]}"; do losetup -d "$m" 2>/dev/null || true; done
  umount "$root/fuse" 2>/dev/null || umount -l "$root/fuse" 2>/dev/null || true
  wait 2>/dev/null || true
  pids=() mounts=() loops=()
}
trap 'teardown 2>/dev/null; rm -rf "$root"' EXIT

failed=0 port=11600
for fs in $filesystems; do
  for trial in $(seq "$trials"); do
    rm -rf "${root:?}"/*
    mkdir -p "$root/fuse" "$root/mnt" "$root/check"
    image=$root/disk.img
    truncate -s 1G "$image"
    case $fs in
    ext4) mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$image" ;;
    xfs) mkfs.xfs -q "$image" ;;
    esac
    "$venv/bin/python" -W ignore benches/powercut_disk.py "$image" "$root/fuse" 2>"$root/disk.log" &
    for _ in $(seq 100); do [ -e "$root/fuse/disk.img" ] && break; sleep 0.05; done
    loop=$(losetup -f --show "$root/fuse/disk.img")
    loops+=("$loop")
    mount "$loop" "$root/mnt"
    mounts+=("$root/mnt")
    port=$((port + 1))
    "$rx_listen" --aet RX --fsync "$fsync" --datadir "$root/mnt/data" --logdir "$root/mnt/log" \
      -v 0 $port >"$root/listen.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do echoscu -aec RX 127.0.0.1 $port 2>/dev/null && break; sleep 0.05; done
    storescu -v -aec RX +sd 127.0.0.1 $port "$series" >"$root/storescu.log" 2>&1 &
    pids+=($!)
    # The cut: after a random number of acknowledgements, once those so
    # far are noted (the ones noted all came before it).
    cut_after=$(python3 -c "import random; print(random.randint(1, 185))")
    for _ in $(seq 1000); do
      [ "$(grep -c '^I: Received Store Response' "$root/storescu.log" || true)" -lt "$cut_after" ] || break
      sleep 0.002
    done
    cp "$root/storescu.log" "$root/acked.log"
    touch "$root/fuse/cut"
    teardown
    for variant in flushed all half; do
      python3 - "$image" "$variant" "$trial" <<'EOF'
import os, pickle, random, shutil, sys
image, variant, trial = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copyfile(image + ".durable", image + ".after")
pending = pickle.load(open(image + ".pending", "rb"))
keep = {"flushed": lambda: False, "all": lambda: True,
        "half": lambda: chance.random() < 0.5}[variant]
chance = random.Random(trial)
with open(image + ".after", "r+b") as disk:
    for offset, data in pending:
        if keep():
            disk.seek(offset)
            disk.write(data)
EOF
      mount -o loop "$image.after" "$root/check"
      mounts+=("$root/check")
      acked=$(grep -c '^I: Received Store Response (Success)' "$root/acked.log" || true)
      if line=$(python3 benches/powercut_check.py "$series" "$root/acked.log" "$root/check/data" "$root/check/log"); then
        echo "$fs trial $trial, $variant: $line"
      else
        echo "$fs trial $trial, $variant: FAILED: $line"
        failed=$((failed + 1))
      fi
      [ "$acked" -gt 0 ] || echo "$fs trial $trial: the cut came before any acknowledgement"
      teardown
      rm -f "$image.after"
    done
  done
done
echo "listen_powercut: $failed failed checks (--fsync $fsync)"
[ "$failed" -eq 0 ]
