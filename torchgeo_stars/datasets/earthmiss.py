"""EarthMiss: sub-metre RGB and SAR over 13 cities, for missing-modality segmentation."""

import os
from collections.abc import Mapping
from typing import ClassVar

from ..errors import DataError
from .benchmark import LABEL
from .tiles import TileDataset


class EarthMiss(TileDataset):
    """EarthMiss: paired RGB and SAR images of 13 cities with land-cover labels.

    Images at 0.6 m of 13 cities, each with an RGB image, a SAR image and a
    label of eight land-cover classes; built for segmentation with missing
    modalities. Read as a tile dataset: the files of one image are matched by
    name (``_SAR`` and ``_mask`` suffixes), never by listing order.

    Layout under ``root``::

        Nanjing/images/RGB/{name}.tif        # 3 x uint8
        Nanjing/images/SAR/{name}_SAR.tif    # 1 x uint8
        Nanjing/masks/{name}_mask.tif        # or .png; 1..8, 0 = no label

    Mask values 1..8 are background, building, road, water, barren, forest,
    agricultural, playground: classes 0..7 (value - 1); 0 and any other value
    become ``ignore_index``. Splits: the authors' split by city
    (:attr:`splits`): every image of a split's cities.

    Licence and citation: distributed by its authors (RSIDEA group, Wuhan
    University) for research use, under the terms given with the release;
    cite:

    * Zhou, Y., Ma, A., Wang, J., Chen, Z. and Zhong, Y., "Remote sensing meta
      modal representation for missing modality land cover mapping: from
      EarthMiss dataset to MetaRS method", Remote Sensing of Environment,
      2025, https://doi.org/10.1016/j.rse.2025.115132

    .. versionadded:: 0.1
    """

    release = 'EarthMiss'
    url = 'its authors (see https://doi.org/10.1016/j.rse.2025.115132)'
    modality_bands: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'optical': ('red', 'green', 'blue'),
        'sar': ('sar',),
    }
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {
        'optical': '{city}/images/RGB/{name}.tif',
        'sar': '{city}/images/SAR/{name}_SAR.tif',
        LABEL: ('{city}/masks/{name}_mask.tif', '{city}/masks/{name}_mask.png'),
    }
    classes = (
        'background',
        'building',
        'road',
        'water',
        'barren',
        'forest',
        'agricultural',
        'playground',
    )
    colors = (
        (255, 255, 255),
        (255, 0, 0),
        (255, 255, 0),
        (0, 0, 255),
        (159, 129, 183),
        (0, 255, 0),
        (255, 195, 128),
        (165, 0, 165),
    )
    label_values: ClassVar[Mapping[int, int] | None] = {
        value: value - 1 for value in range(1, 9)
    }
    #: The authors' split: split -> cities.
    splits: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'train': (
            'America-Eugene',
            'America-Louisville',
            'French-Paris',
            'Morocco-Casablanca',
            'Nanjing',
            'Netherlands-Rotterdam',
            'Singapore',
        ),
        'val': ('Australia-PortHedland', 'America-Pake', 'Russian-Engels'),
        'test': ('America-NewYork', 'Japan-Hakodate', 'Peru-Callao'),
    }

    def tile_names(self) -> list[str]:
        """Every image of the split's cities, as ``'{city}/{name}'``.

        Returns:
            The image names, city by city, sorted.

        Raises:
            DataError: if the root or a city's ``images/RGB`` folder is missing
                or empty.
        """
        self._check_root(list(self.file_patterns))
        names = []
        for city in self.split_tiles(self.split):
            folder = os.path.join(self.root, city, 'images', 'RGB')
            found = (
                sorted(f for f in os.listdir(folder) if f.endswith('.tif'))
                if os.path.isdir(folder)
                else []
            )
            if not found:
                raise DataError(
                    f'EarthMiss: no image of city {city!r} (split {self.split!r}): '
                    f'{folder} is missing or holds no .tif. Expected layout: '
                    f'{self._layout_description(list(self.file_patterns))} '
                    f'({self._where_from()}).'
                )
            names += [f'{city}/{f.removesuffix(".tif")}' for f in found]
        return names

    @classmethod
    def tile_fields(cls, tile: str) -> dict[str, str]:
        """Fields of an image's file names: ``'{city}/{name}'``.

        Args:
            tile: ``'{city}/{name}'``.

        Returns:
            ``tile``, ``city`` and ``name``.
        """
        city, name = tile.split('/', 1)
        return {'tile': tile, 'city': city, 'name': name}
