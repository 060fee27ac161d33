#!/usr/bin/env bash
# The main job, as a tour: build cronusfs, create a store, mount it, make a dataset with
# partitions and jobs, put Arrow files in with cp and with pyarrow and a Parquet file with polars,
# look with ls, cat and getfattr, tag with setfattr, browse a query view, unmount, and lift rows
# with the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python="$(bash scripts/python-env.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
# CRONUSFS_BIN_DIR: a directory holding a built cronusfs to use instead (the test of this tour).
if [ -z "${CRONUSFS_BIN_DIR:-}" ]; then
  cargo build --locked --quiet
  CRONUSFS_BIN_DIR="$CARGO_TARGET_DIR/debug"
fi
PATH="$CRONUSFS_BIN_DIR:$PATH"

work="${1:-$(mktemp -d)}"
store="$work/demo.store"
mnt="$work/mnt"
mkdir -p "$mnt"
# An if, not &&: a trap's last status becomes the script's (mountpoint says 32 when unmounted).
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" || fusermount3 -uz "$mnt"; fi
}
trap cleanup EXIT
say() { printf '\n$ %s\n' "$*"; "$@"; }
shell() { printf '\n$ %s\n' "$1"; bash -c "$1"; }

say cronusfs init "$store"
say cronusfs mount "$store" "$mnt"
ds=$(cat /proc/sys/kernel/random/uuid)
export D="$mnt/datasets/$ds" M="$mnt" PY="$python" WORK="$work"
shell 'mkdir $D && mkdir $D/partitions/key1 $D/partitions/key2'
shell 'mkdir $D/partitions/key1/jobs/0 $D/partitions/key1/jobs/1'
shell 'ls $D/partitions/key2/jobs'
"$python" tests/python/arrow_clients.py write-pyarrow "$work/batches.arrow"
shell 'cp $WORK/batches.arrow $D/partitions/key1/jobs/0/'
shell '$PY -c "import pyarrow as pa, pyarrow.ipc as ipc; t = pa.table({\"x\": [1, 2, 3]}); w = ipc.new_file(\"$D/partitions/key2/jobs/1/small.arrow\", t.schema); w.write(t); w.close()"'
shell 'printf "a,b\n1,2\n" > $D/partitions/key1/jobs/1/notes.csv'
shell 'ls -l $D/partitions/key1/jobs/0 $D/partitions/key1/jobs/1'
shell 'cat $D/partitions/key1/jobs/1/notes.csv'
shell 'ln -s batches.arrow $D/partitions/key1/jobs/0/latest.arrow && ls -l $D/partitions/key1/jobs/0'
shell 'getfattr -d $D/partitions/key1/jobs/0/batches.arrow | grep -v arrow:schema'
shell 'setfattr -n user.quality -v 10 $D/partitions/key1/jobs/0/batches.arrow'
shell '$PY -c "import polars as pl; pl.DataFrame({\"k\": range(2500), \"v\": [\"a\", \"b\"] * 1250}).write_parquet(\"$D/partitions/key2/jobs/1/frame.parquet\", row_group_size=1000)"'
shell 'getfattr -d $D/partitions/key2/jobs/1/frame.parquet | grep parquet: | grep -v schema'
shell 'setfattr -n user.quality -v 10 $D/partitions/key2/jobs/1/frame.parquet $D/partitions/key1'
shell 'ls -l "$M/query/quality=10"'
shell 'ls "$M/query/quality=10/cronus:parquet:num_rows>=1000"'
shell 'ls $M/objects | head -3'
say cronusfs -s "$store" find quality=10 'cronus:type=PARQUET'
# History: an rm undone by reading the past, and by restore.
sleep 0.2
export T=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 0.2
shell 'rm $D/partitions/key1/jobs/1/notes.csv; echo "x,y" > $D/partitions/key1/jobs/1/other.csv'
shell 'ls $D/partitions/key1/jobs/1'
shell 'cat $M/at/$T/datasets/*/partitions/key1/jobs/1/notes.csv    # the tree as it was at $T'
shell 'cronusfs -s $WORK/demo.store diff $T'
shell 'cronusfs -s $WORK/demo.store snapshot create before-rm --at $T && ls $M/snapshots'
shell 'cronusfs -s $WORK/demo.store restore '"$ds"'/key1/1 --at $T && ls $D/partitions/key1/jobs/1'
say cronusfs umount "$mnt"
export CRONUSFS_STORE="$store"
say cronusfs rows lift cronus:arrow:num_rows --ge 1000 --join --format tsv | grep -E 'cronus:(object|arrow:num_rows)|quality'
say cronusfs rows lift quality --eq 10 --count
say cronusfs ls "$ds"
echo
echo "demo store left at $store"
