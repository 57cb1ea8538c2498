"""Tests of the quicklook: band names to an RGB composite, grey, NaN."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from torchgeo_stars.datasets import (
    DSMRaster,
    OpticalRaster,
    SARRaster,
    pair_modalities,
    quicklook,
    rgb_band_indexes,
)

from .geodata_utils import MULTIMODAL, window


@pytest.mark.parametrize(
    ('bands', 'expected'),
    [
        (('blue', 'green', 'red', 'nir'), (2, 1, 0)),
        (('Red', 'GREEN', 'blue'), (0, 1, 2)),
        (('B02', 'B03', 'B04', 'B08', 'B11'), (2, 1, 0)),
        (('b08', 'b04', 'b03', 'b02'), (1, 2, 3)),
    ],
)
def test_rgb_band_indexes_from_names(
    bands: tuple[str, ...], expected: tuple[int, int, int]
) -> None:
    assert rgb_band_indexes(bands) == expected


@pytest.mark.parametrize(
    'bands', [('VV', 'VH'), ('red', 'green'), ('height',), (None, None, None), ()]
)
def test_rgb_band_indexes_need_all_three(bands: tuple[str | None, ...]) -> None:
    assert rgb_band_indexes(bands) is None


def test_quicklook_composes_the_named_bands() -> None:
    image = torch.zeros(4, 8, 8)
    image[2] = torch.linspace(0, 1, 64).reshape(8, 8)  # red of B, G, R, NIR
    shown = quicklook(image, (2, 1, 0))
    assert shown.shape == (8, 8, 3)
    assert shown.min() >= 0
    assert shown.max() <= 1
    assert np.ptp(shown[..., 0]) > 0.5  # red first, the only band that varies
    assert np.ptp(shown[..., 1:]) == 0


def test_quicklook_single_band_is_grey_and_nan_safe() -> None:
    image = torch.randn(1, 6, 6)
    image[0, 0, 0] = float('nan')
    shown = quicklook(image)
    assert shown.shape == (6, 6)
    assert np.isfinite(shown).all()


def test_paired_dataset_shows_optical_in_true_colour() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical')
    assert optical.bands == ('blue', 'green', 'red', 'nir')
    dataset = pair_modalities(
        {'optical': optical, 'sar': SARRaster(MULTIMODAL / 'sar')}
    )
    assert dataset.quicklook_bands == {'optical': (2, 1, 0)}
    sample = dataset[window(4, 4, 8, 8)]
    figure = dataset.plot(sample)
    try:
        shown = figure.axes[0].get_images()[0].get_array()
        expected = quicklook(sample['image_optical'], (2, 1, 0))
        assert np.array_equal(np.asarray(shown), expected)
        assert np.asarray(figure.axes[1].get_images()[0].get_array()).ndim == 2
    finally:
        plt.close(figure)


def test_intersection_finds_the_rgb_bands_of_its_rasters() -> None:
    optical = OpticalRaster(MULTIMODAL / 'optical')
    dataset = optical & SARRaster(MULTIMODAL / 'sar') & DSMRaster(MULTIMODAL / 'dsm')
    assert dataset.quicklook_bands == {'optical': (2, 1, 0)}
