#!/usr/bin/env bash
# Creates (once) the Python virtualenv the client tests use: real pyarrow, polars, pandas and DuckDB readers and
# writers, simplekv + protobuf to open an exported store the way the Python Cronus does, fsspec, pytest
# and maturin for the Python package (`python/`).
# Prints the venv's python. Kept outside the clone so that it is made once per machine.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
venv="${CRONUSFS_VENV:-$HOME/.cache/cronusfs-venv}"
ensure_venv "$venv" "pyarrow==26.0.1 polars==2.1.0 simplekv==0.14.1 protobuf==7.36.2 pandas==3.1.2 duckdb==2.0.1 fsspec==2026.9.0 pytest==9.2.0 maturin==1.16.0" python-env
echo "$venv/bin/python"
