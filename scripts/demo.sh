#!/usr/bin/env bash
# The main job: builds cronusfs, creates a demo store, adds rows and lifts them back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
cargo build --locked --quiet
cronusfs="$CARGO_TARGET_DIR/debug/cronusfs"

store="${1:-$(mktemp -d)/demo.store}"
say() { printf '\n$ %s\n' "$*"; "$@"; }

say "$cronusfs" init "$store"
export CRONUSFS_STORE="$store"
say "$cronusfs" rows add job0 job:id 0 --time 1000
say "$cronusfs" rows add job0 job:rows 1200 --time 1000
say "$cronusfs" rows add job0 job:partition key1 --time 1000
say "$cronusfs" rows add job1 job:id 1 --time 2000
say "$cronusfs" rows add job1 job:rows 800 --time 2000
say "$cronusfs" rows add job1 job:partition key2 --time 2000
say "$cronusfs" rows lift job:rows --ge 1000
say "$cronusfs" rows lift job:partition --eq key2 --join
say "$cronusfs" rows lift job:id --min-time 1500 --format jsonl
say "$cronusfs" rows lift job:rows --range 0 10000 --count
echo
echo "demo store left at $store"
