"""Fixtures of the inference tests."""

from pathlib import Path

import numpy as np
import pytest

from torchgeo_stars.inference import Predictor, cli

from .helpers import PIXEL_MODALITIES, PixelModel, write_raster


@pytest.fixture
def optical(tmp_path: Path) -> tuple[Path, np.typing.NDArray[np.float32]]:
    """A 3-band 70 x 90 optical raster of random values, and its data."""
    data = np.random.default_rng(0).normal(size=(3, 70, 90)).astype(np.float32)
    return write_raster(tmp_path / 'optical.tif', data), data


@pytest.fixture
def fake_checkpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A checkpoint path whose loading (``--checkpoint``) gives a pixel model.

    Loading a real checkpoint is tested in ``test_checkpoint.py``; here the
    command's loader is replaced by one that checks the path it was given.
    """
    checkpoint = tmp_path / 'model.ckpt'

    def load(path: Path) -> Predictor:
        assert Path(path) == checkpoint
        model = PixelModel(PIXEL_MODALITIES, 2)
        return Predictor(model, dict(PIXEL_MODALITIES), ['land', 'water'])

    monkeypatch.setattr(cli, 'load_predictor', load)
    return checkpoint
