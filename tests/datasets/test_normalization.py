"""Tests of per-modality statistics and normalisation."""

import json

import numpy as np
import pytest
import rasterio
import torch

from torchgeo_stars.datasets import (
    DSMRaster,
    MaskRaster,
    ModalityStatistics,
    NormalizeModalities,
    OpticalRaster,
    SARRaster,
    compute_statistics,
    pair_modalities,
)
from torchgeo_stars.errors import ConfigurationError, DataError

from .geodata_utils import MULTIMODAL, window


def valid_pixels(path: str, rule: str) -> np.ndarray:
    """(C, N) valid pixels of a file, with numpy only."""
    with rasterio.open(path) as src:
        data = src.read().astype(np.float64)
        nodata = src.nodata
    valid = np.isfinite(data)
    if nodata is not None:
        valid &= data != nodata
    if rule == 'positive':
        valid &= data > 0
    return np.stack([band[ok] for band, ok in zip(data, valid, strict=True)])


@pytest.mark.parametrize(
    ('make', 'name', 'path', 'rule'),
    [
        (lambda p: OpticalRaster(p), 'optical', 'optical/optical_20230601.tif', ''),
        (lambda p: SARRaster(p), 'sar', 'sar/sar.tif', 'positive'),
        (lambda p: DSMRaster(p), 'dsm', 'dsm/dsm.tif', ''),
    ],
)
def test_statistics_match_numpy(make: object, name: str, path: str, rule: str) -> None:
    file = str(MULTIMODAL / path)
    assert callable(make)
    dataset = make(file)
    # A patch larger than the file: every window is the whole file
    stats = compute_statistics(dataset, name, num_samples=3, patch_size=1000)
    pixels = valid_pixels(file, rule)
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(stats.std, pixels.std(axis=1), rtol=1e-5)
    assert stats.bands == tuple(dataset.bands)


def test_statistics_ignore_nodata_not_fill() -> None:
    # The optical nodata block (0) must not pull the mean down
    file = str(MULTIMODAL / 'optical/optical_20230601.tif')
    stats = compute_statistics(OpticalRaster(file), 'optical', 1, 1000)
    with rasterio.open(file) as src:
        raw = src.read(1).astype(np.float64)
    assert stats.mean[0] > raw.mean()
    assert stats.mean[0] == pytest.approx(raw[raw != 0].mean())


def test_statistics_random_windows_are_seeded() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical')
    first = compute_statistics(optical, 'optical', num_samples=4, patch_size=8, seed=1)
    again = compute_statistics(optical, 'optical', num_samples=4, patch_size=8, seed=1)
    other = compute_statistics(optical, 'optical', num_samples=4, patch_size=8, seed=2)
    assert first == again
    assert first != other
    # Estimates from small windows stay within the data's range
    pixels = valid_pixels(str(MULTIMODAL / 'optical/optical_20230601.tif'), '')
    assert all(
        low <= m <= high
        for m, low, high in zip(
            first.mean, pixels.min(axis=1), pixels.max(axis=1), strict=True
        )
    )


def test_statistics_of_paired_dataset_read_the_modality() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical')
    sar = SARRaster(MULTIMODAL / 'sar')
    paired = pair_modalities({'optical': optical, 'sar': sar}, optional=['sar'])
    direct = compute_statistics(optical, 'optical', 2, 1000)
    through = compute_statistics(paired, 'optical', 2, 1000)
    # Pairing fills the nodata block with 0; the statistics must not see it
    assert through == direct
    with pytest.raises(ConfigurationError, match="'dsm'"):
        compute_statistics(paired, 'dsm')


def test_statistics_errors() -> None:
    dsm = DSMRaster(MULTIMODAL / 'dsm', min_valid=1e6)  # every pixel invalid
    with pytest.raises(DataError, match="no valid pixel of modality 'dsm'"):
        compute_statistics(dsm, 'dsm', num_samples=2, patch_size=1000)
    with pytest.raises(ConfigurationError, match='positive'):
        compute_statistics(dsm, 'dsm', num_samples=0)
    with pytest.raises(ConfigurationError, match='image_mask'):
        compute_statistics(MaskRaster(MULTIMODAL / 'mask'), 'mask', 1, 1000)


def test_statistics_serialisation() -> None:
    stats = ModalityStatistics([1, 2.5], [0.5, 4], ['VV', 'VH'])
    assert stats.mean == (1.0, 2.5)
    assert stats.num_bands == 2
    plain = stats.to_dict()
    assert plain == {'mean': [1.0, 2.5], 'std': [0.5, 4.0], 'bands': ['VV', 'VH']}
    assert json.loads(json.dumps(plain)) == plain
    assert ModalityStatistics.from_dict(plain) == stats
    assert ModalityStatistics.from_json(stats.to_json()) == stats
    assert ModalityStatistics.from_dict({'mean': [3], 'std': [2]}).bands is None


@pytest.mark.parametrize(
    ('mean', 'std', 'bands'),
    [
        ((1.0,), (1.0, 2.0), None),
        ((1.0,), (0.0,), None),
        ((float('nan'),), (1.0,), None),
        ((1.0, 2.0), (1.0, 1.0), ('a',)),
        ((), (), None),
    ],
)
def test_statistics_validation(
    mean: tuple[float, ...], std: tuple[float, ...], bands: tuple[str, ...] | None
) -> None:
    with pytest.raises(ConfigurationError):
        ModalityStatistics(mean, std, bands)


@pytest.mark.parametrize(
    'data', [{'mean': [1.0]}, {'mean': [1.0], 'std': [1.0], 'scale': 2}]
)
def test_statistics_from_bad_dict(data: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="'mean' and 'std'"):
        ModalityStatistics.from_dict(data)


def test_normalize_each_modality_with_its_own_statistics() -> None:
    stats: dict[str, ModalityStatistics | dict[str, list[float]]] = {
        'optical': ModalityStatistics((10.0, 20.0), (2.0, 4.0)),
        'sar': {'mean': [-5.0], 'std': [0.5]},  # dict form, as in a config
    }
    normalize = NormalizeModalities(stats)
    optical = torch.rand(2, 3, 3) * 50
    sar = torch.rand(1, 3, 3) * -10
    mask = torch.ones(3, 3, dtype=torch.long)
    out = normalize({'image_optical': optical, 'image_sar': sar, 'mask': mask})
    expected = (optical - torch.tensor([10.0, 20.0]).view(2, 1, 1)) / torch.tensor(
        [2.0, 4.0]
    ).view(2, 1, 1)
    torch.testing.assert_close(out['image_optical'], expected)
    torch.testing.assert_close(out['image_sar'], (sar + 5.0) / 0.5)
    assert out['mask'] is mask
    # Batched input, and the band mean maps to 0
    batch = torch.tensor([10.0, 20.0]).view(1, 2, 1, 1).expand(4, 2, 5, 5)
    assert (normalize({'image_optical': batch})['image_optical'] == 0).all()


def test_normalize_rezero_unavailable_and_strict() -> None:
    stats = {
        'optical': ModalityStatistics((1.0,), (1.0,)),
        'sar': ModalityStatistics((3.0,), (1.0,)),
    }
    normalize = NormalizeModalities(stats, modalities=['optical', 'sar'])
    batch = {
        'image_optical': torch.full((2, 1, 2, 2), 5.0),
        'image_sar': torch.zeros(2, 1, 2, 2),
        'available': torch.tensor([[True, True], [True, False]]),
    }
    out = normalize(batch)
    assert (out['image_sar'][0] == -3.0).all()  # available: normalised
    assert (out['image_sar'][1] == 0).all()  # unavailable: back to zero
    assert (out['image_optical'] == 4.0).all()
    with pytest.raises(ConfigurationError, match="'dsm'"):
        normalize({'image_dsm': torch.zeros(1, 2, 2)})
    lenient = NormalizeModalities(stats, strict=False)
    dsm = torch.zeros(1, 2, 2)
    assert lenient({'image_dsm': dsm})['image_dsm'] is dsm
    with pytest.raises(ConfigurationError, match='3 bands'):
        normalize({'image_optical': torch.zeros(3, 2, 2)})
    with pytest.raises(ConfigurationError, match='no statistics'):
        NormalizeModalities({})


def test_normalize_buffers_follow_the_module() -> None:
    normalize = NormalizeModalities({'dsm': ModalityStatistics((1.0,), (2.0,))})
    names = dict(normalize.named_buffers())
    assert set(names) == {'mean_dsm', 'std_dsm'}
    normalized = normalize.to(torch.float64)
    assert normalized.mean_dsm.dtype == torch.float64


def test_normalize_paired_sample() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical')
    stats = {'optical': compute_statistics(optical, 'optical', 1, 1000)}
    paired = pair_modalities({'optical': optical}, statistics=stats)
    sample = NormalizeModalities(stats)(paired[window(0, 0, 32, 32)])
    image = sample['image_optical']
    assert torch.isfinite(image).all()
    assert (image[:, :4, :4] == 0).all()  # nodata block filled with the mean
    assert set(sample) == {'image_optical', 'bounds', 'transform', 'available'}
