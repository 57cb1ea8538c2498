#!/usr/bin/env python3
"""Make the tiny ISPRS Vaihingen fixture: every official area, a few pixels.

Copies the release's layout, names, dtypes and encodings, without
georeferencing (as the 2D labelling release states none):

* ``top/top_mosaic_09cm_area{n}.tif``: 3 x uint8 (IR, R, G);
* ``dsm/dsm_09cm_matching_area{n}.tif``: 1 x float32 heights, same grid;
* ``top_mosaic_09cm_area{n}.tif``: 3 x uint8, ISPRS colour code.

Areas are 20 x 28 pixels (odd areas) or 28 x 20 (even ones), so tiles are not
square and not a whole number of 16-pixel patches. Each holds two classes:
rows above the middle class ``n % 6``, the others ``(n + 2) % 6`` (see
:func:`area_classes`); the optical bands are ``class * 40 + band`` and the
DSM ``class * 10 + 0.25``.

Run ``python data.py`` in this folder to regenerate the files.
"""

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from torchgeo.datasets import Vaihingen2D

HERE = Path(__file__).resolve().parent
AREAS = sorted(
    int(name.removesuffix('.tif').rsplit('area', 1)[1])
    for names in Vaihingen2D.splits.values()
    for name in names
)


def area_shape(area: int) -> tuple[int, int]:
    """(height, width) of an area's files."""
    return (20, 28) if area % 2 else (28, 20)


def area_classes(area: int) -> tuple[int, int]:
    """The two classes of an area (top half, bottom half)."""
    return area % 6, (area + 2) % 6


def class_map(area: int) -> np.ndarray:
    height, width = area_shape(area)
    top, bottom = area_classes(area)
    classes = np.full((height, width), top, dtype=np.int64)
    classes[height // 2 :] = bottom
    return classes


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(
            path,
            'w',
            driver='GTiff',
            compress='deflate',
            height=array.shape[1],
            width=array.shape[2],
            count=array.shape[0],
            dtype=array.dtype,
        ) as dst:
            dst.write(array)


def main() -> None:
    colours = np.array(Vaihingen2D.colormap, dtype=np.uint8)
    for area in AREAS:
        classes = class_map(area)
        optical = np.stack([classes * 40 + band for band in range(3)]).astype(np.uint8)
        write(HERE / 'top' / f'top_mosaic_09cm_area{area}.tif', optical)
        dsm = (classes * 10 + 0.25).astype(np.float32)[np.newaxis]
        write(HERE / 'dsm' / f'dsm_09cm_matching_area{area}.tif', dsm)
        write(
            HERE / f'top_mosaic_09cm_area{area}.tif',
            np.moveaxis(colours[classes], -1, 0),
        )


if __name__ == '__main__':
    main()
