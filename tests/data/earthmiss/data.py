#!/usr/bin/env python3
"""Make the tiny EarthMiss fixture: two 24 x 24 images per city.

Copies the release's layout, dtypes and label encoding:

* ``{City}/images/RGB/{name}.tif``: 3 x uint8;
* ``{City}/images/SAR/{name}_SAR.tif``: 1 x uint8;
* ``{City}/masks/{name}_mask.tif`` (first image of a city) or
  ``{name}_mask.png`` (second image): 1 x uint8, 1..8 classes, 0 no label.

Image ``j`` of city ``c`` (cities in sorted order, ``i = 2 c + j``) is named
``{City}_{k}`` with ``k = 7 - j`` so that listing order and name order of the
two images of a city differ. It holds two classes, rows 0-11 class
``i % 8`` and rows 12-23 class ``(i + 5) % 8`` (mask values class + 1), and
its last column is 0 (no label). The RGB bands are ``class * 30 + band``;
the SAR is the constant ``i`` (so tests can check files are paired by name).

Run ``python data.py`` in this folder to regenerate the files.
"""

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

HERE = Path(__file__).resolve().parent
SIZE = 24
CITIES = sorted(
    [
        'America-Eugene', 'America-Louisville', 'French-Paris', 'Morocco-Casablanca',
        'Nanjing', 'Netherlands-Rotterdam', 'Singapore', 'Australia-PortHedland',
        'America-Pake', 'Russian-Engels', 'America-NewYork', 'Japan-Hakodate',
        'Peru-Callao',
    ]
)  # fmt: skip


def images() -> list[tuple[str, str, int]]:
    """(city, name, i) of every image."""
    return [
        (city, f'{city}_{7 - j}', 2 * c + j)
        for c, city in enumerate(CITIES)
        for j in range(2)
    ]


def image_classes(i: int) -> tuple[int, int]:
    """The two classes of image i (top half, bottom half)."""
    return i % 8, (i + 5) % 8


def write(path: Path, array: np.ndarray, driver: str = 'GTiff') -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {'compress': 'deflate'} if driver == 'GTiff' else {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(
            path,
            'w',
            driver=driver,
            height=SIZE,
            width=SIZE,
            count=array.shape[0],
            dtype=array.dtype,
            **options,
        ) as dst:
            dst.write(array)


def main() -> None:
    for city, name, i in images():
        top, bottom = image_classes(i)
        classes = np.full((SIZE, SIZE), top, dtype=np.int64)
        classes[SIZE // 2 :] = bottom
        rgb = np.stack([classes * 30 + band for band in range(3)]).astype(np.uint8)
        write(HERE / city / 'images' / 'RGB' / f'{name}.tif', rgb)
        sar = np.full((1, SIZE, SIZE), i, dtype=np.uint8)
        write(HERE / city / 'images' / 'SAR' / f'{name}_SAR.tif', sar)
        mask = (classes + 1).astype(np.uint8)
        mask[:, -1] = 0
        if i % 2 == 0:
            write(HERE / city / 'masks' / f'{name}_mask.tif', mask[None])
        else:
            write(HERE / city / 'masks' / f'{name}_mask.png', mask[None], 'PNG')


if __name__ == '__main__':
    main()
