"""Input rasters of one modality, read window by window through TorchGeo.

Each modality's files (one, several, or a folder) become one of the project's
modality rasters (:class:`~torchgeo_stars.datasets.OpticalRaster`,
:class:`~torchgeo_stars.datasets.SARRaster`, ... or a plain
:class:`~torchgeo_stars.datasets.ModalityRaster`; all TorchGeo
``RasterDataset``) in the output CRS and resolution, so mosaicking several
files, reprojecting other CRSs or pixel sizes and marking invalid pixels (NaN)
is theirs and TorchGeo's. This module adds what inference needs on top:
checking every file before the long run starts (readable, the right bands,
some valid pixel in the output area: :func:`check_valid_pixels`) and skipping
windows no file reaches.
"""

import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.errors
import shapely
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from .. import datasets
from ..datasets import ModalityRaster
from ..errors import ConfigurationError, DataError, DataWarning
from .grid import Bounds, OutputGrid, bounds_intersect, format_bounds

#: Side of the blocks :func:`has_valid_pixel` reads at a time, in file pixels.
SCAN_BLOCK = 1024

#: File name endings (lower case) taken from a folder given as input.
RASTER_SUFFIXES = ('.tif', '.tiff', '.vrt')


@dataclass(frozen=True)
class RasterInfo:
    """What inference needs to know about one input file.

    Attributes:
        path: The file.
        crs: Its CRS.
        transform: Its geotransform.
        width: Columns.
        height: Rows.
        count: Number of bands.
        nodata: Its nodata value, if any.
        bounds: ``(left, bottom, right, top)`` in its CRS.
    """

    path: Path
    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    width: int
    height: int
    count: int
    nodata: float | None
    bounds: Bounds


def raster_class(modality: str) -> type[ModalityRaster]:
    """The project's raster dataset class for a modality.

    The :class:`~torchgeo_stars.datasets.ModalityRaster` subclass exported by
    :mod:`torchgeo_stars.datasets` whose ``modality`` is *modality* (so that
    modality's own validity rules apply, e.g. SAR's), else
    :class:`~torchgeo_stars.datasets.ModalityRaster` itself.

    Args:
        modality: Modality name.

    Returns:
        The class.
    """
    for name in datasets.__all__:
        candidate = getattr(datasets, name)
        if (
            isinstance(candidate, type)
            and issubclass(candidate, ModalityRaster)
            and candidate.modality == modality
        ):
            return candidate
    return ModalityRaster


def expand_paths(
    modality: str, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
) -> list[Path]:
    """Turn what the user gave for a modality into a list of files.

    Args:
        modality: Modality name, for messages.
        paths: A file, a folder (searched recursively for ``.tif``, ``.tiff``
            and ``.vrt`` files, in sorted order), or a sequence of them.

    Returns:
        The files, in the order given (folders sorted), without duplicates.

    Raises:
        DataError: If a path does not exist or a folder holds no raster.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise DataError(f'no file given for modality {modality!r}.')
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob('*')
                if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
            )
            if not found:
                raise DataError(
                    f'{modality} input folder {path} holds no '
                    f'{"/".join(RASTER_SUFFIXES)} file.'
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f'{modality} input {path} does not exist.')
    unique: list[Path] = []
    for file in files:
        if file.resolve() not in {u.resolve() for u in unique}:
            unique.append(file)
    return unique


def inspect_raster(modality: str, path: Path, bands: int) -> RasterInfo:
    """Open a file, check it fits the model and can be read to its last pixel.

    Args:
        modality: Modality name, for messages.
        path: The file.
        bands: Band count the model expects for this modality.

    Returns:
        The file's grid and metadata.

    Raises:
        DataError: If the file cannot be opened or read (e.g. truncated) or has
            no CRS.
        ConfigurationError: If its band count is not *bands*.
    """
    try:
        with rasterio.open(path) as src:
            info = RasterInfo(
                path=path,
                crs=src.crs,
                transform=src.transform,
                width=src.width,
                height=src.height,
                count=src.count,
                nodata=src.nodata,
                bounds=tuple(src.bounds),
            )
            if info.crs is None:
                raise DataError(
                    f'{modality} input {path} has no coordinate reference system; '
                    'georeference it first.'
                )
            if info.count != bands:
                raise ConfigurationError(
                    f'{modality} input {path} has {info.count} bands but the model '
                    f'was trained on {bands} {modality} bands; give a file with '
                    f'the same bands, in the same order, as in training.'
                )
            # The last block is where a truncated file fails first.
            src.read(window=Window(src.width - 1, src.height - 1, 1, 1))
            src.read(window=Window(0, 0, 1, 1))
    except rasterio.errors.RasterioError as error:
        raise DataError(
            f'{modality} input {path} cannot be read as a raster ({error}); check '
            'that it is a complete GeoTIFF.'
        ) from error
    return info


def union_bounds(infos: Sequence[RasterInfo], crs: rasterio.crs.CRS) -> Bounds:
    """Union of the files' bounds, in *crs*.

    Args:
        infos: Files of one modality.
        crs: CRS to express the bounds in.

    Returns:
        ``(left, bottom, right, top)``.
    """
    boxes = [
        info.bounds
        if info.crs == crs
        else transform_bounds(info.crs, crs, *info.bounds, densify_pts=21)
        for info in infos
    ]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


class ModalitySource:
    """One modality's files, read on the output grid window by window.

    Args:
        modality: Modality name.
        infos: Its files, already inspected.
        grid: The output grid (its CRS and pixel size are used for reading).
        options: Keyword arguments for the modality's raster class (e.g.
            ``{'to_db': True}`` for SAR, ``{'nodata': 0}``), as in training.
    """

    def __init__(
        self,
        modality: str,
        infos: Sequence[RasterInfo],
        grid: OutputGrid,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.modality = modality
        self.infos = list(infos)
        self.grid = grid
        cls = raster_class(modality)
        # Windows are read about once each: the warped-tile cache would only
        # hold memory (the overlap between windows is small)
        kwargs: dict[str, Any] = {
            'filename_glob': '*',
            'warp_cache_mb': 0,
            **(options or {}),
        }
        if cls is ModalityRaster:
            kwargs['modality'] = modality
        try:
            self.dataset = cls(
                [str(info.path) for info in infos],
                crs=pyproj.CRS.from_wkt(grid.crs.to_wkt()),
                res=grid.res,
                **kwargs,
            )
        except TypeError as error:
            raise ConfigurationError(
                f'{modality}: reader options {dict(options or {})} are not accepted '
                f'by {cls.__name__} ({error}).'
            ) from error
        self.footprints = list(self.dataset.index.geometry)
        left, bottom, right, top = self.dataset.index.total_bounds
        self.bounds: Bounds = (float(left), float(bottom), float(right), float(top))

    def describe(self) -> str:
        """The files and their union bounds in the output CRS, for messages.

        Returns:
            A one-line description.
        """
        names = ', '.join(str(info.path) for info in self.infos)
        return f'{self.modality} ({names}) with bounds {format_bounds(self.bounds)}'

    def touches(self, bounds: Bounds) -> bool:
        """Whether a file of this modality reaches into a window.

        Args:
            bounds: The window's ``(left, bottom, right, top)`` in the output CRS.

        Returns:
            True if some file's footprint intersects the window's interior.
        """
        window = shapely.box(*bounds)
        return any(
            g.intersects(window) and not g.touches(window) for g in self.footprints
        )

    def read(
        self, bounds: Bounds, shape: tuple[int, int]
    ) -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.bool_]] | None:
        """Read a window of the output grid.

        Args:
            bounds: The window's ``(left, bottom, right, top)`` in the output CRS.
            shape: The window's ``(rows, columns)``.

        Returns:
            ``(C, rows, columns)`` float32 values (NaN where invalid) and the mask
            of valid pixels (some band valid: inside a file, not nodata, and
            passing the modality's own rules), or None if no file reaches the
            window.

        Raises:
            DataError: If a file fails to read (e.g. it is truncated).
        """
        if not self.touches(bounds):
            return None
        left, bottom, right, top = bounds
        xres, yres = self.grid.res
        try:
            sample = self.dataset[left:right:xres, bottom:top:yres]
        except IndexError:
            return None
        except rasterio.errors.RasterioError as error:
            names = ', '.join(str(info.path) for info in self.infos)
            raise DataError(
                f'{self.modality}: reading window {format_bounds(bounds)} of '
                f'({names}) failed ({error}); a file may be truncated or corrupt.'
            ) from error
        data = sample[self.dataset.image_key].numpy().astype(np.float32, copy=False)
        if data.shape[-2:] != shape:
            raise DataError(
                f'{self.modality}: read a window of shape {data.shape[-2:]} instead '
                f'of {shape} at {format_bounds(bounds)}; this is a bug, please '
                'report it.'
            )
        return data, np.isfinite(data).any(axis=0)


def _scan_windows(window: Window, block: int) -> Iterator[Window]:
    """Split a window into blocks of at most *block* x *block* pixels."""
    col_off, row_off = int(window.col_off), int(window.row_off)
    width, height = int(window.width), int(window.height)
    for row in range(row_off, row_off + height, block):
        for col in range(col_off, col_off + width, block):
            yield Window(
                col,
                row,
                min(block, col_off + width - col),
                min(block, row_off + height - row),
            )


def has_valid_pixel(
    info: RasterInfo,
    area: Bounds,
    area_crs: rasterio.crs.CRS,
    nodata: float | None = None,
) -> bool | None:
    """Whether a file has a valid pixel inside an area.

    The part of the file inside *area* is read block by block and the scan
    stops at the first valid pixel, so a file with data costs one block. A
    pixel is valid when some band is finite and differs from the file's nodata
    value and from *nodata*; the modality's own rules (e.g. a DSM's
    ``min_valid``) are not applied here.

    Args:
        info: The file.
        area: ``(left, bottom, right, top)`` in *area_crs*.
        area_crs: CRS of *area*.
        nodata: The reader option's nodata value, if any.

    Returns:
        True or False, or None when the file does not reach into *area*.

    Raises:
        DataError: If the file fails to read (e.g. it is truncated).
    """
    box = (
        area
        if info.crs == area_crs
        else transform_bounds(area_crs, info.crs, *area, densify_pts=21)
    )
    if not bounds_intersect(box, info.bounds):
        return None
    full = Window(0, 0, info.width, info.height)
    try:
        window = (
            from_bounds(*box, transform=info.transform)
            .round_offsets(op='floor')
            .round_lengths(op='ceil')
            .intersection(full)
        )
    except rasterio.errors.WindowError:
        return None
    invalid_values = [
        value
        for value in (info.nodata, nodata)
        if value is not None and not math.isnan(value)
    ]
    try:
        with rasterio.open(info.path) as src:
            for block in _scan_windows(window, SCAN_BLOCK):
                data = src.read(window=block)
                valid = (
                    np.isfinite(data)
                    if data.dtype.kind == 'f'
                    else np.ones(data.shape, bool)
                )
                for value in invalid_values:
                    valid &= data != value
                if valid.any():
                    return True
    except rasterio.errors.RasterioError as error:
        raise DataError(
            f'{info.path} cannot be read ({error}); check that it is a complete '
            'GeoTIFF.'
        ) from error
    return False


def check_valid_pixels(
    files: Mapping[str, Sequence[RasterInfo]],
    grid: OutputGrid,
    reader_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Check that the inputs have valid pixels in the output area.

    Args:
        files: Modality name to its files.
        grid: The output grid.
        reader_options: Per-modality reader options (their ``nodata``).

    Raises:
        DataError: If no file has a valid pixel in the output area; the
            message names every file.

    Warns:
        DataWarning: For each file without a valid pixel in the output area
            when other files have some: the map is made without it.
    """
    empty: list[str] = []
    any_valid = False
    for modality, infos in files.items():
        nodata = (reader_options or {}).get(modality, {}).get('nodata')
        for info in infos:
            found = has_valid_pixel(info, grid.bounds, grid.crs, nodata)
            if found is False:
                empty.append(f'{modality} input {info.path}')
            any_valid = any_valid or bool(found)
    if not empty:
        return
    area = f'the output area {format_bounds(grid.bounds)} (in {grid.crs})'
    if not any_valid:
        raise DataError(
            f'{"; ".join(empty)}: no valid pixel in {area} (every pixel is nodata '
            "or not finite); check the file's nodata value, or give inputs with data "
            'there.'
        )
    for name in empty:
        warnings.warn(
            f'{name} has no valid pixel in {area} (every pixel is nodata or not '
            'finite); the map is predicted without it.',
            DataWarning,
            stacklevel=2,
        )
