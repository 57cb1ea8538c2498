#!/usr/bin/env bash
# Create the project's virtual environment in $1 (default .venv) with the
# package installed in editable mode and its development tools.
set -euo pipefail
venv=${1:-.venv}
python=$(bash "$(dirname "$0")/find-python.sh")
echo "Creating $venv with $python ($("$python" --version))"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --progress-bar off -e '.[dev]'
