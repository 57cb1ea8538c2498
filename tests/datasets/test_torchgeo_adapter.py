"""Tests of the TorchGeo adapter: it must agree with TorchGeo's own reader."""

import copy
from pathlib import Path

import pandas as pd
import pyproj
import pytest
import rasterio
import torch
import torchgeo
from packaging.version import Version
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from torchgeo.datasets import RasterDataset
from torchgeo.datasets.utils import GeoSlice

from torchgeo_stars.datasets import OpticalRaster
from torchgeo_stars.datasets.torchgeo_adapter import (
    TARGET_TORCHGEO,
    band_file,
    files_in_window,
    georeferencing,
    window_grid,
)

from .geodata_utils import MULTIMODAL, SENTINEL2, X0, Y0, window

S2_REGEX = r'^T(?P<tile>\w{5})_(?P<date>\d{8})_(?P<band>B\d{2})\.tif$'


class Sentinel2Bands(RasterDataset):
    filename_glob = 'T*_B0[2348].tif'
    filename_regex = S2_REGEX
    date_format = '%Y%m%d'
    separate_files = True
    all_bands = ('B02', 'B03', 'B04', 'B08')


def test_installed_torchgeo_is_the_target() -> None:
    # A failure here means TorchGeo was upgraded: re-check the private helpers
    # the adapter calls, then move TARGET_TORCHGEO (and pyproject.toml).
    low, high = (Version(v) for v in TARGET_TORCHGEO)
    assert low <= Version(torchgeo.__version__) < high


def test_window_matches_torchgeo_sample() -> None:
    dataset = RasterDataset(MULTIMODAL / 'optical')
    for index in (
        window(3, 5, 16, 8),  # x and y only
        (*window(0, 0, 4, 4), slice(pd.Timestamp('2023-01-01'), None)),
        (slice(X0 + 10.0, X0 + 90.0, 20.0), slice(Y0 - 60.0, Y0, 20.0)),
        # a sampler's window: every extent given, no step (resolved without
        # the dataset's bounds)
        (
            *window(2, 1, 8, 8),
            slice(pd.Timestamp('2020-01-01'), pd.Timestamp('2030-01-01')),
        ),
    ):
        sample = dataset[index]
        grid = window_grid(dataset, index)
        assert torch.equal(grid.bounds_tensor(), sample['bounds'])
        assert torch.equal(torch.tensor(grid.transform), sample['transform'])
        assert grid.shape == tuple(sample['image'].shape[-2:])
    assert window_grid(dataset, window(0, 0, 16, 8)).step == (10.0, 10.0)


def test_files_in_window_as_torchgeo_picks_them() -> None:
    dataset = Sentinel2Bands(SENTINEL2)
    x, y, t = dataset.bounds
    every = files_in_window(dataset, window_grid(dataset, (x, y)))
    # TorchGeo indexes every band file: 2 dates x 4 bands
    assert sorted(every) == sorted(str(p) for p in SENTINEL2.glob('T*.tif'))
    june1 = slice(pd.Timestamp('2023-06-01'), pd.Timestamp('2023-06-01 23:59'))
    picked = files_in_window(dataset, window_grid(dataset, (x, y, june1)))
    assert len(picked) == 4
    assert all('_20230601_' in Path(f).name for f in picked)
    # Every other file (tres = 2)
    step = slice(t.start, t.stop, 2)
    assert len(files_in_window(dataset, window_grid(dataset, (x, y, step)))) == 4
    # Outside every file: nothing (TorchGeo raises IndexError there)
    far = slice(x.stop + 100.0, x.stop + 200.0)
    assert files_in_window(dataset, window_grid(dataset, (far, y))) == []


def test_file_query_prepared_once_per_index_and_crs() -> None:
    original = OpticalRaster(MULTIMODAL / 'optical')
    original.bounds  # noqa: B018 (CRS and bounds kept by the original)
    # TorchGeo's roi_split deep-copies datasets: the copy's index has its own
    # CRS object, and the copy must still prepare its query only once
    dataset = copy.deepcopy(original)
    assert dataset.crs is dataset.index.crs  # derived again from the copy's index
    dataset[window(0, 0, 4, 4)]
    query = dataset.__dict__['_index_query']
    dataset[window(4, 4, 4, 4)]
    assert dataset.__dict__['_index_query'] is query
    dataset.crs = pyproj.CRS.from_epsg(32632)
    x, y, _ = dataset.bounds
    cx, cy = (x.start + x.stop) / 2, (y.start + y.stop) / 2  # inside the footprint
    dataset[(slice(cx, cx + 40.0), slice(cy - 40.0, cy))]
    assert dataset.__dict__['_index_query'] is not query


def test_band_file() -> None:
    dataset = Sentinel2Bands(SENTINEL2)
    first = str(SENTINEL2 / 'T31UFQ_20230611_B02.tif')
    assert band_file(dataset, 'B08', first) == str(
        SENTINEL2 / 'T31UFQ_20230611_B08.tif'
    )


@pytest.mark.filterwarnings('ignore::rasterio.errors.NotGeoreferencedWarning')
def test_georeferencing_from_gcps(tmp_path: Path) -> None:
    dataset = RasterDataset(MULTIMODAL / 'optical')
    with rasterio.open(MULTIMODAL / 'optical' / 'optical_20230601.tif') as src:
        assert georeferencing(dataset, src) == (src.crs, src.transform)
        profile = src.profile
        data = src.read()
        transform = src.transform
        crs = src.crs
    # The same pixels georeferenced by four corner GCPs only
    path = tmp_path / 'gcps.tif'
    profile.pop('transform')
    profile.pop('crs')
    height, width = data.shape[-2:]
    corners = [(0, 0), (0, width), (height, 0), (height, width)]
    gcps = []
    for row, col in corners:
        gx, gy = transform @ (col, row)
        gcps.append(GroundControlPoint(row=row, col=col, x=gx, y=gy))
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(data)
        dst.gcps = (gcps, crs)
    with rasterio.open(path) as src:
        found_crs, found = georeferencing(dataset, src)
    assert CRS.from_user_input(found_crs) == crs
    assert found.almost_equals(transform, precision=1e-6)


def torchgeo_query(dataset: RasterDataset, index: GeoSlice) -> list[str]:
    """The file query of TorchGeo 0.10's ``RasterDataset.__getitem__``."""
    x, y, t = dataset._disambiguate_slice(index)
    frame = dataset.index
    frame = frame.iloc[frame.index.overlaps(pd.Interval(t.start, t.stop))]
    frame = frame.iloc[:: t.step]
    frame = frame.cx[x.start : x.stop, y.start : y.stop]
    return [str(f) for f in frame['filepath']]


def test_cached_query_agrees_with_torchgeo() -> None:
    dataset = RasterDataset([SENTINEL2, MULTIMODAL / 'optical'])
    dataset.crs = CRS.from_epsg(32631)
    generator = torch.Generator().manual_seed(0)
    x, y, t = dataset.bounds
    june1 = slice(pd.Timestamp('2023-06-01'), pd.Timestamp('2023-06-01 23:59'))
    times = [t, june1, slice(t.start, t.stop, 2)]
    found = set()
    for i in range(60):
        xmin, ymin = (
            float(v)
            for v in torch.rand(2, generator=generator)
            * torch.tensor([x.stop - x.start, y.stop - y.start])
        )
        xmin += x.start - 200.0
        ymin += y.start - 200.0
        index: GeoSlice = (
            slice(xmin, xmin + 300.0),
            slice(ymin, ymin + 300.0),
            times[i % 3],
        )
        files = files_in_window(dataset, window_grid(dataset, index))
        assert files == torchgeo_query(dataset, index)
        found.add(len(files))
    assert len(found) > 1  # some windows hit more files than others
    # The index reprojected in place (TorchGeo's crs setter): query rebuilt
    dataset.crs = CRS.from_epsg(3857)
    x, y, _ = dataset.bounds
    files = files_in_window(dataset, window_grid(dataset, (x, y)))
    assert files == torchgeo_query(dataset, (x, y))
    assert len(files) == len(dataset.index)
