"""Warp every modality once onto one grid: aligned rasters that read fast.

Reading rasters of mixed grids (each modality in its own CRS and pixel size)
warps every file onto every window, every epoch. :func:`align_rasters` pays
that once: it warps each modality (and the labels) onto one common grid and
writes ``OUTPUT/<modality>/<modality>.tif`` (``optical/``, ``sar/``, ``dsm/``,
``mask/``), tiled, compressed Cloud Optimized GeoTIFFs that the modality
datasets then read without resampling.

* The grid is, by default, the first modality's (the grid of its first file,
  widened to the union of its files), as for ``predict-geotiff``; or the
  *crs*, *res* and *bounds* given.
* Values are read exactly as the modality datasets read them (through the
  project's raster classes, :mod:`torchgeo_stars.datasets.modalities`): each
  modality's resampling, invalid pixels (nodata, SAR values <= 0, DSM voids)
  left out of the interpolation, several files mosaicked (first valid pixel
  wins), labels nearest. Stored values keep the source's dtype (integers are
  rounded), band names, tags and nodata; invalid pixels get the nodata value
  (NaN for float rasters without one, 0 for integer rasters without one).
* A modality made of one file already on the grid is copied, never resampled:
  its pixels are bit-identical to the source's.
* Memory is bounded: the grid is processed block by block.
* Everything is written to temporary files in a hidden folder of the output
  and renamed into place when complete, so an interrupted or failed run never
  leaves a half-written raster; the temporary files are removed.
* ``OUTPUT/manifest.json`` records the grid request (the reference modality
  and its files, *crs*, *res*, *bounds*), the grid, the package version and,
  per modality, its files, reader options and the size and modification time
  of every file. A second call with unchanged inputs returns at once; a
  modality whose files changed is re-done (all of them when the grid moves);
  modalities aligned earlier and not asked for again are kept (e.g. labels
  aligned for training, not needed for prediction).

The command line front end is ``torchgeo-stars align``
(:mod:`torchgeo_stars.datasets.align_cli`).

.. versionadded:: 0.1
"""

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles
from tqdm import tqdm

from ..errors import ConfigurationError, DataError
from ..inference.grid import (
    GRID_TOLERANCE,
    OutputGrid,
    bounds_intersect,
    format_bounds,
    output_grid,
)
from ..inference.sources import RasterInfo, expand_paths, raster_class, union_bounds
from .keys import MASK, MODALITY_NAME
from .modalities import MaskRaster
from .rasters import ConfigurableRaster, ModalityRaster

#: Name of the manifest file in the output folder.
MANIFEST_NAME = 'manifest.json'
#: Version of the manifest layout; a manifest of another version is redone.
MANIFEST_FORMAT = 1
#: Folder (and file stem) of the aligned labels.
MASK_NAME = MASK
#: Reader options that change stored values of an image modality.
IMAGE_OPTIONS = ('nodata', 'min_valid', 'input_scale', 'resampling')
#: Reader options that change stored labels.
MASK_OPTIONS = ('nodata', 'ignore_index')
#: Rows and columns of the grid processed at a time.
BLOCK_SIZE = 1024
#: GDAL block cache while aligning, in bytes (keeps memory flat).
GDAL_CACHE_BYTES = 64 * 2**20

PathLike = str | os.PathLike[str]
Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class AlignedRasters:
    """The aligned rasters in an output folder.

    Attributes:
        output: The output folder.
        grid: The common grid of every aligned raster.
        paths: Modality name (and ``'mask'`` for labels) to its aligned file.
        manifest: The manifest file.
        written: Names (re)written by this call; empty when every aligned
            raster was up to date.

    .. versionadded:: 0.1
    """

    output: Path
    grid: OutputGrid
    paths: dict[str, Path]
    manifest: Path
    written: tuple[str, ...]


# Manifest -------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """*value* as it reads back from JSON (tuples as lists, enums as text)."""
    return json.loads(json.dumps(value, default=str))


def _source_state(files: Sequence[Path]) -> list[dict[str, Any]]:
    """Path, size and modification time of every file, to detect changes."""
    state = []
    for path in files:
        stat = path.stat()
        state.append(
            {
                'path': str(path.resolve()),
                'size': stat.st_size,
                'mtime': stat.st_mtime_ns,
            }
        )
    return state


def _grid_to_json(grid: OutputGrid) -> dict[str, Any]:
    return {
        'crs': grid.crs.to_wkt(),
        'transform': list(grid.transform)[:6],
        'width': grid.width,
        'height': grid.height,
    }


def _grid_from_json(data: Mapping[str, Any]) -> OutputGrid:
    return OutputGrid(
        CRS.from_wkt(data['crs']),
        Affine(*data['transform']),
        int(data['width']),
        int(data['height']),
    )


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, ``{}`` if unreadable, None if absent."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_manifest(path: Path, data: Mapping[str, Any]) -> None:
    """Write the manifest atomically (temporary file, then rename)."""
    partial = path.with_name(f'.{path.name}.{secrets.token_hex(6)}.partial')
    try:
        partial.write_text(json.dumps(data, indent=1) + '\n')
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _package_version() -> str:
    from .. import __version__

    return __version__


# Inputs ---------------------------------------------------------------------


def _as_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _check_options(
    name: str, options: Mapping[str, Any], allowed: Sequence[str]
) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f'{name}: options {unknown} do not apply to aligning; use only '
            f'{list(allowed)} (file patterns, band selection and dB conversion '
            'belong to the datasets that read the aligned rasters).'
        )
    return dict(options)


def _check_output(
    output: Path,
    given: Mapping[str, Sequence[Path]],
    files: Mapping[str, Sequence[Path]],
) -> None:
    """Refuse an output inside an input folder or holding an input file."""
    out = output.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigurationError(
            f'output {output} is a file; give a folder for the aligned rasters.'
        )
    for name, items in given.items():
        for item in items:
            folder = item.resolve()
            if folder.is_dir() and (out == folder or folder in out.parents):
                raise ConfigurationError(
                    f'output folder {output} is inside the {name} input folder '
                    f'{item}: the aligned rasters would be read back as {name} '
                    'input. Choose an output folder outside the inputs.'
                )
    for name, paths in files.items():
        for path in paths:
            if out in path.resolve().parents:
                raise ConfigurationError(
                    f'{name} input {path} is inside the output folder {output} and '
                    'would be overwritten or mixed with the aligned rasters; choose '
                    'another output folder.'
                )


def _inspect(name: str, path: Path) -> RasterInfo:
    """Open a file and check it is georeferenced and readable to its last pixel.

    Raises:
        DataError: If the file cannot be opened or read, or has no CRS.
    """
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise DataError(
                    f'{name} input {path} has no coordinate reference system; '
                    'georeference it first.'
                )
            # The last block is where a truncated file fails first.
            src.read(window=Window(src.width - 1, src.height - 1, 1, 1))
            src.read(window=Window(0, 0, 1, 1))
            return RasterInfo(
                path=path,
                crs=src.crs,
                transform=src.transform,
                width=src.width,
                height=src.height,
                count=src.count,
                nodata=src.nodata,
                bounds=tuple(src.bounds),
            )
    except rasterio.errors.RasterioError as error:
        raise DataError(
            f'{name} input {path} cannot be read as a raster ({error}); check that '
            'it is a complete GeoTIFF, re-export it or leave it out.'
        ) from error


def _inspect_all(name: str, files: Sequence[Path]) -> list[RasterInfo]:
    infos = [_inspect(name, path) for path in files]
    counts = {info.count for info in infos}
    if len(counts) > 1:
        listed = ', '.join(f'{info.path} ({info.count})' for info in infos)
        raise DataError(
            f'{name} input files have different band counts: {listed}; give files '
            'with the same bands, in the same order.'
        )
    return infos


def _describe_files(infos: Sequence[RasterInfo]) -> str:
    return ', '.join(str(info.path) for info in infos)


def _check_overlap(
    infos: Mapping[str, Sequence[RasterInfo]], grid: OutputGrid, area: str
) -> None:
    """Every modality (and the labels) must reach into the grid."""
    for name, files in infos.items():
        extent = union_bounds(files, grid.crs)
        if not bounds_intersect(extent, grid.bounds):
            raise DataError(
                f'inputs do not overlap: {name} ({_describe_files(files)}) has '
                f'bounds {format_bounds(extent)} in {grid.crs}, outside the '
                f'aligned area {format_bounds(grid.bounds)}, {area}. Give rasters '
                'of the same place.'
            )


def _on_grid(info: RasterInfo, grid: OutputGrid) -> bool:
    """Whether a file's pixel grid is exactly *grid*."""
    if info.crs != grid.crs or (info.width, info.height) != (grid.width, grid.height):
        return False
    tolerance = GRID_TOLERANCE * min(grid.res)
    return all(
        math.isclose(a, b, rel_tol=0, abs_tol=tolerance)
        for a, b in zip(
            tuple(info.transform)[:6], tuple(grid.transform)[:6], strict=True
        )
    )


# Writing --------------------------------------------------------------------


def _blocks(grid: OutputGrid, size: int) -> Iterator[Window]:
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            yield Window(
                col, row, min(size, grid.width - col), min(size, grid.height - row)
            )


def _block_count(grid: OutputGrid, size: int) -> int:
    return math.ceil(grid.height / size) * math.ceil(grid.width / size)


def _is_disk_full(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if 'no space left' in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def _cog_profile(dtype: str) -> dict[str, Any]:
    profile: dict[str, Any] = dict(cog_profiles.get('deflate'))  # type: ignore[no-untyped-call]
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    profile.update(predictor=2 if integer else 3, bigtiff='IF_SAFER')
    return profile


def _to_cog(source: Path | str, target: Path, dtype: str) -> None:
    """Convert a raster into a COG with rio-cogeo, pixel values unchanged.

    No overviews are built: the datasets read at full resolution, and
    overviews would add about a third to the size on disk.
    """
    cog_translate(
        str(source),
        str(target),
        _cog_profile(dtype),
        overview_level=0,
        forward_band_tags=True,
        in_memory=False,
        quiet=True,
        config={'GDAL_CACHEMAX': GDAL_CACHE_BYTES},
    )


def _stored(
    values: np.ndarray[Any, Any], dtype: str, nodata: float | None
) -> np.ndarray[Any, Any]:
    """Float values (NaN where invalid) as *dtype*, invalid pixels *nodata*."""
    invalid = ~np.isfinite(values)
    kind = np.dtype(dtype)
    if np.issubdtype(kind, np.integer):
        limits = np.iinfo(kind)
        rounded = np.rint(np.where(invalid, 0, values))
        out: np.ndarray[Any, Any] = np.clip(rounded, limits.min, limits.max)
        out = out.astype(kind)
    else:
        out = values.astype(kind)
    if nodata is not None:
        if np.issubdtype(kind, np.integer) and np.isfinite(nodata):
            # A valid value rounded onto nodata would turn invalid: one step off
            limits = np.iinfo(kind)
            nudge = nodata + 1 if nodata < limits.max else nodata - 1
            out[~invalid & (out == nodata)] = nudge
        out[invalid] = nodata
    return out


class _ModalityReader:
    """Reads one modality's files onto blocks of the grid, as its dataset does."""

    def __init__(
        self,
        name: str,
        infos: Sequence[RasterInfo],
        grid: OutputGrid,
        options: Mapping[str, Any],
    ) -> None:
        self.name = name
        self.grid = grid
        files = [str(info.path) for info in infos]
        # Each block is read once: no warped tiles to keep
        kwargs: dict[str, Any] = {
            'filename_glob': '*',
            'cache': False,
            'warp_cache_mb': 0,
            **options,
        }
        crs = pyproj.CRS.from_wkt(grid.crs.to_wkt())
        self.dataset: ConfigurableRaster
        if name == MASK_NAME:
            self.dataset = MaskRaster(files, crs=crs, res=grid.res, **kwargs)
        else:
            cls = raster_class(name)
            if cls is ModalityRaster:
                kwargs['modality'] = name
            self.dataset = cls(files, crs=crs, res=grid.res, **kwargs)
        with rasterio.open(infos[0].path) as first:
            self.dtype: str = first.dtypes[0]
            self.count: int = first.count
        override = self.dataset.nodata
        self.nodata: float | None = override if override is not None else first.nodata
        if self.nodata is None and name != MASK_NAME:
            integer = np.issubdtype(np.dtype(self.dtype), np.integer)
            self.nodata = 0 if integer else math.nan
        # Labels no file reaches: what MaskRaster gives them
        ignore_index = getattr(self.dataset, 'ignore_index', None)
        self.label_fill = (
            ignore_index
            if ignore_index is not None
            else self.nodata
            if self.nodata is not None
            else 0
        )

    def read(self, window: Window) -> np.ndarray[Any, Any]:
        """Stored values of a block of the grid.

        Args:
            window: The block.

        Returns:
            ``(bands, rows, columns)`` values of the source dtype.
        """
        left, bottom, right, top = self.grid.window_bounds(
            int(window.row_off),
            int(window.col_off),
            int(window.height),
            int(window.width),
        )
        xres, yres = self.grid.res
        shape = (int(window.height), int(window.width))
        try:
            sample = self.dataset[left:right:xres, bottom:top:yres]
        except IndexError:  # no file reaches the block
            sample = None
        if isinstance(self.dataset, ModalityRaster):
            if sample is None:
                values = np.full((self.count, *shape), np.nan, np.float32)
            else:
                values = sample[self.dataset.image_key].numpy()
            return _stored(values, self.dtype, self.nodata)
        if sample is None:
            return np.full((1, *shape), self.label_fill, dtype=self.dtype)
        return sample[MASK].numpy()[None].astype(self.dtype)


def _describe_like(dst: Any, source: Path) -> None:
    """Copy band names, tags, colours, units, scales and offsets of *source*."""
    with rasterio.open(source) as src:
        dst.update_tags(**src.tags())
        for band in range(1, src.count + 1):
            if src.descriptions[band - 1]:
                dst.set_band_description(band, src.descriptions[band - 1])
            if src.units[band - 1]:
                dst.set_band_unit(band, src.units[band - 1])
            tags = src.tags(band)
            if tags:
                dst.update_tags(band, **tags)
        dst.scales = src.scales
        dst.offsets = src.offsets
        if src.count == 1:
            with contextlib.suppress(ValueError):
                dst.write_colormap(1, src.colormap(1))


def _warp_modality(
    reader: _ModalityReader,
    source: Path,
    partial: Path,
    block_size: int,
    bar: 'tqdm[Any]',
) -> None:
    """Write a modality's aligned values into a tiled GeoTIFF, block by block."""
    grid = reader.grid
    profile = {
        'driver': 'GTiff',
        'width': grid.width,
        'height': grid.height,
        'count': reader.count,
        'dtype': reader.dtype,
        'crs': grid.crs,
        'transform': grid.transform,
        'nodata': reader.nodata,
        'tiled': True,
        'blockxsize': 512,
        'blockysize': 512,
        'compress': 'deflate',
        'zlevel': 1,
        'bigtiff': 'if_safer',
    }
    with rasterio.open(partial, 'w', **profile) as dst:
        _describe_like(dst, source)
        for window in _blocks(grid, block_size):
            dst.write(reader.read(window), window=window)
            bar.update(1)


def _publish(
    name: str,
    infos: Sequence[RasterInfo],
    grid: OutputGrid,
    options: Mapping[str, Any],
    target: Path,
    scratch: Path,
    block_size: int,
    bar: 'tqdm[Any]',
) -> None:
    """Write one modality's aligned COG into *scratch*, then move it to *target*."""
    final = scratch / f'{name}.cog.tif'
    if len(infos) == 1 and _on_grid(infos[0], grid):
        # Already on the grid: copied, never resampled.
        with rasterio.open(infos[0].path) as src:
            dtype = src.dtypes[0]
        _to_cog(infos[0].path, final, dtype)
        bar.update(_block_count(grid, block_size))
    else:
        reader = _ModalityReader(name, infos, grid, options)
        partial = scratch / f'{name}.partial.tif'
        _warp_modality(reader, infos[0].path, partial, block_size, bar)
        _to_cog(partial, final, reader.dtype)
        partial.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, target)
    for other in target.parent.iterdir():
        if (
            other != target
            and other.is_file()
            and other.suffix.lower() in ('.tif', '.tiff', '.vrt')
        ):
            other.unlink()


# Public function --------------------------------------------------------------


def align_rasters(
    inputs: Mapping[str, PathLike | Sequence[PathLike]],
    output: PathLike,
    *,
    mask: PathLike | Sequence[PathLike] | None = None,
    crs: str | CRS | None = None,
    res: float | Sequence[float] | None = None,
    bounds: Sequence[float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    block_size: int = BLOCK_SIZE,
) -> AlignedRasters:
    """Warp every modality (and the labels) once onto one grid, or reuse it.

    Args:
        inputs: Modality name to its files or folders (searched recursively for
            ``.tif``, ``.tiff`` and ``.vrt``), in order: the first modality
            gives the default grid. ``optical``, ``sar`` and ``dsm`` are read
            with their own raster classes, other names with
            :class:`~torchgeo_stars.datasets.ModalityRaster`.
        output: Folder to write ``<name>/<name>.tif`` and the manifest into.
        mask: Label files or folders (read nearest), if any.
        crs: CRS of the grid (default: the first modality's).
        res: Pixel size of the grid, one value or ``(x, y)``.
        bounds: ``(left, bottom, right, top)`` of the grid in its CRS.
        options: Modality name (or ``'mask'``) to reader options that decide
            stored values: ``nodata``, ``min_valid``, ``input_scale`` and
            ``resampling`` for images (see the raster classes), ``nodata``
            and ``ignore_index`` for labels.
        overwrite: Replace an output folder that holds other rasters (not
            aligned from these inputs onto this grid).
        progress: Show a progress bar (on standard error).
        block_size: Rows and columns of the grid warped at a time.

    Returns:
        The aligned rasters.

    Raises:
        ConfigurationError: If the output folder is inside an input folder,
            holds an input file, holds other rasters and *overwrite* is False,
            cannot be written or fills the disk; or if an option is invalid.
        DataError: If an input is missing, unreadable or truncated, or does not
            overlap the grid.
        KeyboardInterrupt: When interrupted; nothing is left half-written.

    .. versionadded:: 0.1
    """
    if not inputs:
        raise ConfigurationError(
            'no input given; give at least one modality, e.g. --optical A.tif.'
        )
    for name in inputs:
        if name == MASK_NAME or not MODALITY_NAME.fullmatch(name):
            raise ConfigurationError(
                f'modality name {name!r} is not valid; use letters, digits and '
                f'underscores, and give labels as mask, not as {MASK_NAME!r}.'
            )
    if block_size < 16:
        raise ConfigurationError(f'block_size must be >= 16, got {block_size}.')
    options = options or {}
    unknown = sorted(set(options) - set(inputs) - {MASK_NAME})
    if unknown:
        raise ConfigurationError(
            f'options given for {unknown}, which are not among the inputs '
            f'{[*inputs, MASK_NAME] if mask is not None else list(inputs)}.'
        )
    reader_options = {
        name: _check_options(
            name,
            options.get(name, {}),
            MASK_OPTIONS if name == MASK_NAME else IMAGE_OPTIONS,
        )
        for name in [*inputs, *([MASK_NAME] if mask is not None else [])]
    }
    given = {name: _as_list(paths) for name, paths in inputs.items()}
    if mask is not None:
        given[MASK_NAME] = _as_list(mask)
    files = {name: expand_paths(name, paths) for name, paths in given.items()}
    out = Path(output)
    _check_output(out, given, files)

    reference_name = next(iter(inputs))
    resolved = {
        name: [str(p.resolve()) for p in paths] for name, paths in files.items()
    }
    grid_request = _jsonable(
        {
            'reference': reference_name,
            'reference_inputs': resolved[reference_name],
            'crs': None if crs is None else str(crs),
            'res': res,
            'bounds': bounds,
        }
    )
    wanted = {
        name: _jsonable({'inputs': resolved[name], 'options': reader_options[name]})
        for name in files
    }
    state = {name: _source_state(paths) for name, paths in files.items()}
    targets = {name: out / name / f'{name}.tif' for name in files}
    manifest_path = out / MANIFEST_NAME
    manifest = _read_manifest(manifest_path)
    owned = _owns(manifest, grid_request, wanted)
    entries = _valid_entries(manifest) if owned else {}

    def up_to_date(name: str) -> bool:
        entry = entries.get(name)
        return (
            entry is not None
            and {k: entry.get(k) for k in ('inputs', 'options')} == wanted[name]
            and entry.get('sources') == state[name]
            and targets[name].is_file()
        )

    # Everything up to date (the reference's files too, so the grid is the same)
    if manifest is not None and all(up_to_date(n) for n in files):
        return AlignedRasters(
            out, _grid_from_json(manifest['grid']), targets, manifest_path, ()
        )
    if not overwrite:
        if not owned:
            _refuse_other_rasters(out, manifest, list(files))
        else:  # modalities new to this folder
            _refuse_other_rasters(out, None, [n for n in files if n not in entries])

    infos = {name: _inspect_all(name, paths) for name, paths in files.items()}
    reference = infos[reference_name]
    first = reference[0]
    grid = output_grid(
        first.crs,
        first.transform,
        union_bounds(reference, first.crs),
        crs=crs,
        res=res,
        bounds=bounds,
    )
    area = (
        'the requested area'
        if bounds is not None or crs is not None
        else f'the extent of {reference_name} ({_describe_files(reference)})'
    )
    _check_overlap(infos, grid, area)

    if manifest is not None and manifest.get('grid') != _grid_to_json(grid):
        # Rasters of other modalities left on the old grid would not pair.
        for name in entries:
            if name not in files:
                (out / name / f'{name}.tif').unlink(missing_ok=True)
        entries = {}
    todo = [name for name in files if not up_to_date(name)]
    record: dict[str, Any] = {
        'format': MANIFEST_FORMAT,
        'package_version': _package_version(),
        'grid_request': grid_request,
        'grid': _grid_to_json(grid),
        'modalities': {n: e for n, e in entries.items() if n not in todo},
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_manifest(manifest_path, record)
        scratch = Path(out / f'.align-partial-{secrets.token_hex(6)}')
        scratch.mkdir()
    except OSError as error:
        if _is_disk_full(error):
            raise _disk_full(out) from error
        raise ConfigurationError(
            f'output folder {out} cannot be written ({error}); choose another one.'
        ) from error

    total = sum(_block_count(grid, block_size) for _ in todo)
    try:
        with (
            rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
            tqdm(total=total, desc='align', unit='block', disable=not progress) as bar,
        ):
            for name in todo:
                bar.set_postfix_str(name)
                _publish(
                    name,
                    infos[name],
                    grid,
                    reader_options[name],
                    targets[name],
                    scratch,
                    block_size,
                    bar,
                )
                record['modalities'][name] = {
                    **wanted[name],
                    'sources': state[name],
                    'output': str(targets[name].relative_to(out)),
                }
                _write_manifest(manifest_path, record)
    except (OSError, rasterio.errors.RasterioError) as error:
        if _is_disk_full(error):
            raise _disk_full(out) from error
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return AlignedRasters(out, grid, targets, manifest_path, tuple(todo))


def _owns(
    manifest: Mapping[str, Any] | None, grid_request: Any, wanted: Mapping[str, Any]
) -> bool:
    """Whether a manifest records this request (other modalities may be there).

    The same grid request (reference modality, its files, *crs*, *res*,
    *bounds*) and, for every modality it shares with the request, the same
    files and options.
    """
    if not manifest or manifest.get('grid_request') != grid_request:
        return False
    entries = manifest.get('modalities')
    if not isinstance(entries, dict):
        return False
    for name, request in wanted.items():
        entry = entries.get(name)
        if isinstance(entry, dict) and (
            {k: entry.get(k) for k in ('inputs', 'options')} != request
        ):
            return False
    return True


def _valid_entries(manifest: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The manifest's modality entries, none if written by another version."""
    if (
        not manifest
        or manifest.get('format') != MANIFEST_FORMAT
        or manifest.get('package_version') != _package_version()
    ):
        return {}
    entries = manifest.get('modalities', {})
    return {n: e for n, e in entries.items() if isinstance(e, dict)}


def _refuse_other_rasters(
    output: Path, manifest: Mapping[str, Any] | None, names: Sequence[str]
) -> None:
    """Refuse to replace rasters this request did not write.

    Raises:
        ConfigurationError: If the folder holds a manifest of another request,
            or a modality folder of its own.
    """
    if manifest is not None:
        raise ConfigurationError(
            f'output folder {output} holds rasters aligned from other inputs or '
            f'onto another grid ({output / MANIFEST_NAME}); pass --overwrite '
            '(overwrite=True) to replace them, or choose another output folder.'
        )
    for name in names:
        folder = output / name
        if folder.is_dir() and any(folder.iterdir()):
            raise ConfigurationError(
                f'output folder {folder} already exists and was not written by '
                'align; pass --overwrite (overwrite=True) to replace it, or choose '
                'another output folder.'
            )


def _disk_full(output: Path) -> ConfigurationError:
    return ConfigurationError(
        f'no space left on the disk of output folder {output}; the temporary files '
        'were removed. Free some space or choose an output folder on a larger disk '
        '(aligned rasters take about as much space as the inputs resampled to the '
        'common grid).'
    )
