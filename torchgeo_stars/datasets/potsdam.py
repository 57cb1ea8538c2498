"""ISPRS Potsdam: RGB + infrared true orthophotos, a DSM and an nDSM, paired by extent."""

import contextlib
import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from torchgeo.datasets import Potsdam2D
from torchgeo.datasets.utils import Path, Sample

from ..errors import ConfigurationError, DataError
from .benchmark import LABEL, BenchmarkDataset
from .labels import ColourMaskRaster
from .modalities import DSMRaster, OpticalRaster
from .normalization import ModalityStatistics
from .pairing import PairedDataset
from .rasters import ModalityRaster
from .vrt import vrt_on_grid_of

#: Folder, under the root, of the VRTs placing the nDSM JPEGs on the DSM grid.
NDSM_VRT_FOLDER = os.path.join('.torchgeo_stars', 'ndsm')


class Potsdam(BenchmarkDataset, PairedDataset):
    """ISPRS 2D semantic labelling benchmark, Potsdam: orthophotos + DSM (+ nDSM).

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
        1_DSM_normalisation/dsm_potsdam_02_10_normalized_lastools.jpg  # optional

    The normalised DSM (nDSM: 8-bit heights above the ground) is an optional
    modality, ``'ndsm'``, loaded only when named:
    ``modalities=['optical', 'dsm', 'ndsm']`` or ``['optical', 'ndsm']`` (the
    default stays optical + DSM). Its JPEGs may carry no georeferencing, so
    each is placed on the grid of its DSM tile (same width and height,
    checked): a small GDAL VRT giving the JPEG the DSM's CRS and transform is
    written once under ``<root>/.torchgeo_stars/ndsm/`` and rewritten only when
    the JPEG (or the DSM's grid) changes; the JPEG's pixels are read unchanged
    (see :func:`~torchgeo_stars.datasets.vrt.vrt_on_grid_of`). The DSM file of
    every tile must then be present even without ``'dsm'`` among the
    modalities.

    Classes and colours are TorchGeo's (0 clutter/background (255, 0, 0), 1
    impervious surfaces (255, 255, 255), 2 building (0, 0, 255), 3 low
    vegetation (0, 255, 255), 4 tree (0, 255, 0), 5 car (255, 255, 0)); any
    other colour (the black eroded boundaries of the ``noBoundary`` labels)
    becomes ``ignore_index``. Splits: TorchGeo's ``Potsdam2D.splits`` (24
    training tiles, 14 test tiles); the release has no validation split, so
    :attr:`val_tiles` are held out of the training tiles.

    Sample keys: ``image_optical`` (4 bands), ``image_dsm`` (1 band),
    ``image_ndsm`` (1 band, when loaded), ``mask``,
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
        'ndsm': ('normalised_height',),
    }
    default_modalities = ('optical', 'dsm')
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {
        'optical': '4_Ortho_RGBIR/{tile}_RGBIR.tif',
        'dsm': '1_DSM/dsm_potsdam_{row:0>2}_{col:0>2}.tif',
        'ndsm': '1_DSM_normalisation/dsm_potsdam_{row:0>2}_{col:0>2}_normalized_lastools.jpg',
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
            modalities: any of ``'optical'``, ``'dsm'`` and ``'ndsm'``
                (default: optical + dsm).
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
            DataError: if the root or a file of the split is missing, an nDSM
                JPEG differs in size from its DSM tile, or the nDSM VRT folder
                cannot be written.
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
        keys = [*self.modalities, label_key]
        if 'ndsm' in keys and 'dsm' not in keys:
            keys.append('dsm')  # the nDSM is read on its DSM tile's grid
        files = self._locate(self.tiles, keys)
        with contextlib.redirect_stdout(io.StringIO()):
            images = {name: self._raster(name, files) for name in self.modalities}
            mask = ColourMaskRaster(
                [f[label_key] for f in files], self.colors, ignore_index
            )
        super().__init__(images, mask, statistics=statistics, transforms=transforms)

    def _raster(self, name: str, files: Sequence[Mapping[str, str]]) -> ModalityRaster:
        """The raster dataset of one modality over the split's files.

        Args:
            name: ``'optical'``, ``'dsm'`` or ``'ndsm'``.
            files: the files of every tile (see :meth:`_locate`).

        Returns:
            The modality's raster dataset.

        Raises:
            DataError: if an nDSM JPEG cannot be placed on its DSM grid.
        """
        bands = self.modality_bands[name]
        if name == 'optical':
            return OpticalRaster(
                [f[name] for f in files], all_bands=bands, filename_glob='*.tif'
            )
        if name == 'dsm':
            return DSMRaster(
                [f[name] for f in files], all_bands=bands, filename_glob='*.tif'
            )
        folder = os.path.join(self.root, NDSM_VRT_FOLDER)
        try:
            vrts = [vrt_on_grid_of(f['ndsm'], f['dsm'], folder) for f in files]
        except DataError as err:
            raise DataError(f'{type(self).__name__}: {err}') from err
        return DSMRaster(vrts, modality='ndsm', all_bands=bands, filename_glob='*.vrt')

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
