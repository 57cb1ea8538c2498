"""WHU-OPT-SAR: GF-1 optical and GF-3 SAR tiles over Hubei, land-use labels."""

import os
from collections.abc import Mapping
from typing import ClassVar

from ..errors import DataError
from .benchmark import LABEL
from .tiles import TileDataset


class WHUOPTSAR(TileDataset):
    """WHU-OPT-SAR: paired optical and SAR tiles with land-use labels.

    100 tiles of 5556 x 3704 pixels at 5 m over Hubei, China: a GF-1 optical
    image (red, green, blue, near infrared; 8 bit), a GF-3 SAR image (one
    band, 8-bit scaled) and a label of seven land-use classes. The tiles are
    read as a tile dataset, modalities paired by file name: the release does
    not document georeferencing one could rely on, and every modality of a
    tile is on the same pixel grid.

    Layout under ``root``::

        optical/NH49E001013.tif   # 4 x uint8: R, G, B, NIR
        sar/NH49E001013.tif       # 1 x uint8
        lbl/NH49E001013.tif       # 1 x uint8: 0 background, 10 farmland, 20 city,
                                  # 30 village, 40 water, 50 forest, 60 road, 70 others

    Classes 0..6 are farmland, city, village, water, forest, road, others
    (label value / 10 - 1); background (0) and any other value become
    ``ignore_index``. The SAR values are used as they are (no dB conversion).

    Split: the dataset authors' division, 20 test tiles (:attr:`splits`) and
    the 80 others for training, of which every eighth (sorted by name) is held
    out for validation (the release has no validation split). An incomplete
    copy (not 80 training tiles) is an error.

    Licence and citation: the authors release WHU-OPT-SAR for research use;
    cite:

    * Li, X. et al., "MCANet: A joint semantic segmentation framework of
      optical and SAR images for land use classification", International
      Journal of Applied Earth Observation and Geoinformation 106, 2022,
      https://doi.org/10.1016/j.jag.2021.102638

    .. versionadded:: 0.1
    """

    release = 'WHU-OPT-SAR'
    url = 'https://github.com/AmberHen/WHU-OPT-SAR-dataset'
    modality_bands: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'optical': ('red', 'green', 'blue', 'nir'),
        'sar': ('sar',),
    }
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {
        'optical': 'optical/{tile}.tif',
        'sar': 'sar/{tile}.tif',
        LABEL: 'lbl/{tile}.tif',
    }
    classes = ('farmland', 'city', 'village', 'water', 'forest', 'road', 'others')
    colors = (
        (255, 215, 0),
        (220, 20, 60),
        (255, 127, 80),
        (30, 144, 255),
        (34, 139, 34),
        (128, 128, 128),
        (160, 82, 45),
    )
    label_values: ClassVar[Mapping[int, int] | None] = {
        10 * (index + 1): index for index in range(7)
    }
    splits: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'test': (
            'NH49E001014',
            'NH49E001017',
            'NH49E002012',
            'NH49E002016',
            'NH49E003014',
            'NH49E003024',
            'NH49E004011',
            'NH49E005011',
            'NH49E005019',
            'NH49E006019',
            'NH49E007014',
            'NH49E008013',
            'NH49E009017',
            'NH49E010020',
            'NH49E011024',
            'NH49E012020',
            'NH49E013010',
            'NH50E007002',
            'NH50E011005',
            'NH50E014003',
        )
    }
    #: Tiles of the release.
    num_tiles = 100
    #: Every this-th training tile (sorted by name) is held out for validation.
    val_every = 8

    def tile_names(self) -> list[str]:
        """Tile names of the split: the test list, or the others found on disk.

        Returns:
            The tile names.

        Raises:
            DataError: if the root lacks ``optical/`` or does not hold the 80
                training tiles.
        """
        if self.split == 'test':
            return list(self.splits['test'])
        self._check_root(['optical'])
        folder = os.path.join(self.root, 'optical')
        if not os.path.isdir(folder):
            raise DataError(
                f'WHUOPTSAR: folder optical/ missing under root {str(self.root)!r}; '
                f'expected layout: {self._layout_description(["optical", "sar", LABEL])} '
                f'({self._where_from()}).'
            )
        test = set(self.splits['test'])
        train = sorted(
            name.removesuffix('.tif')
            for name in os.listdir(folder)
            if name.endswith('.tif') and name.removesuffix('.tif') not in test
        )
        expected = self.num_tiles - len(test)
        if len(train) != expected:
            raise DataError(
                f'WHUOPTSAR: {len(train)} training tiles in {folder} (tiles not in the '
                f'test list), the release has {expected}; the copy is incomplete or '
                f'mixed with other files ({self._where_from()}).'
            )
        val = train[self.val_every - 1 :: self.val_every]
        return val if self.split == 'val' else [t for t in train if t not in val]
