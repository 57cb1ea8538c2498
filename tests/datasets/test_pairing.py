"""Tests of pairing modality datasets by geographic extent."""

import logging

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from pyproj import Transformer
from torch import Tensor
from torch.utils.data import DataLoader
from torchgeo.datasets import RasterDataset, stack_samples
from torchgeo.samplers import (
    GriddedPatchSampler,
    GridGeoSampler,
    RandomGeoSampler,
    RandomPatchSampler,
)
from torchgeo.samplers.base import GeoSampler

from torchgeo_stars.datasets import (
    DSMRaster,
    MaskRaster,
    ModalityIntersection,
    ModalityRaster,
    ModalityStatistics,
    NormalizeModalities,
    OpticalRaster,
    PairedDataset,
    SARRaster,
    pair_modalities,
)
from torchgeo_stars.datasets.intersection import fill_invalid
from torchgeo_stars.errors import ConfigurationError, DataError

from .geodata_utils import (
    MULTIMODAL,
    OPTICAL_REGEX,
    RES,
    SENTINEL2,
    SQUARE_COLS,
    SQUARE_ROWS,
    X0,
    Y0,
    window,
)

KEYS = {'image_optical', 'image_sar', 'image_dsm', 'mask', 'bounds', 'transform'}


def square_truth(height: int, width: int, row0: int = 0, col0: int = 0) -> Tensor:
    truth = torch.zeros(height, width, dtype=torch.bool)
    truth[
        SQUARE_ROWS[0] - row0 : SQUARE_ROWS[1] - row0,
        SQUARE_COLS[0] - col0 : SQUARE_COLS[1] - col0,
    ] = True
    return truth


def edges(found: Tensor) -> tuple[int, int, int, int]:
    rows, cols = torch.nonzero(found, as_tuple=True)
    return (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)


def centroid(found: Tensor) -> Tensor:
    return torch.nonzero(found).double().mean(0)


def bright_centre(path: str, threshold: float, crs: str) -> tuple[float, float]:
    """Ground position (in *crs*) of the centre of a file's bright pixels."""
    with rasterio.open(path) as src:
        rows, cols = np.nonzero(src.read(1) > threshold)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
        source = src.crs
    tx, ty = Transformer.from_crs(source, crs, always_xy=True).transform(xs, ys)
    return float(np.mean(tx)), float(np.mean(ty))


def file_range(path: str, band: int, positive: bool = False) -> tuple[float, float]:
    with rasterio.open(path) as src:
        data = src.read(band, masked=True).astype(np.float64).filled(np.nan)
    valid = np.isfinite(data) & ((data > 0) if positive else (data > -1000))
    return float(data[valid].min()), float(data[valid].max())


def test_and_chain_keeps_each_modality(
    optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster, mask: MaskRaster
) -> None:
    dataset = optical & sar & dsm & mask  # 4-way (torchgeo issue #3721)
    assert isinstance(dataset, ModalityIntersection)
    assert dataset.modalities == ('optical', 'sar', 'dsm')
    sample = dataset[window(16, 8, 20, 20)]
    assert set(sample) == KEYS | {'available'}
    assert sample['image_optical'].shape == (4, 20, 20)
    assert sample['image_sar'].shape == (2, 20, 20)
    assert sample['image_dsm'].shape == (1, 20, 20)
    assert sample['mask'].shape == (20, 20)
    assert sample['mask'].dtype == torch.int64
    # bounds / transform once, not concatenated
    assert sample['bounds'].shape == (9,)
    assert sample['transform'].shape == (9,)
    assert sample['available'].tolist() == [True, True, True]
    # The index is where all four have files: cut to the SAR's eastern edge
    assert dataset.bounds[0].stop < X0 + 45 * RES


def test_and_chain_any_length_and_order(
    optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster, mask: MaskRaster
) -> None:
    height = ModalityRaster(MULTIMODAL / 'dsm', modality='height')
    dataset = mask & dsm & optical & sar & height
    assert isinstance(dataset, ModalityIntersection)
    assert dataset.modalities == ('dsm', 'optical', 'sar', 'height')
    sample = dataset[window(16, 8, 8, 8)]
    assert set(sample) == KEYS | {'image_height', 'available'}
    assert torch.equal(sample['image_height'], sample['image_dsm'])
    assert sample['available'].shape == (4,)


def test_and_logs_torchgeo_conversions_instead_of_printing(
    optical: OpticalRaster,
    sar: SARRaster,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SAR is in Web Mercator at 28 m: TorchGeo converts it and says so
    with caplog.at_level(logging.DEBUG, logger='torchgeo_stars.datasets.intersection'):
        optical & sar
    assert 'Converting' not in capsys.readouterr().out
    assert any('Converting SARRaster CRS' in r.getMessage() for r in caplog.records)


def test_and_same_modality_twice_is_an_error(optical: OpticalRaster) -> None:
    other = OpticalRaster(MULTIMODAL / 'optical')
    with pytest.raises(ConfigurationError, match="'image_optical'"):
        (optical & other)[window(8, 8, 4, 4)]


# key, file, threshold between background and square, source pixel size on the
# ground (m; SAR: 28 Web-Mercator units at 45 degrees N).
SOURCES = (
    ('image_optical', 'optical/optical_20230601.tif', 1500.0, 10.0),
    ('image_sar', 'sar/sar.tif', 0.525, 19.8),
    ('image_dsm', 'dsm/dsm.tif', 143.0, 20.0),
)


def check_alignment(
    sample: dict[str, Tensor], crs: str, xmin: float, ymax: float, res: float
) -> None:
    """The bright square of every modality is where its file puts it on the ground.

    The expected position is computed from each source file independently (its
    bright pixels' centres, transformed to *crs*), so a wrong reprojection, a
    half-pixel shift or a swapped axis moves the found centre away from it.
    Tolerance: half a pixel of the common grid per axis (each file is warped
    once, straight onto the window grid).
    """
    for key, name, threshold, _ in SOURCES:
        ex, ey = bright_centre(str(MULTIMODAL / name), threshold, crs)
        expected = torch.tensor([(ymax - ey) / res - 0.5, (ex - xmin) / res - 0.5])
        found = sample[key][0] > threshold
        offset = (centroid(found) - expected.double()).abs()
        assert (offset <= 0.5).all(), (key, offset)


@pytest.mark.parametrize('constructor', ['pair', 'and'])
def test_cross_crs_pixel_alignment(
    constructor: str,
    optical: OpticalRaster,
    sar: SARRaster,
    dsm: DSMRaster,
    mask: MaskRaster,
) -> None:
    # optical: UTM 31N 10 m; SAR: Web Mercator ~20 m; DSM: UTM 32N 20 m
    dataset: PairedDataset | ModalityIntersection
    if constructor == 'pair':
        dataset = pair_modalities({'optical': optical, 'sar': sar, 'dsm': dsm}, mask)
    else:
        dataset = optical & sar & dsm & mask
    assert dataset.crs.to_epsg() == 32631
    assert dataset.res == (RES, RES)
    sample = dataset[window(0, 0, 32, 32)]
    truth = square_truth(32, 32)
    # Same grid as the reference: exact
    assert torch.equal(sample['image_optical'][0] > 1500, truth)
    assert torch.equal(sample['mask'] == 1, truth)
    # Reprojected from coarser grids: each edge within one pixel ...
    for key, _, threshold, _ in SOURCES[1:]:
        found = sample[key][0] > (125.0 if key == 'image_dsm' else threshold)
        for got, want in zip(edges(found), edges(truth), strict=True):
            assert abs(got - want) <= 1, key
    # ... and the centre where the source file has it
    check_alignment(sample, 'EPSG:32631', X0, Y0, RES)


def test_user_grid(optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster) -> None:
    dataset = pair_modalities(
        {'optical': optical, 'sar': sar, 'dsm': dsm}, crs='EPSG:32632', res=5.0
    )
    assert dataset.crs.to_epsg() == 32632
    assert dataset.res == (5.0, 5.0)
    # A 40 x 40 px window around the square's centre in UTM 32N
    ex, ey = bright_centre(
        str(MULTIMODAL / 'optical/optical_20230601.tif'), 1500.0, 'EPSG:32632'
    )
    xmin, ymax = round(ex) - 100.0, round(ey) + 100.0
    sample = dataset[slice(xmin, xmin + 200.0), slice(ymax - 200.0, ymax)]
    for key, _, threshold, _ in SOURCES:
        assert sample[key].shape[-2:] == (40, 40)
        # 100 m square = 20 x 20 px of 5 m (rotated ~4 degrees between zones)
        found = sample[key][0] > (125.0 if key == 'image_dsm' else threshold)
        assert 300 <= int(found.sum()) <= 500, key
    check_alignment(sample, 'EPSG:32632', xmin, ymax, 5.0)


def test_crs_only_keeps_pixel_size(optical: OpticalRaster, sar: SARRaster) -> None:
    dataset = pair_modalities({'optical': optical, 'sar': sar}, crs=3857)
    # 10 m on the ground at 45 degrees N is about 10 / cos(45) Mercator units
    expected = 10 / np.cos(np.radians(45.0))
    assert dataset.res[0] == pytest.approx(expected, rel=0.02)
    assert dataset.res[1] == pytest.approx(expected, rel=0.02)


def test_dateless_pairs_with_dated(
    optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster, mask: MaskRaster
) -> None:
    dataset = pair_modalities({'optical': optical, 'sar': sar, 'dsm': dsm}, mask)
    assert len(dataset) == 1
    interval = dataset.index.index[0]
    assert interval.left == pd.Timestamp('2023-06-01')
    assert interval.right < pd.Timestamp('2023-06-02')
    x, y = window(10, 10, 8, 8)
    sample = dataset[x, y, slice(interval.left, interval.right)]
    assert sample['available'].tolist() == [True, True, True]


def test_dates_must_overlap_unless_spatial_only(optical: OpticalRaster) -> None:
    later = OpticalRaster(
        SENTINEL2,
        filename_glob='T31UFQ_20230611_B02.tif',
        filename_regex=r'^T\w{5}_(?P<date>\d{8})_B02\.tif$',
        modality='optical_later',
    )
    with pytest.raises(DataError, match='temporal') as info:
        optical & later
    assert 'spatial_only=True' in str(info.value)
    with pytest.raises(DataError, match='temporal'):
        pair_modalities({'optical': optical, 'optical_later': later})
    joined = ModalityIntersection(optical, later, spatial_only=True)
    sample = joined[window(0, 0, 16, 16)]
    assert sample['image_optical_later'][0, 0, 0].item() == 200 + 5000
    paired = pair_modalities(
        {'optical': optical, 'optical_later': later}, spatial_only=True
    )
    assert torch.equal(
        paired[window(0, 0, 16, 16)]['image_optical_later'],
        sample['image_optical_later'],
    )


def test_optional_modality_outside_coverage(
    optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster, mask: MaskRaster
) -> None:
    dataset = pair_modalities(
        {'optical': optical, 'sar': sar, 'dsm': dsm}, mask, optional=['sar']
    )
    assert dataset.optional == ('sar',)
    assert dataset.required == ('optical', 'dsm')
    # The index is the required modalities' (whole optical extent), not cut to SAR
    x, y, _ = dataset.bounds
    assert (x.start, x.stop, y.start, y.stop) == (X0, X0 + 640, Y0 - 640, Y0)
    east = dataset[window(0, 48, 16, 16)]  # no SAR file there
    assert east['available'].tolist() == [True, False, True]
    assert east['image_sar'].shape == (2, 16, 16)
    assert (east['image_sar'] == 0).all()
    west = dataset[window(16, 8, 16, 16)]
    assert west['available'].tolist() == [True, True, True]
    assert (west['image_sar'] > 0).all()


def test_all_nodata_window(
    optical: OpticalRaster, sar: SARRaster, dsm: DSMRaster, mask: MaskRaster
) -> None:
    paired = pair_modalities(
        {'optical': optical, 'sar': sar, 'dsm': dsm}, mask, optional=['sar']
    )
    # SAR zeros / negatives only (optional modality)
    sample = paired[window(48, 2, 12, 12)]
    assert sample['available'].tolist() == [True, False, True]
    assert (sample['image_sar'] == 0).all()
    # DSM -9999 only (and no SAR file): a required modality is flagged too
    sample = paired[window(54, 50, 10, 14)]
    assert sample['available'].tolist() == [True, False, False]
    assert (sample['image_dsm'] == 0).all()
    assert torch.isfinite(sample['image_optical']).all()
    # Next to the void: available
    sample = paired[window(54, 32, 10, 10)]
    assert sample['available'].tolist() == [True, True, True]


def test_required_all_nodata_flag_in_intersection(
    optical: OpticalRaster, dsm: DSMRaster
) -> None:
    joined = optical & dsm
    sample = joined[window(54, 50, 10, 14)]
    assert sample['available'].tolist() == [True, False]
    assert (sample['image_dsm'] == 0).all()


def _check_clean(
    sample: dict[str, Tensor],
    fills: dict[str, Tensor],
    ranges: dict[str, list[tuple[float, float]]],
) -> None:
    """Every value is finite, and either a real file value or the fill value.

    An unavailable modality is all zeros.
    """
    for i, (key, band_ranges) in enumerate(ranges.items()):
        image = sample[key]
        assert torch.isfinite(image).all(), key
        if not sample['available'][i]:
            assert (image == 0).all(), key
            continue
        fill = fills[key]
        for band, (low, high) in enumerate(band_ranges):
            values = image[..., band, :, :]
            real = (values >= low - 1e-4) & (values <= high + 1e-4)
            filled = values == fill[band]
            assert (real | filled).all(), key


@pytest.mark.parametrize('with_statistics', [False, True])
def test_nan_and_nodata_never_leak(
    with_statistics: bool,
    optical: OpticalRaster,
    sar: SARRaster,
    dsm: DSMRaster,
    mask: MaskRaster,
) -> None:
    stats = {
        'optical': ModalityStatistics((1.0, 2.0, 3.0, 4.0), (1.0, 1.0, 1.0, 1.0)),
        'sar': ModalityStatistics((0.25, 0.125), (1.0, 1.0)),
        'dsm': ModalityStatistics((110.0,), (10.0,)),
    }
    dataset = pair_modalities(
        {'optical': optical, 'sar': sar, 'dsm': dsm},
        mask,
        optional=['sar', 'dsm'],
        statistics=stats if with_statistics else None,
    )
    fills = {
        f'image_{m}': torch.tensor(s.mean) if with_statistics else torch.zeros(4)
        for m, s in stats.items()
    }
    # Valid values of the files: interpolation between valid pixels stays inside
    ranges = {
        'image_optical': [(300.0, 3300.0)] * 4,
        'image_sar': [
            file_range(str(MULTIMODAL / 'sar' / 'sar.tif'), b, positive=True)
            for b in (1, 2)
        ],
        'image_dsm': [file_range(str(MULTIMODAL / 'dsm' / 'dsm.tif'), 1)],
    }
    seen = torch.zeros(3, dtype=torch.long)
    for index in GridGeoSampler(dataset, size=16, stride=12):
        sample = dataset[index]
        _check_clean(sample, fills, ranges)
        seen += ~sample['available']
    assert seen[1] > 0  # the grid did meet windows without SAR
    # The optical nodata block (rows 0-3, cols 0-3) holds the fill value
    corner = dataset[window(0, 0, 8, 8)]['image_optical']
    expected = fills['image_optical'].view(4, 1, 1).expand(4, 4, 4)
    assert torch.equal(corner[:, :4, :4], expected)
    if with_statistics:
        normalized = NormalizeModalities(stats)({'image_optical': corner})
        assert (normalized['image_optical'][:, :4, :4] == 0).all()


def test_plain_torchgeo_dataset_as_modality(optical: OpticalRaster) -> None:
    class PlainDSM(RasterDataset):
        filename_glob = '*.tif'

    plain = PlainDSM(MULTIMODAL / 'dsm')
    dataset = pair_modalities({'optical': optical, 'dsm': plain})
    assert dataset.num_bands == {'optical': 4, 'dsm': 1}
    # The -9999 block: TorchGeo returns -9999 as a value; pairing treats it as nodata
    sample = dataset[window(54, 50, 10, 14)]
    assert sample['available'].tolist() == [True, False]
    sample = dataset[window(40, 36, 16, 16)]  # half void
    assert sample['available'].tolist() == [True, True]
    assert (sample['image_dsm'] > -1000).all()


@pytest.mark.parametrize(
    'make_sampler',
    [
        lambda ds: RandomGeoSampler(ds, size=16, length=6),
        lambda ds: GridGeoSampler(ds, size=16, stride=16),
        lambda ds: RandomPatchSampler(ds, size=16, length=6, generator=0),
        lambda ds: GriddedPatchSampler(ds, size=16),
    ],
)
def test_samplers_and_dataloader(
    make_sampler: object,
    optical: OpticalRaster,
    sar: SARRaster,
    dsm: DSMRaster,
    mask: MaskRaster,
) -> None:
    dataset = pair_modalities(
        {'optical': optical, 'sar': sar, 'dsm': dsm}, mask, optional=['sar', 'dsm']
    )
    assert callable(make_sampler)
    sampler: GeoSampler = make_sampler(dataset)
    loader = DataLoader(
        dataset, batch_size=3, sampler=sampler, collate_fn=stack_samples
    )
    batches = list(loader)
    assert sum(len(b['available']) for b in batches) == len(sampler) > 0
    for batch in batches:
        size = len(batch['available'])
        assert batch['image_optical'].shape == (size, 4, 16, 16)
        assert batch['image_sar'].shape == (size, 2, 16, 16)
        assert batch['image_dsm'].shape == (size, 1, 16, 16)
        assert batch['mask'].shape == (size, 16, 16)
        assert batch['mask'].dtype == torch.int64
        assert batch['available'].shape == (size, 3)
        assert batch['available'].dtype == torch.bool
        assert batch['available'][:, 0].all()  # optical is required
        for key in ('image_optical', 'image_sar', 'image_dsm'):
            assert torch.isfinite(batch[key]).all()


# Errors ---------------------------------------------------------------------


def test_no_overlap_error(optical: OpticalRaster, dsm: DSMRaster) -> None:
    far = OpticalRaster(
        MULTIMODAL / 'far', filename_regex=OPTICAL_REGEX, modality='optical_far'
    )
    with pytest.raises(DataError, match='No spatial overlap') as info:
        optical & far
    message = str(info.value)
    for text in ("'optical'", "'optical_far'", 'optical_20230601.tif', 'EPSG:32631'):
        assert text in message
    assert '735600.00' in message
    assert '835600.00' in message
    with pytest.raises(DataError, match='No spatial overlap') as info:
        pair_modalities({'dsm': dsm, 'optical_far': far})
    assert "'dsm'" in str(info.value)
    assert 'EPSG:32632' in str(info.value)
    with pytest.raises(DataError, match=r"'optical_far'.*does not overlap"):
        pair_modalities(
            {'optical': optical, 'optical_far': far}, optional=['optical_far']
        )


def test_configuration_errors(optical: OpticalRaster, sar: SARRaster) -> None:
    images = {'optical': optical, 'sar': sar}
    with pytest.raises(ConfigurationError, match='at least one must be required'):
        pair_modalities(images, optional=['optical', 'sar'])
    with pytest.raises(ConfigurationError, match="'dsm'"):
        pair_modalities(images, optional=['dsm'])
    with pytest.raises(ConfigurationError, match='at least one modality'):
        pair_modalities({})
    with pytest.raises(ConfigurationError, match="'dsm'"):
        pair_modalities(images, statistics={'dsm': {'mean': [0.0], 'std': [1.0]}})
    with pytest.raises(ConfigurationError, match='2 bands'):
        pair_modalities(images, statistics={'optical': {'mean': [0, 0], 'std': [1, 1]}})
    with pytest.raises(ConfigurationError, match='not valid'):
        pair_modalities({'opt ical': optical})


def test_paired_dataset_type_and_grid_setters(
    optical: OpticalRaster, sar: SARRaster
) -> None:
    dataset = pair_modalities({'optical': optical, 'sar': sar}, optional=['sar'])
    assert isinstance(dataset, PairedDataset)
    dataset.res = 20.0
    assert optical.res == sar.res == (20.0, 20.0)
    sample = dataset[window(0, 0, 16, 16)]
    assert sample['image_optical'].shape == (4, 8, 8)
    assert sample['image_sar'].shape == (2, 8, 8)


def test_fill_invalid_replaces_every_non_finite_pixel() -> None:
    image = torch.ones(2, 4, 4)
    image[0, 1, 2] = float('nan')
    image[1, 3, 3] = float('inf')
    image[1, 0, 0] = -float('inf')
    filled, ok = fill_invalid(image, torch.tensor([5.0, 7.0]))
    assert ok
    assert torch.isfinite(filled).all()
    assert filled[0, 1, 2] == 5.0
    assert filled[1, 3, 3] == 7.0
    assert filled[1, 0, 0] == 7.0
    assert (filled == 1).sum() == image.numel() - 3


def test_fill_invalid_keeps_finite_pixels_whose_sum_overflows() -> None:
    image = torch.full((1, 2, 2), 3e38)  # float32 sum overflows to inf
    filled, ok = fill_invalid(image)
    assert ok
    assert filled is image


def test_fill_invalid_without_any_valid_pixel_is_zero() -> None:
    filled, ok = fill_invalid(torch.full((1, 2, 2), float('nan')))
    assert not ok
    assert torch.equal(filled, torch.zeros(1, 2, 2))
