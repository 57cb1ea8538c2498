#!/usr/bin/env python3
"""Make the tiny WHU-OPT-SAR fixture: 100 tiles of 24 x 36 pixels.

Copies the release's layout, dtypes and label encoding, without
georeferencing:

* ``optical/{name}.tif``: 4 x uint8 (R, G, B, NIR);
* ``sar/{name}.tif``: 1 x uint8;
* ``lbl/{name}.tif``: 1 x uint8, 0 background, 10 farmland ... 70 others.

The 20 test tiles carry the official names; the 80 training tiles follow the
same naming pattern (``NH49E0RRCCC``), with names that are not test names.
Each tile holds two classes: columns 0-17 class ``i % 7``, columns 18-35
class ``(i + 3) % 7`` (label values ten times the class plus ten; see
:func:`tile_classes`), and its first row is background (0). The optical
bands are ``class * 30 + band``, the SAR ``200 - class * 20``.

Run ``python data.py`` in this folder to regenerate the files.
"""

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

HERE = Path(__file__).resolve().parent
HEIGHT, WIDTH = 24, 36
TEST = [
    'NH49E001014', 'NH49E001017', 'NH49E002012', 'NH49E002016', 'NH49E003014',
    'NH49E003024', 'NH49E004011', 'NH49E005011', 'NH49E005019', 'NH49E006019',
    'NH49E007014', 'NH49E008013', 'NH49E009017', 'NH49E010020', 'NH49E011024',
    'NH49E012020', 'NH49E013010', 'NH50E007002', 'NH50E011005', 'NH50E014003',
]  # fmt: skip
TRAIN = [f'NH49E0{row:02d}{col:03d}' for row in range(1, 9) for col in range(30, 40)]
TILES = sorted(TEST + TRAIN)


def tile_classes(tile: str) -> tuple[int, int]:
    """The two classes of a tile (left part, right part)."""
    i = TILES.index(tile)
    return i % 7, (i + 3) % 7


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NotGeoreferencedWarning)
        with rasterio.open(
            path,
            'w',
            driver='GTiff',
            compress='deflate',
            height=HEIGHT,
            width=WIDTH,
            count=array.shape[0],
            dtype=array.dtype,
        ) as dst:
            dst.write(array)


def main() -> None:
    assert not set(TRAIN) & set(TEST)
    assert len(TILES) == 100
    for tile in TILES:
        left, right = tile_classes(tile)
        classes = np.full((HEIGHT, WIDTH), left, dtype=np.int64)
        classes[:, WIDTH // 2 :] = right
        optical = np.stack([classes * 30 + band for band in range(4)]).astype(np.uint8)
        write(HERE / 'optical' / f'{tile}.tif', optical)
        write(HERE / 'sar' / f'{tile}.tif', (200 - classes * 20).astype(np.uint8)[None])
        label = (classes * 10 + 10).astype(np.uint8)
        label[0] = 0
        write(HERE / 'lbl' / f'{tile}.tif', label[None])


if __name__ == '__main__':
    main()
