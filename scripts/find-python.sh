#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12, or explain what to install.
# Looks at $PYTHON, then python3.13 / python3.12 / python3 on PATH, then pyenv
# and uv-managed installs.
set -euo pipefail

ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3 python3.12 python3.13 python3.14; do
  path=$(command -v "$name" 2>/dev/null || true)
  [ -n "$path" ] && candidates+=("$path")
done
for root in "${PYENV_ROOT:-$HOME/.pyenv}/versions" "$HOME/.local/share/uv/python"; do
  if [ -d "$root" ]; then
    for path in $(ls -d "$root"/*3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
      candidates+=("$path")
    done
  fi
done

for path in "${candidates[@]}"; do
  # pyenv shims refuse versions that are not selected: try each installed one.
  if ok "$path"; then
    echo "$path"
    exit 0
  fi
done

cat >&2 <<'MSG'
error: torchgeo-stars needs Python >= 3.12 (torchgeo >= 0.10 requires it), and none was found.
Install one, then run the command again, for example:
  - Debian/Ubuntu:  sudo apt install python3.12 python3.12-venv
  - pyenv:          pyenv install 3.12
  - uv:             uv python install 3.12
or point to an interpreter explicitly:  make PYTHON=/path/to/python3.12 demo
MSG
exit 1
