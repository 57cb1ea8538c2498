"""Raster grids of the synthetic scene and sampling of ground layers onto them.

The synthetic scene is generated once on a *reference grid* (a ground coordinate
system in metres). Every written raster has its own grid (CRS, resolution,
extent); its pixels are filled by transforming sub-pixel sample points into the
reference CRS and looking the ground layers up there, so all rasters agree
geographically whatever their CRS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from rasterio.warp import transform_bounds

Bounds = tuple[float, float, float, float]
"""``(left, bottom, right, top)`` in the grid's CRS units."""


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Attributes:
        crs: CRS as a string understood by pyproj and rasterio (e.g. ``EPSG:32632``).
        transform: affine pixel-to-CRS transform (north-up, square or not).
        width: number of columns.
        height: number of rows.
    """

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> Bounds:
        """Extent ``(left, bottom, right, top)`` in the grid's CRS."""
        left, top = self.transform.c, self.transform.f
        right = left + self.transform.a * self.width
        bottom = top + self.transform.e * self.height
        return (left, bottom, right, top)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units (both positive)."""
        return (float(self.transform.a), float(-self.transform.e))


def grid_from_bounds(crs: str, bounds: Bounds, res: tuple[float, float]) -> Grid:
    """Build the smallest grid aligned to multiples of ``res`` that covers ``bounds``.

    Args:
        crs: CRS of ``bounds`` and of the grid.
        bounds: ``(left, bottom, right, top)`` to cover.
        res: pixel size ``(x, y)`` in CRS units.

    Returns:
        The grid; its origin is a multiple of the pixel size.
    """
    rx, ry = res
    left = math.floor(bounds[0] / rx + 1e-9) * rx
    right = math.ceil(bounds[2] / rx - 1e-9) * rx
    bottom = math.floor(bounds[1] / ry + 1e-9) * ry
    top = math.ceil(bounds[3] / ry - 1e-9) * ry
    width = round((right - left) / rx)
    height = round((top - bottom) / ry)
    return Grid(crs, Affine(rx, 0.0, left, 0.0, -ry, top), width, height)


def same_crs(a: str, b: str) -> bool:
    """Whether two CRS strings denote the same CRS.

    Args:
        a: first CRS.
        b: second CRS.

    Returns:
        True when pyproj considers them equal.
    """
    return a == b or CRS.from_user_input(a) == CRS.from_user_input(b)


def reproject_bounds(bounds: Bounds, src: str, dst: str) -> Bounds:
    """Bounding box in ``dst`` of the (densified) rectangle ``bounds`` of ``src``.

    Args:
        bounds: ``(left, bottom, right, top)`` in ``src``.
        src: source CRS.
        dst: destination CRS.

    Returns:
        The enclosing box in ``dst``.
    """
    if same_crs(src, dst):
        return bounds
    out = transform_bounds(src, dst, *bounds, densify_pts=41)
    return (float(out[0]), float(out[1]), float(out[2]), float(out[3]))


def local_scale(ref_crs: str, dst_crs: str, x: float, y: float) -> tuple[float, float]:
    """Length in ``dst_crs`` units of one reference metre, east and north.

    Args:
        ref_crs: reference (metric) CRS.
        dst_crs: destination CRS.
        x: reference easting where the scale is measured.
        y: reference northing where the scale is measured.

    Returns:
        ``(kx, ky)``: destination units per reference metre along x and y.
    """
    step = 100.0
    transformer = Transformer.from_crs(ref_crs, dst_crs, always_xy=True)
    xs, ys = transformer.transform(
        np.array([x, x + step, x]), np.array([y, y, y + step])
    )
    kx = math.hypot(xs[1] - xs[0], ys[1] - ys[0]) / step
    ky = math.hypot(xs[2] - xs[0], ys[2] - ys[0]) / step
    return (kx, ky)


def subsample_indices(grid: Grid, ref: Grid, n: int) -> NDArray[np.intp]:
    """Reference-grid pixel under each of ``n x n`` sample points of every pixel.

    Sample points are spread evenly inside each pixel of ``grid`` (its centre
    when ``n == 1``), transformed into the reference CRS and located in ``ref``.

    Args:
        grid: target grid.
        ref: reference grid holding the ground layers.
        n: samples per pixel side.

    Returns:
        Flat indices into ``ref`` of shape ``(grid.height, grid.width, n * n)``,
        clipped to ``ref``.
    """
    offsets = (np.arange(n, dtype=np.float64) + 0.5) / n
    sub_row, sub_col = np.meshgrid(offsets, offsets, indexing='ij')
    cols = np.arange(grid.width, dtype=np.float64)[None, :, None] + sub_col.ravel()
    rows = np.arange(grid.height, dtype=np.float64)[:, None, None] + sub_row.ravel()
    cols, rows = np.broadcast_arrays(cols, rows)
    t = grid.transform
    x = t.a * cols + t.b * rows + t.c
    y = t.d * cols + t.e * rows + t.f
    if not same_crs(grid.crs, ref.crs):
        transformer = Transformer.from_crs(grid.crs, ref.crs, always_xy=True)
        xt, yt = transformer.transform(x.ravel(), y.ravel())
        x = np.asarray(xt).reshape(cols.shape)
        y = np.asarray(yt).reshape(cols.shape)
    r = ref.transform
    ref_col = np.floor((x - r.c) / r.a).astype(np.intp)
    ref_row = np.floor((y - r.f) / r.e).astype(np.intp)
    np.clip(ref_col, 0, ref.width - 1, out=ref_col)
    np.clip(ref_row, 0, ref.height - 1, out=ref_row)
    return ref_row * ref.width + ref_col


def area_mean(
    layers: NDArray[np.float32], index: NDArray[np.intp]
) -> NDArray[np.float32]:
    """Average band-stacked ground layers over each pixel's sample points.

    Args:
        layers: ``(C, H_ref, W_ref)`` ground layers.
        index: sample indices from :func:`subsample_indices`.

    Returns:
        ``(C, height, width)`` float32 pixel values.
    """
    flat = layers.reshape(layers.shape[0], -1)
    return flat[:, index].mean(axis=-1, dtype=np.float64).astype(np.float32)


def majority(
    codes: NDArray[np.uint8], index: NDArray[np.intp], priority: NDArray[np.float64]
) -> NDArray[np.uint8]:
    """Most frequent class code among each pixel's sample points.

    Args:
        codes: ``(H_ref, W_ref)`` class codes ``0 .. len(priority) - 1``.
        index: sample indices from :func:`subsample_indices`.
        priority: per code, a value in ``[0, 1)`` that breaks ties (higher wins).

    Returns:
        ``(height, width)`` uint8 majority codes.
    """
    samples = codes.ravel()[index]
    scores = np.stack(
        [(samples == k).sum(axis=-1) + priority[k] for k in range(len(priority))]
    )
    return scores.argmax(axis=0).astype(np.uint8)
