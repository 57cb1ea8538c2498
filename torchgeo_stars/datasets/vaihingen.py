"""ISPRS Vaihingen: IR-R-G true orthophotos and a matching DSM."""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from torchgeo.datasets import Vaihingen2D

from .benchmark import LABEL
from .labels import Colour
from .tiles import TileDataset


class Vaihingen(TileDataset):
    """ISPRS 2D semantic labelling benchmark, Vaihingen: orthophotos + DSM.

    33 areas of about 2000 x 2500 pixels at 9 cm over Vaihingen, each with a
    true orthophoto (infrared, red, green), a DSM and a colour-coded label of
    six classes. TorchGeo's :class:`~torchgeo.datasets.Vaihingen2D` reads the
    orthophotos only; this dataset adds the DSM.

    Read as a tile dataset, modalities paired by file name: the DSM of the
    2D labelling release is the *matching* DSM, resampled onto each
    orthophoto's pixel grid, so pixel ``(i, j)`` of both files is the same
    ground; the release states no CRS for the tiles, so pairing by extent
    would rest on georeferencing one cannot count on.

    Layout under ``root`` (as TorchGeo's ``Vaihingen2D``, plus the DSM)::

        top/top_mosaic_09cm_area1.tif        # 3 x uint8: IR, R, G
        dsm/dsm_09cm_matching_area1.tif      # float32 heights
        top_mosaic_09cm_area1.tif            # colour-coded label (ground truth zip)

    Classes and colours are TorchGeo's (0 clutter/background (255, 0, 0), 1
    impervious surfaces (255, 255, 255), 2 building (0, 0, 255), 3 low
    vegetation (0, 255, 255), 4 tree (0, 255, 0), 5 car (255, 255, 0)); any
    other colour becomes ``ignore_index``. Splits: TorchGeo's
    ``Vaihingen2D.splits`` (16 training areas, 17 test areas); the release has
    no validation split, so :attr:`val_tiles` are held out of training.

    Licence: the ISPRS benchmark data are provided for research on the
    benchmark; follow the ISPRS terms of use. The Vaihingen data were
    provided by the German Society for Photogrammetry, Remote Sensing and
    Geoinformation (DGPF). Cite:

    * Cramer, M., "The DGPF test on digital aerial camera evaluation -
      overview and test design", PFG 2, 2010, 73-82
    * Rottensteiner, F. et al., "The ISPRS benchmark on urban object
      classification and 3D building reconstruction", ISPRS Annals I-3, 2012,
      https://doi.org/10.5194/isprsannals-I-3-293-2012

    .. versionadded:: 0.1
    """

    release = 'ISPRS Vaihingen'
    url = 'https://www.isprs.org/resources/datasets/benchmarks/UrbanSemLab/2d-sem-label-vaihingen.aspx'
    modality_bands: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'optical': ('ir', 'red', 'green'),
        'dsm': ('height',),
    }
    # False colour (IR, R, G as R, G, B): the usual view of these tiles
    composite_bands: ClassVar[Mapping[str, tuple[int, int, int]]] = {
        'optical': (0, 1, 2)
    }
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {
        'optical': 'top/{tile}.tif',
        'dsm': 'dsm/dsm_09cm_matching_{area}.tif',
        LABEL: '{tile}.tif',
    }
    classes = Vaihingen2D.classes
    colors = Vaihingen2D.colormap
    label_colours: ClassVar[tuple[Colour, ...] | None] = Vaihingen2D.colormap
    splits: ClassVar[Mapping[str, Sequence[str]]] = {
        split: [name.removesuffix('.tif') for name in names]
        for split, names in Vaihingen2D.splits.items()
    }
    val_tiles = (
        'top_mosaic_09cm_area11',
        'top_mosaic_09cm_area30',
        'top_mosaic_09cm_area7',
    )

    @classmethod
    def tile_fields(cls, tile: str) -> dict[str, str]:
        """Fields of an area's file names: ``top_mosaic_09cm_area1`` -> ``area1``.

        Args:
            tile: the tile name.

        Returns:
            ``tile`` and ``area``.
        """
        return {'tile': tile, 'area': tile.rsplit('_', 1)[1]}
