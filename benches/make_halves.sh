#!/usr/bin/env bash
# make_halves.sh SERIES DIR: four senders' loads for the durable benches,
# one patient: DIR/1 to DIR/4, each 96 instances of SERIES (the first
# half for 1 and 3, the second for 2 and 4) under a study and series of
# its own (new UIDs, so that none replaces another's files).
# Needs DCMTK's dcmodify.
set -euo pipefail
series=$1 dir=$2
for i in 1 2 3 4; do
  mkdir -p "$dir/$i"
  find "$series" -maxdepth 1 -name '*.dcm' | sort |
    if [ $((i % 2)) = 1 ]; then head -n 96; else tail -n 96; fi |
    xargs cp -t "$dir/$i"
  dcmodify -nb -q -ma "(0020,000D)=1.2.826.0.1.3680043.8.498.$$.$i" \
    -ma "(0020,000E)=1.2.826.0.1.3680043.8.498.$$.$i.1" "$dir/$i"/*.dcm
done
