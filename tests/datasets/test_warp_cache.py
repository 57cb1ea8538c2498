"""Tests of the warped-tile cache: windows from tiles, warps once, budget."""

import pickle
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from torchgeo_stars.datasets import DSMRaster, OpticalRaster, SARRaster
from torchgeo_stars.datasets.warp_cache import TILE, WarpedTiles, tiles_bytes
from torchgeo_stars.errors import DataWarning

from .geodata_utils import MULTIMODAL, OPTICAL_REGEX, RES, X0, Y0, window

#: Footprint of the fake file of :func:`coordinates_warp`: (xmin, ymin, xmax, ymax).
FILE = (-3000.0, -1500.0, 2500.0, 4000.0)


def coordinates_warp(calls: list[Any]) -> Any:
    """A warp whose pixels hold their own centre coordinates (x, y).

    NaN outside :data:`FILE`, None for an area that misses it, as the read
    path does; every call is recorded.
    """

    def warp(
        bounds: tuple[float, float, float, float], shape: tuple[int, int]
    ) -> np.ndarray | None:
        calls.append(bounds)
        left, bottom, right, top = bounds
        if right <= FILE[0] or left >= FILE[2] or top <= FILE[1] or bottom >= FILE[3]:
            return None
        height, width = shape
        xres, yres = (right - left) / width, (top - bottom) / height
        x = left + (np.arange(width) + 0.5) * xres
        y = top - (np.arange(height) + 0.5) * yres
        out = np.stack(np.broadcast_arrays(x[None, :], y[:, None])).astype(float)
        outside = (x[None, :] < FILE[0]) | (x[None, :] > FILE[2])
        outside = outside | (y[:, None] < FILE[1]) | (y[:, None] > FILE[3])
        out[:, outside] = np.nan
        return out

    return warp


@pytest.mark.parametrize('step', [(10.0, 10.0), (3.0, 7.5)])
def test_windows_from_tiles_equal_the_direct_read(step: tuple[float, float]) -> None:
    calls: list[Any] = []
    warp = coordinates_warp(calls)
    tiles = WarpedTiles()
    rng = np.random.default_rng(0)
    xres, yres = step
    for _ in range(40):
        # Windows anywhere on the grid of origin phase (0.25, 0.5) pixel, some
        # across the file's edges, some larger than a tile
        height, width = (int(v) for v in rng.integers(1, TILE + 60, size=2))
        col, row = (int(v) for v in rng.integers(-700, 500, size=2))
        left = (col + 0.25) * xres
        top = -(row + 0.5) * yres
        bounds = (left, top - height * yres, left + width * xres, top)
        got = tiles.read('file', bounds, step, (height, width), warp)
        expected = warp(bounds, (height, width))
        if expected is None or np.isnan(expected).all():
            assert got is None or np.isnan(got).all()
            continue
        assert got is not None
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_each_tile_is_warped_once() -> None:
    calls: list[Any] = []
    warp = coordinates_warp(calls)
    tiles = WarpedTiles()
    step = (1.0, 1.0)
    corners = [(c, r) for c in (-300, 0, 37, 300) for r in (-9, 0, 99)]

    def read_all(key: str) -> None:
        for col, row in corners:
            bounds = (float(col), -row - 128.0, col + 128.0, float(-row))
            tiles.read(key, bounds, step, (128, 128), warp)

    read_all('file')
    # The tiles a 128-pixel window at (col, row) overlaps, on the 256 lattice
    expected = {
        (tc, tr)
        for col, row in corners
        for tc in range(col // TILE, (col + 127) // TILE + 1)
        for tr in range(row // TILE, (row + 127) // TILE + 1)
    }
    assert len(calls) == len(expected) == len(set(calls))  # none warped twice
    assert {(round(b[0]) // TILE, round(-b[3]) // TILE) for b in calls} == expected
    assert all(b[2] - b[0] == b[3] - b[1] == TILE for b in calls)
    # A second pass over the same windows warps nothing
    read_all('file')
    assert len(calls) == len(expected)
    # Another file (or grid) has tiles of its own
    read_all('other')
    assert len(calls) == 2 * len(expected)


def test_budget_admission_and_eviction() -> None:
    one_tile = TILE * TILE * 2 * 8  # two float64 bands
    tiles = WarpedTiles(budget_mb=3 * one_tile / 2**20)
    size = tiles_bytes((0.0, 0.0, 10.0 * TILE, 10.0 * TILE), (10.0, 10.0), 2, 8)
    assert size == 4 * one_tile  # a tile's footprint can straddle 2 x 2 tiles
    with pytest.warns(
        DataWarning, match=r'big\.tif: .* need 4 MiB, more than the 3 MiB left'
    ):
        assert not tiles.admit('big', lambda: size, 'big.tif')
    assert tiles.admit('small', lambda: one_tile)
    assert tiles.admit('small', lambda: 10**12)  # decided once
    assert not tiles.admit('big', lambda: 0)
    # Whatever is read, the tiles held stay within the budget (least recently
    # used first out)
    calls: list[Any] = []
    warp = coordinates_warp(calls)
    for col in range(0, 8 * TILE, TILE):  # 8 tiles of 1 m pixels, inside FILE
        left = float(col)
        tiles.read('file', (left, -10.0, left + 10.0, 0.0), (1.0, 1.0), (10, 10), warp)
        assert tiles.nbytes <= tiles.budget
    assert len(tiles) == 3
    assert WarpedTiles(budget_mb=0).admit('any', lambda: 1) is False


def test_pickled_copy_starts_empty() -> None:
    tiles = WarpedTiles(budget_mb=64)
    calls: list[Any] = []
    tiles.read(
        'file',
        (0.0, -100.0, 100.0, 0.0),
        (10.0, 10.0),
        (10, 10),
        coordinates_warp(calls),
    )
    assert len(tiles) == 1
    copy = pickle.loads(pickle.dumps(tiles))
    assert len(copy) == 0
    assert copy.nbytes == 0
    assert copy.budget == tiles.budget


WINDOWS = [window(0, 0, 16, 16), window(10, 20, 32, 24), window(-4, 30, 16, 16)]


@pytest.mark.parametrize(
    ('cls', 'folder', 'kwargs'),
    [
        (SARRaster, 'sar', {}),  # Web Mercator, 28 m
        (DSMRaster, 'dsm', {}),  # UTM 32N, 20 m, with voids
        (OpticalRaster, 'optical', {'filename_regex': OPTICAL_REGEX}),
    ],
)
def test_datasets_read_the_same_values_from_tiles(
    warps: list[dict[str, Any]], cls: type[Any], folder: str, kwargs: dict[str, Any]
) -> None:
    grid = {'crs': 'EPSG:32631', 'res': RES}
    cached = cls(MULTIMODAL / folder, **grid, **kwargs)
    direct = cls(MULTIMODAL / folder, **grid, warp_cache_mb=0, **kwargs)
    # Half a pixel east: off the optical file's grid too
    windows = [*WINDOWS, (slice(X0 + 55.0, X0 + 215.0), slice(Y0 - 210.0, Y0 - 50.0))]
    for index in windows:
        got = cached[index][cached.image_key]
        expected = direct[index][direct.image_key]
        assert torch.equal(got.isnan(), expected.isnan())
        if folder == 'optical':  # the window's CRS: identical values
            assert torch.equal(got.nan_to_num(), expected.nan_to_num())
            continue
        # Another CRS: equal up to GDAL's approximate transformer (an eighth
        # of a source pixel at most), which places tiles and windows apart by
        # a hair
        torch.testing.assert_close(
            got.nan_to_num(), expected.nan_to_num(), rtol=2e-3, atol=1e-5
        )
    assert len(cached.warped_tiles) > 0
    # A second pass reads every window from the tiles: no warp at all
    warps.clear()
    for index in windows:
        cached[index]
    assert warps == []


def test_a_file_on_the_window_grid_is_not_cached() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX)
    optical[window(0, 0, 16, 16)]
    assert len(optical.warped_tiles) == 0


def test_a_file_over_the_budget_is_warped_per_window(
    warps: list[dict[str, Any]],
) -> None:
    sar = SARRaster(MULTIMODAL / 'sar', crs='EPSG:32631', res=RES, warp_cache_mb=0.1)
    with pytest.warns(DataWarning, match=r'sar\.tif: .*warp_cache_mb=0\.1,'):
        sar[WINDOWS[0]]
    sar[WINDOWS[0]]
    assert len(sar.warped_tiles) == 0
    assert len(warps) == 2


def test_reads_do_not_depend_on_the_window_size() -> None:
    # GDAL's kernel scale is fixed by the grids (XSCALE/YSCALE), not by how
    # much of the file a warp reads: a DSM window that runs past the file's
    # edge gives the pixels inside the values of a window that does not
    dsm = DSMRaster(MULTIMODAL / 'dsm', res=40.0, warp_cache_mb=0)
    with rasterio.open(MULTIMODAL / 'dsm' / 'dsm.tif') as src:
        left, top = src.bounds.left, src.bounds.top
    inner = dsm[slice(left, left + 320.0), slice(top - 320.0, top)]['image_dsm']
    across = dsm[slice(left - 160.0, left + 320.0), slice(top - 320.0, top + 160.0)]
    outer = across['image_dsm'][:, 4:, 4:]
    assert torch.equal(inner.isnan(), outer.isnan())
    torch.testing.assert_close(
        inner.nan_to_num(), outer.nan_to_num(), rtol=1e-6, atol=0
    )
