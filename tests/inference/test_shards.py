from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from torchgeo_stars.errors import ConfigurationError, DataError
from torchgeo_stars.inference import (
    join_main,
    join_shards,
    predict_geotiff,
    probabilities_path,
    shard_rows,
)

from .helpers import ContextModel, read, write_raster

OPTICAL = {'optical': 3}


def _run(tmp_path: Path, raster: Path, output: str, **kwargs: object) -> Path:
    return predict_geotiff(
        ContextModel(OPTICAL, 3),
        {'optical': raster},
        tmp_path / output,
        modalities=OPTICAL,
        class_names=['a', 'b', 'c'],
        patch_size=48,
        overlap=16,
        device='cpu',
        progress=False,
        probabilities='float32',
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def tall(tmp_path: Path) -> Path:
    # 1100 rows: three rows of 512-pixel blocks.
    data = np.random.default_rng(0).normal(size=(3, 1100, 40)).astype(np.float32)
    return write_raster(tmp_path / 'tall.tif', data)


def test_shard_rows_split_block_rows_evenly() -> None:
    parts = [shard_rows(1100, 2, k) for k in range(2)]
    assert parts == [(0, 512), (512, 1100)]
    assert [shard_rows(1100, 3, k) for k in range(3)] == [
        (0, 512),
        (512, 1024),
        (1024, 1100),
    ]
    with pytest.raises(ConfigurationError, match='at most 3 shards'):
        shard_rows(1100, 4, 0)
    with pytest.raises(ConfigurationError, match='shard must be'):
        shard_rows(1100, 2, 2)


def test_two_shards_joined_equal_one_run(tmp_path: Path, tall: Path) -> None:
    # A model with spatial context: windows of both shards blend at the border.
    single = _run(tmp_path, tall, 'single.tif')
    parts = [
        _run(tmp_path, tall, f'part{k}.tif', num_shards=2, shard=k) for k in (1, 0)
    ]
    with rasterio.open(parts[1]) as part0:
        assert part0.height == 512
    joined = join_shards(parts, tmp_path / 'joined.tif')
    assert cog_validate(str(joined))[0]
    assert cog_validate(str(probabilities_path(joined)))[0]
    np.testing.assert_array_equal(read(joined), read(single))
    np.testing.assert_array_equal(
        read(probabilities_path(joined)), read(probabilities_path(single))
    )
    with rasterio.open(joined) as a, rasterio.open(single) as b:
        assert a.transform == b.transform
        assert a.crs == b.crs
        assert a.colormap(1)[1] == b.colormap(1)[1]
        assert a.tags() == b.tags()


def test_join_refuses_incomplete_or_foreign_parts(tmp_path: Path, tall: Path) -> None:
    part0 = _run(tmp_path, tall, 'p0.tif', num_shards=2, shard=0)
    with pytest.raises(DataError, match=r'missing shards \[1\]'):
        join_shards([part0], tmp_path / 'j.tif')
    with pytest.raises(DataError, match=r'repeated shards \[0\]'):
        join_shards([part0, part0], tmp_path / 'j.tif')
    single = _run(tmp_path, tall, 'single.tif')
    with pytest.raises(DataError, match='not a shard part'):
        join_shards([single], tmp_path / 'j.tif')
    assert join_main([str(part0), '--output', str(tmp_path / 'j.tif')]) == 1
    assert not (tmp_path / 'j.tif').exists()
