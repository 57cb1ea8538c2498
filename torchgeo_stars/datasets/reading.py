"""Read one raster file onto a window grid, with invalid pixels as NaN.

TorchGeo reads a file by warping it to the dataset CRS at the file's own pixel
size and resampling that again onto the sample window; the second resampling
ignores nodata, so nodata blends into valid pixels at the edges of voids, and
the two interpolations shift coarse rasters by up to half a source pixel.
:func:`read_onto_grid` reads the covering part of the file at its own
resolution, marks invalid pixels NaN (nodata plus the caller's rules), and
warps it once, straight onto the window grid, leaving NaN pixels out of the
interpolation. A window on the file's own grid is copied without resampling.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import WindowError
from rasterio.io import DatasetReader
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

Array = np.ndarray[Any, Any]


def _same_grid(
    src_crs: CRS, src: Affine, dst_crs: CRS, dst: Affine, step: tuple[float, float]
) -> tuple[int, int] | None:
    """Pixel offset of the window in the file when both share one grid."""
    if src_crs != dst_crs or src.b != 0 or src.d != 0:
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
    return round(col), round(row)


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

    offset = _same_grid(src_crs, src_transform, dst_crs, dst_transform, step)
    if offset is not None:
        # Same grid: copy the overlapping pixels, no resampling
        wanted = Window(offset[0], offset[1], width, height)
        try:
            inter = wanted.intersection(full)
        except WindowError:
            return None
        data = src.read(band_indexes, window=inter, masked=True, out_dtype=dtype)
        array = mark_invalid(data.filled(np.nan))
        out = np.full((array.shape[0], height, width), np.nan, dtype=dtype)
        r0 = int(inter.row_off - wanted.row_off)
        c0 = int(inter.col_off - wanted.col_off)
        out[:, r0 : r0 + array.shape[1], c0 : c0 + array.shape[2]] = array
        return out

    window = None
    if src_transform.b == 0 and src_transform.d == 0:
        # Read only the part of the file that covers the window (plus a margin
        # for the interpolation kernel); rotated files are read whole
        left, bottom, right, top = transform_bounds(
            dst_crs, src_crs, *bounds, densify_pts=21
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
    data = src.read(band_indexes, window=window, masked=True, out_dtype=dtype)
    array = mark_invalid(data.filled(np.nan))
    out = np.full((array.shape[0], height, width), np.nan, dtype=dtype)
    reproject(
        array,
        out,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out
