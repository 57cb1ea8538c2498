"""DataLoader settings that use the machine: worker count, GDAL cache per worker.

TorchGeo's :class:`~torchgeo.datamodules.GeoDataModule` already keeps workers
alive between epochs (``persistent_workers``), and the package's rasters open
each file once per process (:class:`~torchgeo_stars.datasets.reading.OpenRasters`);
this module adds the worker count and the per-worker GDAL block cache.
"""

import os
from collections.abc import Callable
from typing import Any

import rasterio.env
import torch
from torch import Tensor
from torch.utils.data import DataLoader, get_worker_info

#: Most DataLoader workers chosen by default (more rarely pays on one GPU).
MAX_DEFAULT_WORKERS = 8

#: Smallest GDAL block cache given to one worker, in bytes.
MIN_WORKER_CACHE = 64 * 2**20


def available_cpus() -> int:
    """CPU cores this process may run on.

    Returns:
        The size of the CPU affinity set (or the CPU count where that is not
        available), at least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def default_num_workers() -> int:
    """Default number of DataLoader worker processes: one per core, capped.

    Returns:
        ``min(MAX_DEFAULT_WORKERS, available_cpus())``.
    """
    return min(MAX_DEFAULT_WORKERS, available_cpus())


def configure_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the datamodule's loaders: run once per worker.

    GDAL sizes its block cache per process (by default 5% of the machine's
    memory), so each of N forked workers would hold a full-size cache; each
    worker gets the parent's cache size divided by N instead (at least
    :data:`MIN_WORKER_CACHE`), set once when the worker starts rather than
    inside a ``rasterio.Env`` per sample.

    Args:
        worker_id: the worker's index (unused; the worker count comes from
            :func:`torch.utils.data.get_worker_info`).
    """
    info = get_worker_info()
    workers = info.num_workers if info is not None else 1
    total = int(rasterio.env.get_gdal_config('GDAL_CACHEMAX'))
    rasterio.env.set_gdal_config(
        'GDAL_CACHEMAX', max(MIN_WORKER_CACHE, total // max(1, workers))
    )


class MachineLoaders:
    """DataLoaders of a datamodule's splits, set up to use the machine.

    A mixin for TorchGeo datamodules whose :meth:`setup` sets
    ``<split>_dataset`` and ``<split>_sampler``: like TorchGeo's loaders (same
    dataset, sampler, batch size, collation, ``drop_last`` for training,
    workers kept alive between epochs), plus pinned memory when CUDA is
    available and :func:`configure_worker` run once in each worker. Each
    worker opens the raster files once and keeps them open
    (:class:`~torchgeo_stars.datasets.reading.OpenRasters`).

    .. versionadded:: 0.1
    """

    batch_size: int
    num_workers: int
    collate_fn: Callable[..., Any]

    def _loader(self, split: str) -> DataLoader[dict[str, Tensor]]:
        """The DataLoader of one split.

        Args:
            split: ``'train'``, ``'val'``, ``'test'`` or ``'predict'``.

        Returns:
            The loader.

        Raises:
            RuntimeError: If :meth:`setup` has not prepared *split*.
        """
        dataset = getattr(self, f'{split}_dataset', None)
        sampler = getattr(self, f'{split}_sampler', None)
        if dataset is None or sampler is None:
            stage = {'train': 'fit', 'val': 'fit'}.get(split, split)
            raise RuntimeError(
                f'no {split} dataset: call setup({stage!r}) before {split}_dataloader().'
            )
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=self.collate_fn,
            drop_last=split == 'train',
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            worker_init_fn=configure_worker if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Random training patches.

        Returns:
            The loader.
        """
        return self._loader('train')

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """A grid of validation patches.

        Returns:
            The loader.
        """
        return self._loader('val')

    def test_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """A grid of test patches.

        Returns:
            The loader.
        """
        return self._loader('test')

    def predict_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """A grid of patches over the whole area.

        Returns:
            The loader.
        """
        return self._loader('predict')
