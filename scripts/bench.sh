#!/usr/bin/env bash
# Benchmarks (release build): the row store on 1,000,000 rows, and put/get of a 1 GiB Arrow file
# next to a plain file. Extra arguments go to both benches, e.g. `scripts/bench.sh --runs 5
# --dir /var/tmp`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
cargo bench --locked --bench rowstore -- "$@"
cargo bench --locked --bench objects -- "$@"
