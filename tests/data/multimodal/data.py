#!/usr/bin/env python3
"""Make the tiny multimodal fixture: optical, SAR, DSM and mask in different CRSs.

Every raster shows the same 100 m x 100 m bright square at a known ground
position, so tests can check that pairing puts it at the same pixels:

* ``optical/optical_20230601.tif``: EPSG:32631 (UTM 31N), 10 m, 64 x 64, 4 bands
  uint16, nodata 0 (a 4 x 4 block in the top-left corner), dated file name.
* ``sar/sar.tif``: EPSG:3857 (Web Mercator), 28 units (about 20 m on the ground),
  2 bands float32 linear backscatter, date-less. Covers only the western part of
  the optical extent; its south-west block is zero / negative (no data).
* ``dsm/dsm.tif``: EPSG:32632 (UTM 32N, the neighbouring zone), 20 m, 1 band
  float32, nodata -9999 (south-east block) and a NaN void, date-less.
* ``mask/mask.tif``: EPSG:32631, the optical grid, uint8 classes, date-less.
* ``far/optical_20230601.tif``: an optical file 100 km away (no overlap).

Run ``python data.py`` in this folder to regenerate the files.
"""

from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent

# Optical grid (UTM 31N)
X0, Y0, RES, SIZE = 735600.0, 4987600.0, 10.0, 64
# Bright square: rows 20-29, cols 12-21 of the optical grid
SQ_XMIN, SQ_XMAX = X0 + 12 * RES, X0 + 22 * RES
SQ_YMIN, SQ_YMAX = Y0 - 30 * RES, Y0 - 20 * RES

PROFILE = {'driver': 'GTiff', 'compress': 'deflate', 'tiled': False}


def in_square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x >= SQ_XMIN) & (x < SQ_XMAX) & (y > SQ_YMIN) & (y <= SQ_YMAX)


def grid_in_utm31(
    crs: str, bbox_utm31: tuple[float, float, float, float], res: float
) -> tuple[rasterio.Affine, int, int, np.ndarray, np.ndarray]:
    """A north-up grid in *crs* covering a UTM 31N box; pixel centres in UTM 31N."""
    to_crs = Transformer.from_crs('EPSG:32631', crs, always_xy=True)
    xmin, ymin, xmax, ymax = bbox_utm31
    xs, ys = to_crs.transform(
        [xmin, xmin, xmax, xmax], [ymin, ymax, ymin, ymax], errcheck=True
    )
    left, top = min(xs), max(ys)
    width = int(np.ceil((max(xs) - left) / res))
    height = int(np.ceil((top - min(ys)) / res))
    transform = from_origin(left, top, res, res)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    cx = left + (cols + 0.5) * res
    cy = top - (rows + 0.5) * res
    back = Transformer.from_crs(crs, 'EPSG:32631', always_xy=True)
    ux, uy = back.transform(cx, cy, errcheck=True)
    return transform, width, height, np.asarray(ux), np.asarray(uy)


def write(
    path: Path,
    data: np.ndarray,
    crs: str,
    transform: rasterio.Affine,
    descriptions: tuple[str, ...] | None = None,
    **kw: float,
) -> None:
    path.parent.mkdir(exist_ok=True)
    count, height, width = data.shape
    with rasterio.open(
        path,
        'w',
        width=width,
        height=height,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        **PROFILE,
        **kw,
    ) as dst:
        dst.write(data)
        if descriptions is not None:
            dst.descriptions = descriptions


def optical(x0: float, y0: float, size: int) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    x = x0 + (cols + 0.5) * RES
    y = y0 - (rows + 0.5) * RES
    square = in_square(x, y)
    bands = []
    for b in range(4):
        band = 300 + 100 * b + 4 * rows + 2 * cols
        band = np.where(square, 3000 + 100 * b, band)
        bands.append(band)
    data = np.stack(bands).astype(np.uint16)
    data[:, 0:4, 0:4] = 0  # nodata block
    return data


def main() -> None:
    # Optical
    transform = from_origin(X0, Y0, RES, RES)
    data = optical(X0, Y0, SIZE)
    path = HERE / 'optical' / 'optical_20230601.tif'
    write(
        path, data, 'EPSG:32631', transform, ('blue', 'green', 'red', 'nir'), nodata=0
    )

    # Far-away optical (no overlap with anything)
    far = optical(X0 + 100_000, Y0, 8)
    write(
        HERE / 'far' / 'optical_20230601.tif',
        far,
        'EPSG:32631',
        from_origin(X0 + 100_000, Y0, RES, RES),
        nodata=0,
    )

    # SAR: Web Mercator, western part only, linear backscatter
    bbox = (X0 - 100, Y0 - 700, X0 + 400, Y0 + 100)
    transform, _, _, ux, uy = grid_in_utm31('EPSG:3857', bbox, 28.0)
    vv = 0.05 + 0.0005 * (uy - (Y0 - 700)) / RES
    vv = np.where(in_square(ux, uy), 1.0, vv)
    nodata_block = (ux < X0 + 200) & (uy < Y0 - 440)
    vv = np.where(nodata_block, 0.0, vv)
    vv = np.where(nodata_block & (ux < X0 + 100), -0.01, vv)
    vh = np.where(vv > 0, vv * 0.2, vv)
    sar = np.stack([vv, vh]).astype(np.float32)
    path = HERE / 'sar' / 'sar.tif'
    write(path, sar, 'EPSG:3857', transform, ('VV', 'VH'))

    # DSM: neighbouring UTM zone, 20 m, voids
    bbox = (X0 - 100, Y0 - SIZE * RES - 100, X0 + SIZE * RES + 100, Y0 + 100)
    transform, _, _, ux, uy = grid_in_utm31('EPSG:32632', bbox, 20.0)
    dsm = 100.0 + 0.05 * (ux - X0)
    dsm = np.where(in_square(ux, uy), 150.0, dsm)
    dsm = np.where((ux >= X0 + 440) & (uy < Y0 - 500), -9999.0, dsm)
    void = (ux >= X0 + 500) & (ux < X0 + 560) & (uy >= Y0 - 150) & (uy < Y0 - 100)
    dsm = np.where(void, np.nan, dsm)
    write(
        HERE / 'dsm' / 'dsm.tif',
        dsm[None].astype(np.float32),
        'EPSG:32632',
        transform,
        nodata=-9999,
    )

    # Mask: optical grid
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    x = X0 + (cols + 0.5) * RES
    y = Y0 - (rows + 0.5) * RES
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[(rows >= 48) & (cols < 16)] = 2
    mask[in_square(x, y)] = 1
    write(
        HERE / 'mask' / 'mask.tif',
        mask[None],
        'EPSG:32631',
        from_origin(X0, Y0, RES, RES),
    )


if __name__ == '__main__':
    main()
