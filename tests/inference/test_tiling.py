import itertools

import numpy as np
import pytest

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.inference.blending import StreamingBlender
from torchgeo_stars.inference.window import check_tiling, window_origins, window_weight


def test_window_weight_is_smooth_positive_and_peaks_in_the_centre() -> None:
    weight = window_weight(32)
    assert weight.shape == (32, 32)
    assert (weight > 0).all()
    assert weight.max() == weight[15:17, 15:17].max()
    np.testing.assert_allclose(weight, weight.T)
    np.testing.assert_allclose(weight, weight[::-1, ::-1])
    # Falls towards the borders: the corner weighs far less than the centre.
    assert weight[0, 0] < 0.01 * weight[16, 16]
    # Smooth: neighbouring pixels differ by little.
    assert np.abs(np.diff(weight, axis=0)).max() < 0.15


@pytest.mark.parametrize(
    ('length', 'patch', 'stride'),
    [(100, 32, 24), (32, 32, 24), (10, 32, 24), (97, 16, 16)],
)
def test_window_origins_cover_every_pixel_once_started(
    length: int, patch: int, stride: int
) -> None:
    origins = window_origins(length, patch, stride)
    covered = np.zeros(max(length, patch), dtype=int)
    for origin in origins:
        covered[origin : origin + patch] += 1
    assert (covered[:length] >= 1).all()
    assert origins == sorted(set(origins))
    assert origins[0] == 0
    if length >= patch:
        assert origins[-1] + patch == length
        assert all(b - a <= stride for a, b in itertools.pairwise(origins))


@pytest.mark.parametrize(('patch', 'overlap'), [(0, 0), (16, 16), (16, -1)])
def test_bad_tiling_is_refused(patch: int, overlap: int) -> None:
    with pytest.raises(ConfigurationError, match=r'patch_size|overlap'):
        check_tiling(patch, overlap)


def _blend(
    height: int, width: int, patch: int, stride: int, block: int
) -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.float32], int]:
    rows = window_origins(height, patch, stride)
    cols = window_origins(width, patch, stride)
    rng = np.random.default_rng(3)
    blender = StreamingBlender(height, width, rows, cols, patch, 2, block)
    expected = np.zeros((2, height + patch, width + patch), dtype=np.float32)
    result = np.full((2, height, width), np.nan, dtype=np.float32)
    held = 0
    for index, (row, col) in enumerate(itertools.product(rows, cols)):
        values = rng.random((2, patch, patch), dtype=np.float32)
        expected[:, row : row + patch, col : col + patch] += values
        blender.add(row, col, values)
        held = max(held, blender.held_blocks)
        for run in blender.finish(index):
            h, w = run.values.shape[-2:]
            assert np.isnan(
                result[:, run.row : run.row + h, run.col : run.col + w]
            ).all()
            result[:, run.row : run.row + h, run.col : run.col + w] = run.values
    assert blender.done
    return result, expected[:, :height, :width], held


def test_blender_sums_every_window_and_releases_each_block_once() -> None:
    result, expected, _ = _blend(70, 53, 16, 12, 8)
    assert not np.isnan(result).any()
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_blender_memory_does_not_grow_with_height() -> None:
    _, _, held_short = _blend(64, 96, 16, 12, 8)
    _, _, held_tall = _blend(640, 96, 16, 12, 8)
    assert held_tall == held_short
    total_blocks = (640 // 8) * (96 // 8)
    assert held_tall < total_blocks / 10
