"""Fixtures of the multimodal dataset tests (files under tests/data/)."""

from typing import Any

import pytest
import rasterio.warp

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


@pytest.fixture
def warps(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Count the warps of the read path (the keyword arguments of each)."""
    calls: list[dict[str, Any]] = []
    real = rasterio.warp.reproject

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr('torchgeo_stars.datasets.reading.reproject', counting)
    return calls
