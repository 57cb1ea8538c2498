"""The one module that relies on TorchGeo's private ``RasterDataset`` helpers.

Targets TorchGeo 0.10 (``torchgeo>=0.10.1,<0.11`` in ``pyproject.toml``;
:data:`TARGET_TORCHGEO` below, checked by the tests). Why it exists: the
rasters of this package read files their own way (each file warped once,
straight onto the window grid, invalid pixels left out of the interpolation;
see :mod:`torchgeo_stars.datasets.reading`), so they replace
:meth:`torchgeo.datasets.RasterDataset.__getitem__` instead of overriding its
private ``_merge_or_stack``. They still reuse TorchGeo's index (which files
cover a window), its slice conventions and its georeferencing fallbacks, which
TorchGeo 0.10 keeps in private helpers: ``_disambiguate_slice``,
``_update_filepath`` and ``_compute_affine_georeferencing``, plus the layout
of the ``bounds`` entry that ``_slice_to_tensor`` builds (reproduced by
:meth:`WindowGrid.bounds_tensor`, so that a sample resolves its slice once:
each resolution recomputes the dataset's bounds from its index). Every call to them goes through the
functions here, so a TorchGeo release that renames or changes them breaks
this module (and its tests), nothing else.
"""

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import shapely
import torch
from affine import Affine
from rasterio.io import DatasetReader
from torch import Tensor
from torchgeo.datasets import GeoDataset, RasterDataset
from torchgeo.datasets.utils import GeoSlice

#: TorchGeo versions this module is written for (``>=`` first, ``<`` second).
TARGET_TORCHGEO = ('0.10.1', '0.11')


@dataclass(frozen=True)
class WindowGrid:
    """A window resolved as TorchGeo resolves a slice, and its pixel grid.

    Attributes:
        x: ``xmin:xmax:xres``.
        y: ``ymin:ymax:yres``.
        t: ``tmin:tmax:tres``.
    """

    x: slice
    y: slice
    t: slice

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the dataset's CRS."""
        return (self.x.start, self.y.start, self.x.stop, self.y.stop)

    @property
    def step(self) -> tuple[float, float]:
        """``(xres, yres)``: the pixel size."""
        return (self.x.step, self.y.step)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (
            round((self.y.stop - self.y.start) / self.y.step),
            round((self.x.stop - self.x.start) / self.x.step),
        )

    @cached_property
    def transform(self) -> Affine:
        """North-up affine transform of the window's pixels (TorchGeo's)."""
        # rasterio's from_origin, built directly (the same six numbers)
        xres, yres = self.step
        return Affine(xres, 0.0, self.x.start, 0.0, -yres, self.y.stop)

    def bounds_tensor(self) -> Tensor:
        """TorchGeo's ``bounds`` sample entry (``GeoDataset._slice_to_tensor``).

        Returns:
            ``[xmin, xmax, xres, ymin, ymax, yres, tmin, tmax, tres]``, times
            as POSIX timestamps.
        """
        x, y, t = self.x, self.y, self.t
        return torch.tensor(
            [
                x.start,
                x.stop,
                x.step,
                y.start,
                y.stop,
                y.step,
                t.start.timestamp(),
                t.stop.timestamp(),
                t.step,
            ]
        )


def window_grid(dataset: GeoDataset, index: GeoSlice) -> WindowGrid:
    """Resolve a (partial) slice as TorchGeo does: missing parts from the bounds.

    Args:
        dataset: the dataset indexed (its bounds and resolution fill the gaps).
        index: ``[xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres]``.

    Returns:
        The resolved window.
    """
    parts = (index,) if isinstance(index, slice) else tuple(index)
    if len(parts) == 3 and all(
        part.start is not None and part.stop is not None for part in parts
    ):
        # What samplers yield: every extent given, steps left out. The steps
        # TorchGeo fills in are the resolution and 1, so the dataset's bounds
        # (recomputed from the whole index on each call) are not needed.
        x, y, t = parts
        xres, yres = dataset.res
        return WindowGrid(
            slice(x.start, x.stop, xres if x.step is None else x.step),
            slice(y.start, y.stop, yres if y.step is None else y.step),
            slice(t.start, t.stop, 1 if t.step is None else t.step),
        )
    x, y, t = dataset._disambiguate_slice(index)
    return WindowGrid(x, y, t)


class _IndexQuery:
    """TorchGeo's file query over one index frame, without pandas per call.

    The positions of the files whose dates overlap a time slice are computed
    with pandas once per slice (samplers repeat one), the footprints are
    tested with one vectorised :func:`shapely.intersects`: the result is
    TorchGeo's, at a fraction of the per-sample cost of
    ``frame.iloc[...].cx[...]`` (which builds several pandas objects per call).
    """

    def __init__(self, dataset: GeoDataset) -> None:
        frame = dataset.index
        self.frame = frame
        self.crs = dataset.crs  # what is_for compares (by identity) later
        self.geometries = np.asarray(frame.geometry.values)
        self.filepaths = [str(path) for path in frame['filepath']]
        self._by_time: dict[tuple[Any, Any, Any], np.ndarray[Any, Any]] = {}

    def is_for(self, dataset: GeoDataset) -> bool:
        # to_crs(inplace=True), as TorchGeo's crs setter does, sets a new CRS
        return dataset.index is self.frame and dataset.crs is self.crs

    def files(self, window: WindowGrid) -> list[str]:
        x, y, t = window.x, window.y, window.t
        key = (t.start, t.stop, t.step)
        positions = self._by_time.get(key)
        if positions is None:
            overlaps = self.frame.index.overlaps(pd.Interval(t.start, t.stop))
            positions = np.flatnonzero(overlaps)[:: t.step]
            if len(self._by_time) >= 64:
                self._by_time.clear()
            self._by_time[key] = positions
        hits = shapely.intersects(
            self.geometries[positions], shapely.box(x.start, y.start, x.stop, y.stop)
        )
        return [self.filepaths[i] for i in positions[hits]]


def files_in_window(dataset: RasterDataset, window: WindowGrid) -> list[str]:
    """Files of a raster dataset that cover a window, as TorchGeo 0.10 picks them.

    The same files, in the same order, as the query of
    :meth:`torchgeo.datasets.RasterDataset.__getitem__`
    (``index.iloc[index.index.overlaps(t)].iloc[::tres].cx[x, y]``): files
    whose date interval overlaps the window's, every ``tres``-th of them, then
    those whose footprint intersects the window. The query is prepared once
    per index (and rebuilt when the index or its CRS changes).

    Args:
        dataset: the raster dataset.
        window: the resolved window.

    Returns:
        File paths, in index order (possibly empty).
    """
    query = dataset.__dict__.get('_index_query')
    if not isinstance(query, _IndexQuery) or not query.is_for(dataset):
        query = dataset.__dict__['_index_query'] = _IndexQuery(dataset)
    return query.files(window)


def band_file(dataset: RasterDataset, band: str, filepath: str) -> str:
    """Path of one band's file, for datasets with one file per band.

    Args:
        dataset: the raster dataset (its ``filename_regex`` names the band).
        band: band name.
        filepath: path of another band's file of the same scene.

    Returns:
        The band's file path.
    """
    return str(dataset._update_filepath(band, filepath))


def georeferencing(dataset: RasterDataset, src: DatasetReader) -> tuple[Any, Affine]:
    """A file's CRS and affine transform, with TorchGeo's fallback to its GCPs.

    Args:
        dataset: the raster dataset reading the file.
        src: the open file.

    Returns:
        ``(crs, transform)``.
    """
    if src.transform is not None and not src.transform.is_identity:
        return src.crs, src.transform
    crs, transform = dataset._compute_affine_georeferencing(src)
    return crs, transform
