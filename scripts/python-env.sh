#!/usr/bin/env bash
# Creates (once) the Python virtualenv the client tests use: real pyarrow and polars readers and
# writers, and simplekv + protobuf to open an exported store the way the Python Cronus does.
# Prints the venv's python. Kept outside the clone so that it is made once per machine.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
venv="${CRONUSFS_VENV:-$HOME/.cache/cronusfs-venv}"
ensure_venv "$venv" "pyarrow==26.0.1 polars==2.1.0 simplekv==0.14.1 protobuf==7.36.2" python-env
echo "$venv/bin/python"
