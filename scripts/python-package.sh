#!/usr/bin/env bash
# Builds the Python package (`python/`: PyO3 + maturin) and installs it into the client tests'
# venv (scripts/python-env.sh). Built in cargo's dev profile, whose dependencies are optimised
# (Cargo.toml): the library and RocksDB are the very ones `cargo test` builds, not a second
# copy. `--release` builds the release wheel instead (into target/wheels) without installing.
# Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
python="$(bash scripts/python-env.sh)"
venv="$(dirname "$(dirname "$python")")"
if [ "${1:-}" = "--release" ]; then
  "$venv/bin/maturin" build --release --locked -m python/Cargo.toml --interpreter "$python" >&2
  exit 0
fi
VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --locked -m python/Cargo.toml >&2
echo "$python"
