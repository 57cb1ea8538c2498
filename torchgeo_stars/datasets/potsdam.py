"""ISPRS Potsdam: RGB + infrared true orthophotos and a DSM, paired by extent."""

import contextlib
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from torchgeo.datasets import Potsdam2D
from torchgeo.datasets.utils import Path, Sample

from ..errors import ConfigurationError
from .benchmark import LABEL, BenchmarkDataset
from .labels import ColourMaskRaster
from .modalities import DSMRaster, OpticalRaster
from .normalization import ModalityStatistics
from .pairing import PairedDataset
from .rasters import ModalityRaster


class Potsdam(BenchmarkDataset, PairedDataset):
    """ISPRS 2D semantic labelling benchmark, Potsdam: orthophotos + DSM.

    38 tiles of 6000 x 6000 pixels at 5 cm over Potsdam (EPSG:32633), each with
    a true orthophoto (red, green, blue, infrared), a digital surface model
    and a colour-coded label of six classes. Unlike TorchGeo's
    :class:`~torchgeo.datasets.Potsdam2D` (orthophotos only) the DSM is read
    too, so the optical + DSM setting of the STARS paper is reachable.

    The files are GeoTIFFs, so the dataset is a
    :class:`~torchgeo_stars.datasets.PairedDataset` of
    :class:`~torchgeo_stars.datasets.OpticalRaster`,
    :class:`~torchgeo_stars.datasets.DSMRaster` and a colour-decoding label
    raster over the files of one split: the modalities are paired by extent,
    TorchGeo's samplers draw windows from it, and a model trained on it
    predicts on the release's GeoTIFFs with ``torchgeo-stars predict-geotiff``.

    Layout under ``root`` (as TorchGeo's ``Potsdam2D``, plus the DSM)::

        4_Ortho_RGBIR/top_potsdam_2_10_RGBIR.tif   # 4 x uint8: R, G, B, IR
        1_DSM/dsm_potsdam_02_10.tif                # float32 heights
        top_potsdam_2_10_label.tif                 # 5_Labels_all.zip, unpacked
        5_Labels_all_noBoundary/top_potsdam_2_10_label_noBoundary.tif  # optional

    Classes and colours are TorchGeo's (0 clutter/background (255, 0, 0), 1
    impervious surfaces (255, 255, 255), 2 building (0, 0, 255), 3 low
    vegetation (0, 255, 255), 4 tree (0, 255, 0), 5 car (255, 255, 0)); any
    other colour (the black eroded boundaries of the ``noBoundary`` labels)
    becomes ``ignore_index``. Splits: TorchGeo's ``Potsdam2D.splits`` (24
    training tiles, 14 test tiles); the release has no validation split, so
    :attr:`val_tiles` are held out of the training tiles.

    Sample keys: ``image_optical`` (4 bands), ``image_dsm`` (1 band), ``mask``,
    ``available``, ``bounds``, ``transform`` (see
    :class:`~torchgeo_stars.datasets.PairedDataset`).

    Licence: the ISPRS benchmark data are provided for research on the
    benchmark; request them from the ISPRS and follow its terms of use. If you
    use the dataset, cite:

    * Rottensteiner, F. et al., "The ISPRS benchmark on urban object
      classification and 3D building reconstruction", ISPRS Annals I-3, 2012,
      https://doi.org/10.5194/isprsannals-I-3-293-2012

    .. versionadded:: 0.1
    """

    release = 'ISPRS Potsdam'
    url = 'https://www.isprs.org/resources/datasets/benchmarks/UrbanSemLab/2d-sem-label-potsdam.aspx'
    modality_bands: ClassVar[Mapping[str, tuple[str, ...]]] = {
        'optical': ('red', 'green', 'blue', 'ir'),
        'dsm': ('height',),
    }
    quicklook_bands: ClassVar[Mapping[str, tuple[int, int, int]]] = {
        'optical': (0, 1, 2)
    }
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {
        'optical': '4_Ortho_RGBIR/{tile}_RGBIR.tif',
        'dsm': '1_DSM/dsm_potsdam_{row:0>2}_{col:0>2}.tif',
        LABEL: '{tile}_label.tif',
        'label_no_boundary': '5_Labels_all_noBoundary/{tile}_label_noBoundary.tif',
    }
    classes = Potsdam2D.classes
    colors = Potsdam2D.colormap
    splits = Potsdam2D.splits
    val_tiles = (
        'top_potsdam_2_11',
        'top_potsdam_4_10',
        'top_potsdam_6_8',
        'top_potsdam_7_11',
    )

    def __init__(
        self,
        root: Path = 'data',
        split: str = 'train',
        modalities: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        ignore_index: int = 255,
        labels: Literal['full', 'no_boundary'] = 'full',
        statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None = None,
    ) -> None:
        """Index the files of one split.

        Args:
            root: folder the release is unpacked in.
            split: ``'train'``, ``'val'`` or ``'test'``.
            modalities: ``'optical'``, ``'dsm'`` or both (default).
            transforms: a function/transform applied to every sample.
            ignore_index: class index of unlabelled pixels.
            labels: ``'full'`` (``top_potsdam_*_label.tif``) or
                ``'no_boundary'`` (eroded boundaries ignored, the official
                evaluation labels).
            statistics: per-modality statistics; invalid pixels (DSM voids)
                are filled with the band mean (see
                :class:`~torchgeo_stars.datasets.PairedDataset`).

        Raises:
            ConfigurationError: if an argument is invalid.
            DataError: if the root or a file of the split is missing.
        """
        if labels not in ('full', 'no_boundary'):
            raise ConfigurationError(
                f"Potsdam: labels must be 'full' or 'no_boundary', got {labels!r}."
            )
        self.root = root
        self.split = split
        self.modalities = self.select_modalities(modalities)
        self.ignore_index = ignore_index
        self.tiles = self.split_tiles(split)
        label_key = LABEL if labels == 'full' else 'label_no_boundary'
        files = self._locate(self.tiles, [*self.modalities, label_key])
        classes: dict[str, type[ModalityRaster]] = {
            'optical': OpticalRaster,
            'dsm': DSMRaster,
        }
        with contextlib.redirect_stdout(io.StringIO()):
            images = {
                name: classes[name](
                    [f[name] for f in files],
                    all_bands=self.modality_bands[name],
                    filename_glob='*.tif',
                )
                for name in self.modalities
            }
            mask = ColourMaskRaster(
                [f[label_key] for f in files], self.colors, ignore_index
            )
        super().__init__(images, mask, statistics=statistics, transforms=transforms)

    @classmethod
    def tile_fields(cls, tile: str) -> dict[str, str]:
        """Fields of a tile's file names: ``top_potsdam_2_10`` -> row 2, col 10.

        Args:
            tile: the tile name.

        Returns:
            ``tile``, ``row`` and ``col`` (the DSM pads them to two digits).
        """
        _, _, row, col = tile.split('_')
        return {'tile': tile, 'row': row, 'col': col}
