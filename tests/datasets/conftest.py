"""Fixtures of the multimodal dataset tests (files under tests/data/)."""

import pytest

from torchgeo_stars.datasets import DSMRaster, MaskRaster, OpticalRaster, SARRaster

from .geodata_utils import MULTIMODAL, OPTICAL_REGEX


@pytest.fixture
def optical() -> OpticalRaster:
    return OpticalRaster(MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX)


@pytest.fixture
def sar() -> SARRaster:
    return SARRaster(MULTIMODAL / 'sar')


@pytest.fixture
def dsm() -> DSMRaster:
    return DSMRaster(MULTIMODAL / 'dsm')


@pytest.fixture
def mask() -> MaskRaster:
    return MaskRaster(MULTIMODAL / 'mask')
