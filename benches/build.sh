#!/usr/bin/env bash
# Builds the release binary and prints its path (where it is depends on
# .cargo/config.toml's target).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --message-format=json |
  python3 -c 'import json, sys
print([m["executable"] for m in map(json.loads, sys.stdin)
       if m.get("executable") and m["target"]["name"] == "rx-repack"][-1])'
