#!/usr/bin/env python3
"""Make the tiny one-file-per-band fixture, Sentinel-2 style.

Two acquisitions (2023-06-01 and 2023-06-11) of tile T31UFQ, each as four
single-band files ``T31UFQ_<date>_<band>.tif`` (bands B02, B03, B04, B08),
EPSG:32631, 10 m, 16 x 16 pixels, uint16. The value of band ``Bnn`` at pixel
(row, col) is ``100 * nn + 16 * row + col`` on the first date and that plus
5000 on the second, so tests can tell bands and dates apart.

Run ``python data.py`` in this folder to regenerate the files.
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
BANDS = ('B02', 'B03', 'B04', 'B08')
DATES = {'20230601': 0, '20230611': 5000}
X0, Y0, RES, SIZE = 735600.0, 4987600.0, 10.0, 16


def value(band: str, offset: int) -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    values: np.ndarray = 100 * int(band[1:]) + SIZE * rows + cols + offset
    return values.astype(np.uint16)


def main() -> None:
    for date, offset in DATES.items():
        for band in BANDS:
            with rasterio.open(
                HERE / f'T31UFQ_{date}_{band}.tif',
                'w',
                driver='GTiff',
                width=SIZE,
                height=SIZE,
                count=1,
                dtype='uint16',
                crs='EPSG:32631',
                transform=from_origin(X0, Y0, RES, RES),
                compress='deflate',
            ) as dst:
                dst.write(value(band, offset)[None])


if __name__ == '__main__':
    main()
