"""Tests of the read path: the no-warp fast path, the warp, open file handles.

Datasets that test the warp of each window turn the warped-tile cache off
(``warp_cache_mb=0``); the cache has its own tests (``test_warp_cache.py``).
"""

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.warp
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject

from torchgeo_stars.datasets import DSMRaster, OpticalRaster, SARRaster
from torchgeo_stars.datasets.reading import OpenRasters, read_onto_grid

from .geodata_utils import MULTIMODAL, OPTICAL_REGEX, RES, X0, Y0, window

OPTICAL_FILE = MULTIMODAL / 'optical' / 'optical_20230601.tif'
DSM_FILE = MULTIMODAL / 'dsm' / 'dsm.tif'


def reference_warp(
    path: Path, xmin: float, ymax: float, res: float, shape: tuple[int, int]
) -> np.ndarray:
    """The file warped onto a window grid by rasterio, nodata left out, as NaN."""
    with rasterio.open(path) as src:
        data = src.read(out_dtype='float32')
        data[data == src.nodata] = np.nan
        data[data < -1000] = np.nan  # DSMRaster's min_valid
        out = np.full((src.count, *shape), np.nan, dtype=np.float32)
        reproject(
            data,
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=from_origin(xmin, ymax, res, res),
            dst_crs=src.crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    return out


def test_fast_path_on_the_file_grid(warps: list[dict[str, Any]]) -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX)
    # Windows on the file's grid, inside it and across its west edge
    inside = optical[window(0, 0, 16, 16)]['image_optical'].numpy()
    across = optical[window(8, -4, 16, 16)]['image_optical'].numpy()
    assert warps == []
    expected = reference_warp(OPTICAL_FILE, X0, Y0, RES, (16, 16))
    np.testing.assert_array_equal(inside, expected)  # NaN where nodata, equal
    assert np.isnan(inside[:, :4, :4]).all()
    expected = reference_warp(OPTICAL_FILE, X0 - 4 * RES, Y0 - 8 * RES, RES, (16, 16))
    np.testing.assert_array_equal(across, expected)
    assert np.isnan(across[:, :, :4]).all()


def test_off_grid_windows_warp(warps: list[dict[str, Any]]) -> None:
    optical = OpticalRaster(
        MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX, warp_cache_mb=0
    )
    # Half a pixel off the file's grid: resampled, not copied
    x0, y0 = X0 + 5 * RES + RES / 2, Y0 - 5 * RES
    image = optical[slice(x0, x0 + 80.0), slice(y0 - 80.0, y0)]['image_optical']
    assert len(warps) == 1
    # The window touches the nodata block: the warp leaves it out
    assert np.isnan(warps[0]['src_nodata'])
    expected = reference_warp(OPTICAL_FILE, x0, y0, RES, (8, 8))
    np.testing.assert_allclose(image.numpy(), expected, rtol=1e-6)


def test_valid_source_warps_without_nodata(warps: list[dict[str, Any]]) -> None:
    optical = OpticalRaster(
        MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX, warp_cache_mb=0
    )
    # Off-grid window far from the nodata block: every source pixel is valid,
    # so the faster warp without a nodata value gives the same values
    x0, y0 = X0 + 30 * RES + RES / 2, Y0 - 30 * RES
    image = optical[slice(x0, x0 + 80.0), slice(y0 - 80.0, y0)]['image_optical']
    assert len(warps) == 1
    assert warps[0]['src_nodata'] is None
    expected = reference_warp(OPTICAL_FILE, x0, y0, RES, (8, 8))
    np.testing.assert_allclose(image.numpy(), expected, rtol=1e-6)


def test_same_crs_other_resolution(warps: list[dict[str, Any]]) -> None:
    # DSM: float32, UTM 32N, 20 m; read at 10 m in its own CRS
    dsm = DSMRaster(MULTIMODAL / 'dsm', res=10.0, warp_cache_mb=0)
    with rasterio.open(DSM_FILE) as src:
        left, top = src.bounds.left, src.bounds.top
    # Top-left part, every source pixel valid: GDAL's resampled read, no warp
    x0, y0 = left + 45.0, top - 35.0
    valid = dsm[slice(x0, x0 + 160.0), slice(y0 - 160.0, y0)]['image_dsm']
    assert warps == []
    expected = reference_warp(DSM_FILE, x0, y0, 10.0, (16, 16))
    np.testing.assert_allclose(valid.numpy(), expected, rtol=1e-5)
    # Over the voids (south-east): warped with the voids left out
    x0, y0 = left + 600.0, top - 600.0
    voids = dsm[slice(x0, x0 + 160.0), slice(y0 - 160.0, y0)]['image_dsm']
    assert len(warps) == 1
    assert np.isnan(warps[0]['src_nodata'])
    expected = reference_warp(DSM_FILE, x0, y0, 10.0, (16, 16))
    assert np.isnan(expected).any()
    np.testing.assert_allclose(voids.numpy(), expected, rtol=1e-6)
    # Integer files are warped (GDAL's resampled read would round them)
    optical = OpticalRaster(
        MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX, warp_cache_mb=0
    )
    x0, y0 = X0 + 30 * RES, Y0 - 30 * RES
    optical[slice(x0, x0 + 80.0, 5.0), slice(y0 - 80.0, y0, 5.0)]
    assert len(warps) == 2


def test_cross_crs_always_warps(warps: list[dict[str, Any]]) -> None:
    optical = OpticalRaster(
        MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX, warp_cache_mb=0
    )
    sar = SARRaster(MULTIMODAL / 'sar', warp_cache_mb=0)
    dataset = optical & sar
    dataset[window(0, 0, 16, 16)]
    assert len(warps) == 1  # SAR (Web Mercator) only; optical copied


def test_gdal_mask_without_nodata(tmp_path: Path) -> None:
    # A file whose invalid pixels come from an internal mask, not a nodata value
    path = tmp_path / 'masked.tif'
    data = np.arange(64, dtype=np.uint16).reshape(1, 8, 8) + 1
    profile = {
        'driver': 'GTiff',
        'width': 8,
        'height': 8,
        'count': 1,
        'dtype': 'uint16',
        'crs': 'EPSG:32631',
        'transform': from_origin(X0, Y0, RES, RES),
    }
    valid = np.full((8, 8), 255, dtype=np.uint8)
    valid[:2, :3] = 0
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(path, 'w', **profile) as dst,
    ):
        dst.write(data)
        dst.write_mask(valid)
    with rasterio.open(path) as src:
        out = read_onto_grid(
            src,
            (src.crs, src.transform),
            None,
            src.crs,
            (X0, Y0 - 8 * RES, X0 + 8 * RES, Y0),
            (RES, RES),
            (8, 8),
            Resampling.bilinear,
            'float32',
            lambda array: array,
        )
    assert out is not None
    assert np.isnan(out[0, :2, :3]).all()
    assert int(np.isnan(out).sum()) == 6
    np.testing.assert_array_equal(out[0, 2:], data[0, 2:])


def test_open_rasters_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    handles = OpenRasters(max_open=2)
    first = handles.get(str(OPTICAL_FILE))
    assert handles.get(str(OPTICAL_FILE)) is first
    assert len(handles) == 1
    # In a forked worker (another pid) the parent's handle is not reused
    pid = os.getpid()
    monkeypatch.setattr(os, 'getpid', lambda: pid + 1)
    assert len(handles) == 0
    forked = handles.get(str(OPTICAL_FILE))
    assert forked is not first
    assert not forked.closed
    monkeypatch.undo()
    forked.close()


def test_open_rasters_limit_pickle_close() -> None:
    handles = OpenRasters(max_open=2)
    paths = [str(MULTIMODAL / n) for n in ('sar/sar.tif', 'dsm/dsm.tif')]
    first = handles.get(str(OPTICAL_FILE))
    handles.get(paths[0])
    handles.get(paths[1])  # over the limit: the least recently used is closed
    assert first.closed
    assert len(handles) == 2
    copy = pickle.loads(pickle.dumps(handles))
    assert len(copy) == 0
    assert copy.max_open == 2
    assert not copy.get(paths[0]).closed
    copy.close()
    kept = handles.get(paths[1])
    handles.close()
    assert kept.closed
    assert len(handles) == 0


def test_dataset_pickles_without_handles() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX)
    before = optical[window(0, 0, 8, 8)]['image_optical']
    assert len(optical.open_files) == 1
    copy = pickle.loads(pickle.dumps(optical))
    assert len(copy.open_files) == 0
    after = copy[window(0, 0, 8, 8)]['image_optical']
    np.testing.assert_array_equal(before.numpy(), after.numpy())
