#!/usr/bin/env bash
# Create the project's virtual environment in $1 (default .venv) with the
# package installed in editable mode and its development tools.
#
# Prints a short summary (what, roughly how long, where); pip's full output
# goes to $1/pip-install.log, whose last lines are printed if a step fails.
# Non-interactive: used as is by `make demo`, `make test` and CI.
set -euo pipefail
venv=${1:-.venv}
python=$(bash "$(dirname "$0")/find-python.sh")
log="$venv/pip-install.log"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

cat <<SUMMARY
Setting up $venv with $("$python" --version) ($python)
  installing: torchgeo-stars (editable) with PyTorch, TorchGeo, Lightning,
              segmentation-models-pytorch, rasterio, and the development tools
              (pytest, ruff, mypy, Sphinx, Jupyter kernel)
  takes:      a few minutes the first time (PyTorch is the largest download;
              the venv takes several GB), less once pip's cache has the wheels
  full log:   $log
SUMMARY

start=$SECONDS
"$python" -m venv "$venv"
: >"$log"

# Run a step with its output in the log; on failure show the log's tail.
step() {
  local what=$1
  shift
  printf '  %s ... ' "$what"
  if "$@" >>"$log" 2>&1; then
    echo ok
  else
    local status=$?
    echo failed
    echo "error: $what failed (exit $status); the last lines of $log:" >&2
    tail -n 40 "$log" >&2
    echo "The whole log is in $log." >&2
    exit "$status"
  fi
}

step 'upgrading pip' "$venv/bin/python" -m pip install --upgrade pip
step 'installing torchgeo-stars and its dependencies' \
  "$venv/bin/python" -m pip install --progress-bar off -e '.[dev]'
echo "Ready in $((SECONDS - start)) s: $venv/bin/python, $venv/bin/torchgeo-stars"
