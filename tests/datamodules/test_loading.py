"""DataLoader defaults of MultimodalDataModule: workers, pinning, GDAL cache."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import rasterio.env
import torch

from torchgeo_stars.datamodules import MultimodalDataModule, loading
from torchgeo_stars.datamodules.loading import (
    MIN_WORKER_CACHE,
    configure_worker,
    default_num_workers,
)
from torchgeo_stars.errors import ConfigurationError

SCENE = Path(__file__).resolve().parents[1] / 'data' / 'synthetic' / 'scene'
PATHS = {name: str(SCENE / name) for name in ('optical', 'sar', 'dsm')}


def datamodule(**kwargs: Any) -> MultimodalDataModule:
    options: dict[str, Any] = {
        'ignore_index': 255,
        'batch_size': 2,
        'patch_size': 16,
        'length': 8,
        'statistics_samples': 2,
    }
    options.update(kwargs)
    return MultimodalDataModule(PATHS, str(SCENE / 'mask'), **options)


@pytest.mark.parametrize(('cpus', 'expected'), [(1, 1), (2, 2), (6, 6), (64, 8)])
def test_default_workers_from_cpu_count(
    monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int
) -> None:
    monkeypatch.setattr(loading, 'available_cpus', lambda: cpus)
    assert default_num_workers() == expected
    assert datamodule().num_workers == expected
    assert datamodule(num_workers=0).num_workers == 0


@pytest.mark.parametrize('bad', [-1, 1.5, True])
def test_bad_num_workers(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match='num_workers'):
        datamodule(num_workers=bad)


def test_loader_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with_workers = datamodule(num_workers=2)
    with_workers.setup('fit')
    for split in ('train', 'val'):
        loader = getattr(with_workers, f'{split}_dataloader')()
        assert loader.num_workers == 2
        assert loader.persistent_workers
        assert loader.worker_init_fn is configure_worker
        assert loader.pin_memory == torch.cuda.is_available()
        assert loader.drop_last == (split == 'train')
        assert loader.batch_size == 2
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert with_workers.train_dataloader().pin_memory
    in_process = datamodule(num_workers=0)
    in_process.setup('fit')
    loader = in_process.train_dataloader()
    assert loader.num_workers == 0
    assert not loader.persistent_workers
    assert loader.worker_init_fn is None


def test_loader_before_setup() -> None:
    with pytest.raises(RuntimeError, match=r"setup\('fit'\)"):
        datamodule(num_workers=0).train_dataloader()


def test_worker_gdal_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    before = rasterio.env.get_gdal_config('GDAL_CACHEMAX')
    try:
        rasterio.env.set_gdal_config('GDAL_CACHEMAX', 1024 * 2**20)
        info = SimpleNamespace(num_workers=4)
        monkeypatch.setattr(loading, 'get_worker_info', lambda: info)
        configure_worker(0)
        assert rasterio.env.get_gdal_config('GDAL_CACHEMAX') == 256 * 2**20
        info.num_workers = 64  # never below the floor
        configure_worker(1)
        assert rasterio.env.get_gdal_config('GDAL_CACHEMAX') == MIN_WORKER_CACHE
    finally:
        rasterio.env.set_gdal_config('GDAL_CACHEMAX', before)


def test_two_workers_same_batches_as_none() -> None:
    batches = {}
    for workers in (0, 2):
        dm = datamodule(num_workers=workers, seed=3)
        dm.setup('fit')
        batches[workers] = [list(dm.train_dataloader()), list(dm.val_dataloader())]
    assert len(batches[0][0]) == 4  # 8 patches, batches of 2
    for split0, split2 in zip(batches[0], batches[2], strict=True):
        assert len(split0) == len(split2) > 0
        for one, two in zip(split0, split2, strict=True):
            assert one.keys() == two.keys()
            for key in one:
                assert torch.equal(one[key], two[key]), key
