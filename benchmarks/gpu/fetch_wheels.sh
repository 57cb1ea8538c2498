#!/usr/bin/env bash
# Download, here (the machine with PyPI), the wheels that the GPU machine lacks
# for benchmarks/gpu/run.sh, into benchmarks/gpu/wheels (ignored by git). The
# GPU machine has Python 3.12, torch, torchvision, lightning, torchmetrics,
# timm, numpy, pandas, matplotlib, requests, click, attrs, certifi and more,
# but not the geospatial stack, smp or kornia; it reaches no registry. Carry
# the folder with the device call (carry: ["benchmarks/gpu/wheels"]).
#
# pyogrio (33 MB) is not fetched: TorchGeo only imports it at import time, so
# run.sh puts the stand-in benchmarks/gpu/stand_ins/pyogrio.py first instead.
# rasterio is 1.4.3 (22 MB) rather than 1.5 (39 MB), to stay well under the
# 64 MiB a device call carries.
#
# Usage: benchmarks/gpu/fetch_wheels.sh [DEST]   (PYTHON: .venv/bin/python)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dest=${1:-$here/wheels}
python=${PYTHON:-$root/.venv/bin/python}
[[ -x $python ]] || python=python3

# Import-time needs of torchgeo_stars and the benchmarks that the GPU machine
# lacks, with the versions the test suite runs here (rasterio aside).
packages=(
    torchgeo==0.10.1
    rasterio==1.4.3
    affine==3.0.1
    cligj==0.7.2
    click-plugins==1.1.1.2
    pyproj==3.8.0
    shapely==2.2.0
    geopandas==1.2.0
    segmentation-models-pytorch==0.6.0
    kornia==0.9.0
    kornia-rs==0.2.0
    lightly==1.6.0
    jsonargparse==4.53.0
)

platforms=()
for tag in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 \
    manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 \
    manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done

mkdir -p "$dest"
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${platforms[@]}" \
    --dest "$dest" "${packages[@]}"

# One version of each package only: two stop the install on the GPU machine.
duplicates=$(find "$dest" -name '*.whl' -printf '%f\n' | cut -d- -f1 |
    tr 'A-Z' 'a-z' | sort | uniq -d)
if [[ -n $duplicates ]]; then
    echo "fetch_wheels.sh: error: several versions of: $duplicates in $dest;" \
        "remove the old ones" >&2
    exit 1
fi
size=$(du -sm "$dest" | cut -f1)
echo "$(find "$dest" -name '*.whl' | wc -l) wheels, ${size} MB in $dest"
if ((size > 50)); then
    echo "fetch_wheels.sh: error: ${size} MB of wheels; a device call carries" \
        "64 MiB with the working tree, keep them under 50 MB" >&2
    exit 1
fi
