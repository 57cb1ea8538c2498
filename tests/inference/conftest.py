"""Fixtures of the inference tests."""

from pathlib import Path

import numpy as np
import pytest

from .helpers import write_raster


@pytest.fixture
def optical(tmp_path: Path) -> tuple[Path, np.typing.NDArray[np.float32]]:
    """A 3-band 70 x 90 optical raster of random values, and its data."""
    data = np.random.default_rng(0).normal(size=(3, 70, 90)).astype(np.float32)
    return write_raster(tmp_path / 'optical.tif', data), data
