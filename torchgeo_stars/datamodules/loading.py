"""DataLoader settings that use the machine: worker count, GDAL cache per worker.

TorchGeo's :class:`~torchgeo.datamodules.GeoDataModule` already keeps workers
alive between epochs (``persistent_workers``), and the package's rasters open
each file once per process (:class:`~torchgeo_stars.datasets.reading.OpenRasters`);
this module adds the worker count and the per-worker GDAL block cache.
"""

import os

import rasterio.env
from torch.utils.data import get_worker_info

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
