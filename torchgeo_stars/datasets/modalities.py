"""The standard modalities (optical, SAR, DSM) and label masks.

See :mod:`torchgeo_stars.datasets.rasters` for the layout arguments they share.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Unpack

import numpy as np
import torch
from pyproj import CRS
from torch import Tensor
from torchgeo.datasets.utils import Path, Sample

from ..errors import ConfigurationError, DataError
from .rasters import ConfigurableRaster, ModalityLayout, ModalityRaster, RasterLayout


class OpticalRaster(ModalityRaster):
    """Optical imagery (multispectral, RGB, ...); sample key ``image_optical``.

    Defaults: all bands of the files (named by the files' band descriptions, or
    ``band_1`` ...), bilinear resampling, nodata from the files. Invalid pixels
    are NaN (see :class:`ModalityRaster`).

    .. versionadded:: 0.1
    """

    modality = 'optical'


class SARRaster(ModalityRaster):
    """SAR backscatter; sample key ``image_sar``.

    With ``input_scale='linear'`` (default) the files hold linear backscatter:
    values <= 0 are invalid (NaN) and 0 is the default nodata, so it is not
    interpolated into valid pixels. ``to_db=True`` converts to decibels
    (``10 * log10``). With ``input_scale='db'`` values are used as they are and
    nodata comes from the files.

    .. versionadded:: 0.1
    """

    modality = 'sar'

    def __init__(
        self,
        paths: Path | Iterable[Path] = 'data',
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
        *,
        to_db: bool = False,
        input_scale: Literal['linear', 'db'] = 'linear',
        **layout: Unpack[ModalityLayout],
    ) -> None:
        """Index SAR files.

        Args:
            paths: one or more directories to search (recursively) or files.
            crs: CRS to warp to (defaults to the CRS of the first file).
            res: resolution in units of the CRS (defaults to the first file's).
            bands: bands to read, in this order (defaults to all bands).
            transforms: a function/transform applied to every sample.
            cache: if True, cache file handles.
            to_db: convert linear backscatter to decibels.
            input_scale: ``'linear'`` or ``'db'``: what the files hold.
            **layout: ``modality`` and the layout arguments of
                :class:`ConfigurableRaster`.

        Raises:
            ConfigurationError: if *input_scale* is unknown, or *to_db* is set
                for files already in dB.
            DataError: see :class:`ConfigurableRaster`.
        """
        if input_scale not in ('linear', 'db'):
            raise ConfigurationError(
                f"SARRaster: input_scale must be 'linear' or 'db', got {input_scale!r}."
            )
        if to_db and input_scale == 'db':
            raise ConfigurationError(
                'SARRaster: to_db=True converts linear values; the files are already '
                "in dB (input_scale='db'). Drop one of the two."
            )
        self.to_db = to_db
        self.input_scale = input_scale
        if input_scale == 'linear' and layout.get('nodata') is None:
            layout['nodata'] = 0.0
        super().__init__(paths, crs, res, bands, transforms, cache, **layout)

    def _finish_image(self, image: Tensor) -> Tensor:
        if self.input_scale == 'linear':
            image = torch.where(image > 0, image, torch.nan)
            if self.to_db:
                image = 10 * torch.log10(image)
        return image

    def _source_invalid(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        array = super()._source_invalid(array)
        if self.input_scale == 'linear':
            array[~(array > 0)] = np.nan
        return array


class DSMRaster(ModalityRaster):
    """Digital surface model (heights); sample key ``image_dsm``.

    Voids are invalid (NaN): the nodata value (from the files or ``nodata=``),
    NaN, and every value below ``min_valid`` (default -1000, which catches
    undeclared -9999 / -32768 voids).

    .. versionadded:: 0.1
    """

    modality = 'dsm'

    def __init__(
        self,
        paths: Path | Iterable[Path] = 'data',
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
        *,
        min_valid: float | None = -1000.0,
        **layout: Unpack[ModalityLayout],
    ) -> None:
        """Index DSM files.

        Args:
            paths: one or more directories to search (recursively) or files.
            crs: CRS to warp to (defaults to the CRS of the first file).
            res: resolution in units of the CRS (defaults to the first file's).
            bands: bands to read, in this order (defaults to all bands).
            transforms: a function/transform applied to every sample.
            cache: if True, cache file handles.
            min_valid: values below are voids; None keeps every value.
            **layout: ``modality`` and the layout arguments of
                :class:`ConfigurableRaster`.

        Raises:
            DataError: see :class:`ConfigurableRaster`.
        """
        self.min_valid = min_valid
        super().__init__(paths, crs, res, bands, transforms, cache, **layout)

    def _source_invalid(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        array = super()._source_invalid(array)
        if self.min_valid is not None:
            array[array < self.min_valid] = np.nan
        return array


class MaskRaster(ConfigurableRaster):
    """Single-band label raster; sample key ``mask`` (int64, (H, W)).

    Read with nearest-neighbour resampling. Pixels that are nodata or outside
    every file get ``ignore_index`` when it is given; otherwise the files'
    nodata value (or 0), as TorchGeo does.

    .. versionadded:: 0.1
    """

    is_image = False

    def __init__(
        self,
        paths: Path | Iterable[Path] = 'data',
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
        *,
        ignore_index: int | None = None,
        **layout: Unpack[RasterLayout],
    ) -> None:
        """Index label files.

        Args:
            paths: one or more directories to search (recursively) or files.
            crs: CRS to warp to (defaults to the CRS of the first file).
            res: resolution in units of the CRS (defaults to the first file's).
            bands: the one band to read (defaults to the only band).
            transforms: a function/transform applied to every sample.
            cache: if True, cache file handles.
            ignore_index: label given to nodata / uncovered pixels.
            **layout: layout arguments of :class:`ConfigurableRaster`.

        Raises:
            DataError: if more than one band would be read, or see
                :class:`ConfigurableRaster`.
        """
        self.ignore_index = ignore_index
        super().__init__(paths, crs, res, bands, transforms, cache, **layout)
        if len(self.bands) != 1:
            raise DataError(
                f'MaskRaster: the label files under {self.paths} have bands '
                f'{list(self.bands)}; a mask has one band. Pass bands=[<name>] '
                'with the label band.'
            )

    def _fill_mosaic(
        self, mosaic: np.ndarray[Any, Any], filepaths: Sequence[str]
    ) -> np.ndarray[Any, Any]:
        if self.ignore_index is not None:
            fill = float(self.ignore_index)
        elif self.nodata is not None:
            fill = float(self.nodata)
        else:
            nodata = self.open_files.get(str(next(iter(filepaths)))).nodata
            fill = float(nodata) if nodata is not None and np.isfinite(nodata) else 0.0
        mosaic[~np.isfinite(mosaic)] = fill
        return mosaic
