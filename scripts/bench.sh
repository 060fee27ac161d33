#!/usr/bin/env bash
# Benchmarks (release build): the row store on 1,000,000 rows; put/get of a 1 GiB Arrow file
# next to a plain file; and the mount next to a native directory on the same disk (cp, cat
# cold and warm, tar -x of small files, ls -l / find on 100,000 objects, getfattr -d, daemon
# memory); and the shared store: per-operation latency through mounts of cronusfs on RocksDB and
# on PostgreSQL + S3 next to JuiceFS on the same PostgreSQL and S3 servers, then the row
# benchmark on that PostgreSQL (scripts/bench_shared.py starts and stops the servers); the
# issue-12 workloads on native, cronusfs and JuiceFS with SQLite and with Redis metadata
# (scripts/bench_peers.py); and the row benchmark's data on the original Synapse 0.0.56 LMDB
# storage (scripts/bench_synapse.py, in a venv of its own); and what history costs and reads of
# the past (scripts/bench_history.py; with CRONUSFS_OLD_BIN, a build from before history, next
# to it); and the FUSE floor (benches/fuse_floor.rs, an in-memory filesystem on the same
# fuser) beside cronusfs and a native directory, per operation (scripts/bench_floor.py); and one
# file rewritten 3,000 times, per rewrite as the versions pile up (scripts/bench_rewrites.py).
# Extra arguments go to every bench, e.g. `scripts/bench.sh --runs 5 --dir /var/tmp`;
# `--only mount` (or rowstore, objects, shared, peers, synapse, history, floor, rewrites) runs one
# of them.
# `--only pjdfstest` (only on request) runs pjdfstest on native, cronusfs and JuiceFS with SQLite
# metadata instead (scripts/bench_peers.py --pjdfstest): tests passed, failed, skipped of each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
only=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$only" ] || [ "$only" = rowstore ]; then
  cargo bench --locked --bench rowstore -- "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = objects ]; then
  cargo bench --locked --bench objects -- "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = mount ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_mount.py "$CARGO_TARGET_DIR/release/cronusfs" "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = shared ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_shared.py "$CARGO_TARGET_DIR/release/cronusfs" \
    --row-bench "cargo bench --locked --quiet --bench rowstore --" "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = peers ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_peers.py "$CARGO_TARGET_DIR/release/cronusfs" "${args[@]}"
fi
if [ "$only" = pjdfstest ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_peers.py "$CARGO_TARGET_DIR/release/cronusfs" --pjdfstest "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = history ]; then
  cargo build --locked --release --quiet
  old=()
  if [ -n "${CRONUSFS_OLD_BIN:-}" ]; then old=("$CRONUSFS_OLD_BIN"); fi
  python3 scripts/bench_history.py "$CARGO_TARGET_DIR/release/cronusfs" "${old[@]}" "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = floor ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_floor.py "$CARGO_TARGET_DIR/release/cronusfs" "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = rewrites ]; then
  cargo build --locked --release --quiet
  python3 scripts/bench_rewrites.py "$CARGO_TARGET_DIR/release/cronusfs" "${args[@]}"
fi
if [ -z "$only" ] || [ "$only" = synapse ]; then
  venv="$HOME/.cache/synapse-venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-deps synapse==0.0.56
    "$venv/bin/pip" install --quiet "lmdb<2" msgpack tornado xxhash regex pyopenssl
  fi
  "$venv/bin/python" scripts/bench_synapse.py "${args[@]}"
  "$venv/bin/python" scripts/bench_synapse.py --nosync "${args[@]}"
fi
