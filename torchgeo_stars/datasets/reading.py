"""Read raster files onto a window grid, with invalid pixels as NaN.

TorchGeo reads a file by warping it to the dataset CRS at the file's own pixel
size and resampling that again onto the sample window; the second resampling
ignores nodata, so nodata blends into valid pixels at the edges of voids, and
the two interpolations shift coarse rasters by up to half a source pixel.
:func:`read_onto_grid` reads the covering part of the file at its own
resolution, marks invalid pixels NaN (nodata plus the caller's rules), and
warps it once, straight onto the window grid, leaving NaN pixels out of the
interpolation. A file already on the window's grid (same CRS, pixel size and
a whole-pixel origin offset) is read with a plain windowed read, no warp.

:class:`OpenRasters` keeps the file handles of one dataset open, once per
process: a DataLoader worker forked from a process that had files open reopens
them instead of sharing the parent's (GDAL handles are not safe to share
between processes).
"""

import math
import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import WindowError
from rasterio.io import DatasetReader
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform_bounds
from rasterio.warp import transform as rasterio_transform
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

Array = np.ndarray[Any, Any]


def _close_all(handles: 'OrderedDict[str, DatasetReader]') -> None:
    for handle in handles.values():
        handle.close()
    handles.clear()


class OpenRasters:
    """File handles of one dataset, opened once per process and reused.

    Handles are opened on first use and kept (the least recently used is
    closed beyond *max_open*). After a fork (a DataLoader worker) the
    inherited handles are dropped and files are reopened in the new process.
    Handles are closed when the owner is garbage collected or at interpreter
    exit (left to interpreter shutdown, GDAL closes them after Python's error
    machinery is gone and prints ``Error in sys.excepthook`` lines). A pickled
    copy (a worker started with ``spawn``) starts with no handle open.

    .. versionadded:: 0.1
    """

    def __init__(self, max_open: int = 128) -> None:
        """Start with no file open.

        Args:
            max_open: most handles kept open at once.
        """
        self.max_open = max_open
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._handles: OrderedDict[str, DatasetReader] = OrderedDict()
        self._finalizer = weakref.finalize(self, _close_all, self._handles)

    def get(self, path: str) -> DatasetReader:
        """The open handle of a file, opened on first use in this process.

        Args:
            path: file path.

        Returns:
            The open file.

        Raises:
            rasterio.errors.RasterioIOError: if the file cannot be opened.
        """
        if self._pid != os.getpid():
            # Forked: the parent's handles are not ours to use (or close)
            self._finalizer.detach()
            self._reset()
        handle = self._handles.get(path)
        if handle is None:
            handle = rasterio.open(path)
            self._handles[path] = handle
            if len(self._handles) > self.max_open:
                _, oldest = self._handles.popitem(last=False)
                oldest.close()
        else:
            self._handles.move_to_end(path)
        return handle

    def close(self) -> None:
        """Close every open handle of this process."""
        if self._pid == os.getpid():
            _close_all(self._handles)

    def __len__(self) -> int:
        """Number of open handles.

        Returns:
            The count (0 in a process that has not read yet).
        """
        return len(self._handles) if self._pid == os.getpid() else 0

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the handles (they cannot cross processes).

        Returns:
            The state to restore.
        """
        return {'max_open': self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore with no file open.

        Args:
            state: from :meth:`__getstate__`.
        """
        self.max_open = state['max_open']
        self._reset()


def grid_offset(
    src_crs: CRS, src: Affine, dst_crs: CRS, dst: Affine, step: tuple[float, float]
) -> tuple[int, int] | None:
    """Pixel offset of a window in a file when both share one grid.

    Args:
        src_crs: the file's CRS.
        src: the file's affine transform.
        dst_crs: the window's CRS.
        dst: the window's (north-up) affine transform.
        step: ``(xres, yres)`` of the window.

    Returns:
        ``(column, row)`` of the window's corner in the file, or None when the
        file is not on the window's grid (another CRS, pixel size, rotation
        or a fractional offset) and must be resampled.
    """
    if src.b != 0 or src.d != 0:
        return None
    if not (
        math.isclose(src.a, step[0], rel_tol=1e-9)
        and math.isclose(-src.e, step[1], rel_tol=1e-9)
    ):
        return None
    col = (dst.c - src.c) / src.a
    row = (dst.f - src.f) / src.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    if src_crs != dst_crs:
        return None
    return round(col), round(row)


def _read_valid(
    src: DatasetReader,
    band_indexes: Sequence[int] | None,
    window: Window | None,
    dtype: str,
    mark_invalid: Callable[[Array], Array],
) -> Array:
    """Read pixels as *dtype*, NaN where invalid (nodata, masked, caller's rules).

    When the file's only mask is its nodata value and its pixels convert to
    *dtype* exactly, the pixels are compared with nodata directly; otherwise
    GDAL's mask (alpha band, internal mask) is read too.
    """
    indexes = list(band_indexes) if band_indexes is not None else None
    bands = indexes if indexes is not None else list(range(1, src.count + 1))
    flags = src.mask_flag_enums
    nodata_only = all(
        set(flags[b - 1]) <= {MaskFlags.nodata, MaskFlags.all_valid} for b in bands
    ) and all(np.can_cast(src.dtypes[b - 1], dtype, 'safe') for b in bands)
    if nodata_only:
        array = src.read(indexes, window=window, out_dtype=dtype)
        nodata = src.nodata
        if nodata is not None and not math.isnan(nodata):
            array[array == nodata] = np.nan
    else:
        array = src.read(indexes, window=window, masked=True, out_dtype=dtype)
        array = array.filled(np.nan)
    return mark_invalid(array)


def _resampled_read(
    src: DatasetReader,
    src_transform: Affine,
    band_indexes: Sequence[int] | None,
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
    resampling: Resampling,
    dtype: str,
) -> Array | None:
    """Resample a file in the window's CRS with GDAL's resampled read, no warp.

    For a file whose pixels under the window (and its interpolation margin)
    are all valid, so nothing needs leaving out of the interpolation: GDAL
    resamples the fractional source window straight onto the window's pixels,
    the same values as the warp gives, without the warper's set-up. Only for
    float files and windows inside the file (GDAL's resampled read rounds
    integer data, and does not read outside the file).

    Returns:
        The array (C, height, width), or None when the file is not float or
        the window is not inside it (the caller warps instead).
    """
    bands = band_indexes if band_indexes is not None else range(1, src.count + 1)
    if any(np.dtype(src.dtypes[b - 1]).kind != 'f' for b in bands):
        return None
    area = from_bounds(*bounds, transform=src_transform)
    eps = 1e-6
    if (
        area.col_off < -eps
        or area.row_off < -eps
        or area.col_off + area.width > src.width + eps
        or area.row_off + area.height > src.height + eps
    ):
        return None
    indexes = list(band_indexes) if band_indexes is not None else None
    resampled: Array = src.read(
        indexes,
        window=area,
        out_shape=(len(list(bands)), *shape),
        resampling=resampling,
        out_dtype=dtype,
    )
    return resampled


def read_onto_grid(
    src: DatasetReader,
    georeferencing: tuple[CRS, Affine],
    band_indexes: Sequence[int] | None,
    dst_crs: CRS,
    bounds: tuple[float, float, float, float],
    step: tuple[float, float],
    shape: tuple[int, int],
    resampling: Resampling,
    dtype: str,
    mark_invalid: Callable[[Array], Array],
) -> Array | None:
    """Read an open file onto a north-up window grid.

    Args:
        src: the open file.
        georeferencing: the file's CRS and affine transform.
        band_indexes: 1-based bands to read (None: all).
        dst_crs: CRS of the window.
        bounds: (xmin, ymin, xmax, ymax) of the window in *dst_crs*.
        step: (xres, yres) of the window.
        shape: (height, width) of the window in pixels.
        resampling: resampling algorithm.
        dtype: float dtype of the result.
        mark_invalid: sets invalid source pixels to NaN (nodata already is).

    Returns:
        Array (C, height, width), NaN where the file has no valid data; None
        when the file does not reach the window.
    """
    src_crs, src_transform = georeferencing
    height, width = shape
    dst_transform = from_origin(bounds[0], bounds[3], *step)
    full = Window(0, 0, src.width, src.height)

    offset = grid_offset(src_crs, src_transform, dst_crs, dst_transform, step)
    if offset is not None:
        # Same grid: a plain windowed read, no resampling
        wanted = Window(offset[0], offset[1], width, height)
        try:
            inter = wanted.intersection(full)
        except WindowError:
            return None
        data = _read_valid(src, band_indexes, inter, dtype, mark_invalid)
        if data.shape[1:] == (height, width):
            return data
        out = np.full((data.shape[0], height, width), np.nan, dtype=dtype)
        r0 = int(inter.row_off - wanted.row_off)
        c0 = int(inter.col_off - wanted.col_off)
        out[:, r0 : r0 + data.shape[1], c0 : c0 + data.shape[2]] = data
        return out

    file_transform = src_transform
    window = None
    if src_transform.b == 0 and src_transform.d == 0:
        # Read only the part of the file that covers the window (plus a margin
        # for the interpolation kernel); rotated files are read whole
        left, bottom, right, top = (
            bounds
            if src_crs == dst_crs
            else transform_bounds(dst_crs, src_crs, *bounds, densify_pts=21)
        )
        area = from_bounds(left, bottom, right, top, src_transform)
        padded = Window(
            math.floor(area.col_off) - 2,
            math.floor(area.row_off) - 2,
            math.ceil(area.width) + 5,
            math.ceil(area.height) + 5,
        )
        try:
            window = padded.intersection(full)
        except WindowError:
            return None
        src_transform = window_transform(window, src_transform)
    array = _read_valid(src, band_indexes, window, dtype, mark_invalid)
    invalid = bool(np.isnan(array).any())
    if (
        not invalid
        and window is not None
        and file_transform.e < 0
        and src_crs == dst_crs
    ):
        resampled = _resampled_read(
            src, file_transform, band_indexes, bounds, shape, resampling, dtype
        )
        if resampled is not None:
            return resampled
    scales = (
        _kernel_scales(src_crs, file_transform, dst_crs, bounds, shape)
        if window is not None
        else {}
    )
    out = np.full((array.shape[0], height, width), np.nan, dtype=dtype)
    # GDAL's nodata-aware warp kernel is about twice as slow as the plain one;
    # it is only needed when some source pixel is invalid
    nodata = np.nan if invalid else None
    reproject(
        array,
        out,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=nodata,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        dst_nodata=nodata,
        resampling=resampling,
        **scales,
    )
    return out


def _kernel_scales(
    src_crs: CRS,
    src: Affine,
    dst_crs: CRS,
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
) -> dict[str, float]:
    """GDAL's ``XSCALE``/``YSCALE`` warp options: window pixels per file pixel.

    GDAL widens the interpolation kernel by this ratio when downsampling, and
    left alone it estimates the ratio from the source area each warp reads,
    which shrinks where the window runs past the file's edge: the same pixel
    then gets another value from another window. The ratio is measured here
    along the window's middle lines (in the file's CRS), so it depends on the
    grids only.
    """
    left, bottom, right, top = bounds
    height, width = shape
    middle_x, middle_y = (left + right) / 2, (bottom + top) / 2
    xs = [left, right, middle_x, middle_x]
    ys = [middle_y, middle_y, top, bottom]
    if src_crs != dst_crs:
        xs, ys = (list(v) for v in rasterio_transform(dst_crs, src_crs, xs, ys))
    across = math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / abs(src.a)
    down = math.hypot(xs[3] - xs[2], ys[3] - ys[2]) / abs(src.e)
    if not (across > 0 and down > 0 and math.isfinite(across + down)):
        return {}
    return {'XSCALE': width / across, 'YSCALE': height / down}
