"""Warped tiles kept in memory, so that each area of a file is warped once.

On mixed grids every window of every epoch would warp its files again, and the
warp is most of the cost of a sample. :class:`WarpedTiles` splits the window
grid into square tiles of :data:`TILE` pixels (on a lattice fixed by the grid's
CRS, pixel size and origin phase, so windows anywhere on one grid share tiles),
warps each tile of a file once, the first time a window needs it, and serves
every later window by copying from the tiles: the same exact, nodata-aware read
(:func:`~torchgeo_stars.datasets.reading.read_onto_grid`), done once per tile
instead of once per window. It is the in-memory counterpart of
``torchgeo-stars align``, which does the same once on disk.

A file is cached only when all of its tiles fit in the budget with those of
the files already cached (:meth:`WarpedTiles.admit`): then after one pass over
the data nothing is warped again; a file too large for the budget is warped
window by window as before (aligning it on disk is then the fast path). The
values match the per-window warp except where GDAL's scaling of the
interpolation kernel depends on the size of the warped area (downsampling); a
pixel now has one value whichever window reads it.

Each process keeps its own tiles (a DataLoader worker inherits the tiles of
its parent at fork and goes on alone); a pickled copy (a worker started with
``spawn``) starts empty.
"""

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from ..errors import DataWarning

Array = np.ndarray[Any, Any]

#: Side of a cached tile, in pixels of the window grid.
TILE = 256

#: Default budget of one dataset's tiles in one process, in MiB.
DEFAULT_BUDGET_MB = 256.0

#: Reads one area of a file onto the grid: ``(bounds, (height, width))`` to a
#: ``(C, height, width)`` array, or None when the file does not reach it.
Warp = Callable[[tuple[float, float, float, float], tuple[int, int]], Array | None]


def _phase(value: float) -> float:
    """Fractional part of a coordinate in pixels, rounded to 1e-6 pixel."""
    phase = round(value % 1.0, 6)
    return 0.0 if phase == 1.0 else phase


class WarpedTiles:
    """Warped tiles of the files of one dataset, within a memory budget.

    .. versionadded:: 0.1
    """

    def __init__(self, budget_mb: float = DEFAULT_BUDGET_MB) -> None:
        """Start empty.

        Args:
            budget_mb: most memory the tiles may take, in MiB (0 disables the
                cache: every window is warped on its own).
        """
        self.budget_mb = budget_mb
        self.budget = int(budget_mb * 2**20)
        self._clear()

    def _clear(self) -> None:
        self._tiles: OrderedDict[Hashable, Array | None] = OrderedDict()
        self._bytes = 0
        self._admitted: dict[Hashable, int] = {}
        self._refused: set[Hashable] = set()

    @property
    def nbytes(self) -> int:
        """Memory taken by the tiles held, in bytes."""
        return self._bytes

    def __len__(self) -> int:
        """Number of tiles held.

        Returns:
            The count.
        """
        return len(self._tiles)

    def admit(
        self, key: Hashable, tiles_bytes: Callable[[], int], name: str = 'a file'
    ) -> bool:
        """Whether a file is cached: decided once per file and grid.

        A file refused for want of budget is reported once (a
        :class:`~torchgeo_stars.errors.DataWarning` naming it and the budget
        it would need).

        Args:
            key: the file and grid (the same key as :meth:`read`'s).
            tiles_bytes: memory all of the file's tiles take on the grid
                (called once, on the first decision).
            name: the file, for the warning.

        Returns:
            True when its tiles fit in the budget beside those admitted before.
        """
        if key in self._admitted:
            return True
        if key in self._refused or self.budget <= 0:
            return False
        size = tiles_bytes()
        used = sum(self._admitted.values())
        if used + size > self.budget:
            self._refused.add(key)
            warnings.warn(
                f'{name}: its warped tiles on this grid need '
                f'{size / 2**20:.0f} MiB, more than the {(self.budget - used) / 2**20:.0f}'
                f' MiB left of warp_cache_mb={self.budget_mb:g}, so every window'
                ' of it is warped again each epoch (slower); raise warp_cache_mb, or'
                " align the data once (torchgeo-stars align, or the datamodule's"
                ' align_dir).',
                DataWarning,
                stacklevel=2,
            )
            return False
        self._admitted[key] = size
        return True

    def read(
        self,
        key: Hashable,
        bounds: tuple[float, float, float, float],
        step: tuple[float, float],
        shape: tuple[int, int],
        warp: Warp,
    ) -> Array | None:
        """Read a window from the tiles, warping the tiles not held yet.

        Args:
            key: the file, its bands and the grid's CRS and pixel size.
            bounds: ``(xmin, ymin, xmax, ymax)`` of the window.
            step: ``(xres, yres)`` of the window.
            shape: ``(height, width)`` of the window.
            warp: reads an area of the file onto the grid (the uncached read).

        Returns:
            The window ``(C, height, width)``, NaN where the file has no valid
            pixel; None when the file reaches none of its tiles.
        """
        xres, yres = step
        height, width = shape
        x_pixels, y_pixels = bounds[0] / xres, -bounds[3] / yres
        phase = (_phase(x_pixels), _phase(y_pixels))
        col0 = round(x_pixels - phase[0])
        row0 = round(y_pixels - phase[1])
        out: Array | None = None
        for tile_row in range(row0 // TILE, math.ceil((row0 + height) / TILE)):
            for tile_col in range(col0 // TILE, math.ceil((col0 + width) / TILE)):
                tile = self._tile((key, phase, tile_col, tile_row), step, phase, warp)
                if tile is None:
                    continue
                if out is None:
                    out = np.full((tile.shape[0], height, width), np.nan, tile.dtype)
                # Overlap of the tile and the window, in window pixels
                top = max(tile_row * TILE - row0, 0)
                bottom = min((tile_row + 1) * TILE - row0, height)
                left = max(tile_col * TILE - col0, 0)
                right = min((tile_col + 1) * TILE - col0, width)
                out[:, top:bottom, left:right] = tile[
                    :,
                    top + row0 - tile_row * TILE : bottom + row0 - tile_row * TILE,
                    left + col0 - tile_col * TILE : right + col0 - tile_col * TILE,
                ]
        return out

    def _tile(
        self,
        tile_key: tuple[Hashable, tuple[float, float], int, int],
        step: tuple[float, float],
        phase: tuple[float, float],
        warp: Warp,
    ) -> Array | None:
        if tile_key in self._tiles:
            self._tiles.move_to_end(tile_key)
            return self._tiles[tile_key]
        _, _, tile_col, tile_row = tile_key
        xres, yres = step
        left = (tile_col * TILE + phase[0]) * xres
        top = -(tile_row * TILE + phase[1]) * yres
        tile = warp((left, top - TILE * yres, left + TILE * xres, top), (TILE, TILE))
        self._tiles[tile_key] = tile
        self._bytes += tile.nbytes if tile is not None else 0
        while self._bytes > self.budget and len(self._tiles) > 1:
            _, oldest = self._tiles.popitem(last=False)
            self._bytes -= oldest.nbytes if oldest is not None else 0
        return tile

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the budget only (a copy in another process starts empty).

        Returns:
            The state to restore.
        """
        return {'budget_mb': self.budget_mb}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore empty.

        Args:
            state: from :meth:`__getstate__`.
        """
        self.budget_mb = state['budget_mb']
        self.budget = int(self.budget_mb * 2**20)
        self._clear()


def tiles_bytes(
    bounds: tuple[float, float, float, float],
    step: tuple[float, float],
    bands: int,
    itemsize: int,
) -> int:
    """Memory of the tiles covering a footprint on a grid (any phase).

    Args:
        bounds: ``(xmin, ymin, xmax, ymax)`` of the file on the grid's CRS.
        step: ``(xres, yres)`` of the grid.
        bands: bands read.
        itemsize: bytes per value.

    Returns:
        Bytes of the tiles that can cover it.
    """
    columns = math.ceil((bounds[2] - bounds[0]) / step[0] / TILE) + 1
    rows = math.ceil((bounds[3] - bounds[1]) / step[1] / TILE) + 1
    return columns * rows * TILE * TILE * bands * itemsize
