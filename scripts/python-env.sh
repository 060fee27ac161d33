#!/usr/bin/env bash
# Creates (once) the Python virtualenv the client tests use: real pyarrow and polars readers and
# writers, and simplekv + protobuf to open an exported store the way the Python Cronus does.
# Prints the venv's python. Kept outside the clone so that it is made once per machine.
set -euo pipefail
venv="${CRONUSFS_VENV:-$HOME/.cache/cronusfs-venv}"
want="pyarrow==26.0.1 polars==2.1.0 simplekv==0.14.1 protobuf==7.36.2"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.cronusfs-packages" 2>/dev/null)" != "$want" ]; then
  echo "python-env: creating $venv ($want)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
  echo "$want" > "$venv/.cronusfs-packages"
fi
echo "$venv/bin/python"
