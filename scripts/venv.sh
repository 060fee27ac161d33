#!/usr/bin/env bash
# Sourced by the scripts that keep a virtualenv outside the clone (made once per machine):
# `ensure_venv DIR "PACKAGES" WHAT` creates DIR with PACKAGES unless it already holds exactly
# them (a marker file records what it holds).
ensure_venv() {
  local venv="$1" want="$2" what="$3"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.cronusfs-packages" 2>/dev/null)" != "$want" ]; then
    echo "$what: creating $venv ($want)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want >&2
    echo "$want" > "$venv/.cronusfs-packages"
  fi
}
