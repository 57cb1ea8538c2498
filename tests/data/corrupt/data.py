#!/usr/bin/env python3
"""Make the broken-file fixtures.

* ``unreadable/good.tif``: a valid 8 x 8 GeoTIFF (EPSG:32631);
  ``unreadable/garbage.tif``: not a GeoTIFF at all (rasterio cannot open it).
* ``truncated/truncated.tif``: a GeoTIFF cut in the middle of its pixel data;
  its header opens but reading the pixels fails.

Run ``python data.py`` in this folder to regenerate the files.
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent


def write(path: Path, size: int) -> None:
    path.parent.mkdir(exist_ok=True)
    rows, cols = np.mgrid[0:size, 0:size]
    data = np.stack([rows * size + cols + 1, rows + cols + 1]).astype(np.uint16)
    with rasterio.open(
        path,
        'w',
        driver='GTiff',
        width=size,
        height=size,
        count=2,
        dtype='uint16',
        crs='EPSG:32631',
        transform=from_origin(735600.0, 4987600.0, 10.0, 10.0),
    ) as dst:
        dst.write(data)


def main() -> None:
    write(HERE / 'unreadable' / 'good.tif', 8)
    (HERE / 'unreadable' / 'garbage.tif').write_bytes(b'this is not a GeoTIFF\n' * 8)

    # Uncompressed and striped: the header and tags come first, so cutting the
    # file in half keeps it openable but loses pixel data.
    path = HERE / 'truncated' / 'truncated.tif'
    write(path, 32)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


if __name__ == '__main__':
    main()
