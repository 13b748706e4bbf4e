#!/usr/bin/env bash
# Builds the Debian package of rx-repack and rx-listen into
# target/debian/: the man pages and completions first (made from the
# clap definitions by examples/manuals.rs), then cargo-deb.
#
# Usage: tools/deb.sh   (needs cargo-deb: cargo install --locked cargo-deb)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo deb --version >/dev/null 2>&1 ||
  { echo "deb: needs cargo-deb: cargo install --locked cargo-deb" >&2; exit 2; }
rm -rf target/manuals
cargo run --release --quiet --example manuals -- target/manuals
cargo deb --target x86_64-unknown-linux-gnu --output target/debian/
