#!/usr/bin/env python3
"""Make the tiny ISPRS Potsdam fixture: every official tile, 24 x 24 pixels.

Copies the release's layout, names, dtypes and encodings:

* ``4_Ortho_RGBIR/top_potsdam_{a}_{b}_RGBIR.tif``: 4 x uint8 (R, G, B, IR);
* ``1_DSM/dsm_potsdam_{aa}_{bb}.tif``: 1 x float32 heights (zero-padded);
* ``top_potsdam_{a}_{b}_label.tif``: 3 x uint8, ISPRS colour code;
* ``5_Labels_all_noBoundary/top_potsdam_{a}_{b}_label_noBoundary.tif``: the
  same with the boundary between the two classes in black;
* ``1_DSM_normalisation/dsm_potsdam_{aa}_{bb}_normalized_lastools.jpg``: the
  nDSM, a 1-band 8-bit JPEG without georeferencing (no world file).

EPSG:32633, 5 cm pixels; tile (a, b) lies at column a, row b of a grid of
tiles. Each tile holds two classes: columns 0-11 class ``i % 6``, columns
12-23 class ``(i + 3) % 6``, i the tile's position in the sorted tile list
(see :func:`tile_classes`). The optical bands are ``class * 40 + band`` and
the DSM ``class * 10 + 0.5`` (so tests can check pairing pixel for pixel);
the nDSM ``class * 30 + row`` before JPEG compression (tests compare it with
the decoded JPEG, so the row gradient catches a misplaced window).

Run ``python data.py`` in this folder to regenerate the files.
"""

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from torchgeo.datasets import Potsdam2D

HERE = Path(__file__).resolve().parent
SIZE = 24
RES = 0.05
X0, Y0 = 366000.0, 5808000.0
PROFILE = {'driver': 'GTiff', 'compress': 'deflate', 'crs': 'EPSG:32633'}
TILES = sorted(t for names in Potsdam2D.splits.values() for t in names)


def tile_classes(tile: str) -> tuple[int, int]:
    """The two classes of a tile (left half, right half)."""
    i = TILES.index(tile)
    return i % 6, (i + 3) % 6


def class_map(tile: str) -> np.ndarray:
    left, right = tile_classes(tile)
    classes = np.full((SIZE, SIZE), left, dtype=np.int64)
    classes[:, SIZE // 2 :] = right
    return classes


def write(path: Path, array: np.ndarray, transform: rasterio.Affine) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        'w',
        height=SIZE,
        width=SIZE,
        count=array.shape[0],
        dtype=array.dtype,
        transform=transform,
        **PROFILE,
    ) as dst:
        dst.write(array)


def main() -> None:
    colours = np.array(Potsdam2D.colormap, dtype=np.uint8)
    for tile in TILES:
        _, _, a, b = tile.split('_')
        transform = from_origin(
            X0 + int(a) * SIZE * RES, Y0 - int(b) * SIZE * RES, RES, RES
        )
        classes = class_map(tile)
        optical = np.stack([classes * 40 + band for band in range(4)]).astype(np.uint8)
        write(HERE / '4_Ortho_RGBIR' / f'{tile}_RGBIR.tif', optical, transform)
        dsm = (classes * 10 + 0.5).astype(np.float32)[np.newaxis]
        write(
            HERE / '1_DSM' / f'dsm_potsdam_{int(a):02d}_{int(b):02d}.tif',
            dsm,
            transform,
        )
        ndsm = HERE / '1_DSM_normalisation'
        ndsm.mkdir(exist_ok=True)
        rows = np.arange(SIZE)[:, np.newaxis]
        Image.fromarray((classes * 30 + rows).astype(np.uint8)).save(
            ndsm / f'dsm_potsdam_{int(a):02d}_{int(b):02d}_normalized_lastools.jpg',
            quality=95,
        )
        rgb = np.moveaxis(colours[classes], -1, 0)
        write(HERE / f'{tile}_label.tif', rgb, transform)
        eroded = rgb.copy()
        eroded[:, :, SIZE // 2 - 1 : SIZE // 2 + 1] = 0
        write(
            HERE / '5_Labels_all_noBoundary' / f'{tile}_label_noBoundary.tif',
            eroded,
            transform,
        )


if __name__ == '__main__':
    main()
