#!/usr/bin/env bash
# Installs (once per machine) the file-system test tools from crates.io that the mount tests
# run: pjdfstest (POSIX conformance) and fsx (random I/O against a shadow copy). Prints their
# directory. Kept outside the clone, like the build's target directory.
set -euo pipefail
root="${CRONUSFS_TOOLS:-$HOME/.cache/cronusfs-tools}"
for tool in pjdfstest@0.2.2 fsx@0.3.2; do
  name="${tool%@*}"
  if [ ! -x "$root/bin/$name" ]; then
    echo "tools: installing $tool into $root (about 2 minutes)" >&2
    CARGO_TARGET_DIR="$root/target" cargo install --quiet --locked "$tool" --root "$root" >&2
  fi
done
echo "$root/bin"
