#!/usr/bin/env bash
# Reading through the Python package (fsspec) beside a mount and a native directory
# (scripts/bench_python.py): builds the release binary and wheel, installs the wheel into a
# venv of its own (~/.cache/cronusfs-bench-venv), and runs the comparison. Arguments go to
# the script (--size-mib, --small, --runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
cargo build --release --locked --bin cronusfs >&2
python="$(bash scripts/python-env.sh)"
rm -f "$CARGO_TARGET_DIR"/wheels/cronusfs-*.whl
bash scripts/python-package.sh --release
venv="$HOME/.cache/cronusfs-bench-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall \
  "$CARGO_TARGET_DIR"/wheels/cronusfs-*.whl "pyarrow==26.0.1" "s3fs==2026.9.0" >&2
"$venv/bin/python" scripts/bench_python.py --binary "$CARGO_TARGET_DIR/release/cronusfs" "$@"
