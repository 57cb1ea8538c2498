"""Paired-sample throughput of the read path, against TorchGeo's, in one run.

On a synthetic scene written by
:func:`~torchgeo_stars.datasets.make_synthetic_scene` (optical 10 m UTM 32N,
SAR 20 m UTM 31N, DSM 5 m, labels), random windows drawn by TorchGeo's
:class:`~torchgeo.samplers.RandomGeoSampler`, one process, one torch thread,
paired samples per second at each patch size for:

* ``(a)``: TorchGeo's plain :class:`~torchgeo.datasets.RasterDataset` ``&``
  on the original files (the labels with ``is_image=False``);
* ``(b)``: the project's ``OpticalRaster & SARRaster & DSMRaster & MaskRaster``
  on the original files (SAR to dB, as the datamodule reads it), three ways:
  its first pass over the windows (a fresh dataset each round: the warped-tile
  cache of :mod:`~torchgeo_stars.datasets.warp_cache` warps every tile the
  windows need), its later passes (the second epoch on: windows come from the
  tiles), and with the cache off (``warp_cache_mb=0``: every window warped);
* ``(c)``: the same on aligned rasters: every file warped once onto the
  optical grid by :func:`~torchgeo_stars.datasets.align.align_rasters` (what
  ``torchgeo-stars align`` and the datamodule's ``align_dir`` run; the read
  path then takes its no-warp fast path);
* ``(d)``: :class:`~torchgeo_stars.datamodules.MultimodalDataModule`'s
  training loader end to end (random patches, statistics filling, collation;
  an epoch of ``--samples`` patches after a warm-up epoch, workers kept
  alive), with its default number of workers, with 0 and with 2 workers:
  batches/s and samples/s; and the same loader over ready-made copies of
  one of its samples (nothing read: the cost of collating in a worker and
  handing the batch over through shared memory, which bounds what workers
  can gain), with the time to copy one batch into fresh shared memory
  against ordinary memory.

At each size the script also times (b)'s later passes in as many processes
at once as the loader's default workers (at least two) against one process
alone: whether the read path itself scales with cores.

(a), (b) and (c) read the same windows, drawn by the sampler over (b) and
moved onto the optical pixel grid, as the datamodule's samplers draw them
(``--no-snap`` keeps them where the sampler put them: its grid starts at the
intersection's corner, off every file's grid). Each is timed ``--rounds`` times,
interleaved, and the median is kept, so the ratios (b)/(a) and (c)/(a) come
from the same run. Goals: (b)/(a) >= 1.0 at 256 px, (c)/(a) >= 3.0,
2 workers >= 1.7 x 0 workers.

Usage::

    .venv/bin/python benchmarks/data_throughput.py [--sizes 64 256]
        [--samples 100] [--rounds 3] [--scene-size 1024] [--batch-size 8]
        [--output benchmarks/results/data_throughput.md]
"""

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rasterio
import torch
from torch.utils.data import DataLoader, Dataset
from torchgeo.datasets import GeoDataset, RasterDataset
from torchgeo.samplers import RandomGeoSampler

from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datamodules.loading import default_num_workers
from torchgeo_stars.datasets import (
    DSMRaster,
    MaskRaster,
    OpticalRaster,
    SARRaster,
    make_synthetic_scene,
)
from torchgeo_stars.datasets.align import align_rasters
from torchgeo_stars.datasets.warp_cache import DEFAULT_BUDGET_MB

MODALITIES = ('optical', 'sar', 'dsm')


class TorchGeoMask(RasterDataset):
    """TorchGeo's plain RasterDataset for labels."""

    is_image = False


def torchgeo_pairs(images: dict[str, Path], mask: Path) -> GeoDataset:
    """(a): TorchGeo's plain datasets intersected with ``&``."""
    dataset: GeoDataset = RasterDataset(images['optical'].parent)
    for name in MODALITIES[1:]:
        dataset = dataset & RasterDataset(images[name].parent)
    return dataset & TorchGeoMask(mask.parent)


def project_pairs(
    images: dict[str, Path], mask: Path, warp_cache_mb: float = DEFAULT_BUDGET_MB
) -> GeoDataset:
    """(b), (c): the project's modality rasters intersected with ``&``."""
    budget = warp_cache_mb
    return (
        OpticalRaster(images['optical'].parent, warp_cache_mb=budget)
        & SARRaster(images['sar'].parent, to_db=True, warp_cache_mb=budget)
        & DSMRaster(images['dsm'].parent, warp_cache_mb=budget)
        & MaskRaster(mask.parent, warp_cache_mb=budget)
    )


def snap(window: Any, grid: tuple[float, float, float, float]) -> Any:
    """Move a window onto a pixel grid ``(left, top, xres, yres)``, same size."""
    x, y, *rest = window
    left, top, xres, yres = grid
    xmin = left + round((x.start - left) / xres) * xres
    ymax = top - round((top - y.stop) / yres) * yres
    width, height = x.stop - x.start, y.stop - y.start
    return (
        slice(xmin, xmin + width, x.step),
        slice(ymax - height, ymax, y.step),
        *rest,
    )


def rate(dataset: GeoDataset, windows: Sequence[Any]) -> float:
    """Samples per second reading *windows* once."""
    start = time.perf_counter()
    for index in windows:
        dataset[index]
    return len(windows) / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a live process has used, from ``/proc`` (Linux)."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def time_loader(
    loader: DataLoader[dict[str, torch.Tensor]], batch_size: int
) -> tuple[float, float, float | None]:
    """Batches/s, samples/s and CPU ms per sample of one epoch after a warm-up.

    The CPU time is the main process's plus its workers' (None where
    ``/proc`` is not available): on a machine shared with other work, the
    wall-clock gain of workers is bounded by the cores they get, while the CPU
    time per sample shows whether workers add overhead.
    """
    for _ in loader:  # warm-up epoch: workers start, files open
        pass
    iterator = getattr(loader, '_iterator', None)  # persistent workers' iterator
    pids = [w.pid for w in getattr(iterator, '_workers', [])]
    try:
        cpu_start: float | None = sum(cpu_seconds(pid) for pid in pids)
    except OSError:
        cpu_start = None
    main_start = time.process_time()
    start = time.perf_counter()
    batches = sum(1 for _ in loader)
    elapsed = time.perf_counter() - start
    cpu_ms = None
    if cpu_start is not None:
        cpu = time.process_time() - main_start
        cpu += sum(cpu_seconds(pid) for pid in pids) - cpu_start
        cpu_ms = 1000 * cpu / (batches * batch_size)
    return batches / elapsed, batches * batch_size / elapsed, cpu_ms


class ReadySamples(Dataset[dict[str, torch.Tensor]]):
    """Copies of one sample: a loader that has nothing to read."""

    def __init__(self, sample: dict[str, torch.Tensor], length: int) -> None:
        self.sample = sample
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value.clone() for key, value in self.sample.items()}


def loader_rate(
    images: dict[str, Path],
    mask: Path,
    size: int,
    samples: int,
    batch_size: int,
    workers: int,
    ready: bool = False,
) -> tuple[float, float, float | None, dict[str, float]]:
    """(d): batches/s, samples/s and CPU ms per sample of the training loader.

    With *ready*, the same loader over copies of one of its samples instead
    of reads (same keys, shapes and dtypes, collated the same way): with
    workers each batch is still collated in a worker and handed to the main
    process through shared memory, so the figures bound what (d) can reach
    with that many workers however fast the reads are. The ready run also
    reports :func:`copy_costs` of one batch (empty otherwise).
    """
    datamodule = MultimodalDataModule(
        {name: str(images[name].parent) for name in MODALITIES},
        str(mask.parent),
        batch_size=batch_size,
        patch_size=size,
        length=samples,
        num_workers=0 if ready else workers,
        val_fraction=0.1,
        test_fraction=0.1,
    )
    datamodule.setup('fit')
    loader = datamodule.train_dataloader()
    copies: dict[str, float] = {}
    if ready:
        batch = next(iter(loader))
        copies = copy_costs(batch, batch_size)
        sample = {key: value[0].clone() for key, value in batch.items()}
        loader = DataLoader(  # as the datamodule's loader hands batches over
            ReadySamples(sample, samples),
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=datamodule.collate_fn,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
    return (*time_loader(loader, batch_size), copies)


def copy_costs(
    batch: dict[str, torch.Tensor], batch_size: int, repeats: int = 20
) -> dict[str, float]:
    """Milliseconds per sample to copy *batch* into fresh memory, two ways.

    ``shared_copy_ms``: into new shared memory, as a worker collates every
    batch (PyTorch allocates the collated tensors in shared memory, so the
    pages are new for each batch and the kernel maps and clears each one on
    first write); ``plain_copy_ms``: into ordinary memory, as collation does
    without workers (the allocator reuses freed pages). Medians of *repeats*.
    """
    shared, plain = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for value in batch.values():
            fresh = torch.empty_like(value)
            fresh.share_memory_()  # type: ignore[no-untyped-call]
            fresh.copy_(value)
        shared.append(time.perf_counter() - start)
        start = time.perf_counter()
        for value in batch.values():
            value.clone()
        plain.append(time.perf_counter() - start)
    per_sample = 1000 / batch_size
    return {
        'shared_copy_ms': statistics.median(shared) * per_sample,
        'plain_copy_ms': statistics.median(plain) * per_sample,
    }


def _timed_pass(
    images: dict[str, Path],
    mask: Path,
    windows: Sequence[Any],
    start: Any,
    results: Any,
) -> None:
    """One process of :func:`read_scaling`: a first pass, then a timed one."""
    torch.set_num_threads(1)
    dataset = project_pairs(images, mask)
    rate(dataset, windows)  # first pass: warps the tiles
    start.wait()
    results.put(rate(dataset, windows))


def read_scaling(
    images: dict[str, Path], mask: Path, windows: Sequence[Any], processes: int
) -> float:
    """(b)'s later passes in *processes* processes at once over one alone.

    Each process builds its own datasets, reads the windows once (warping
    its tiles), waits for the others, then times a second pass: the total
    samples/s of the processes over that of one shows whether the read path
    itself scales with cores, with no hand-over between processes.
    """
    context = multiprocessing.get_context('fork')
    totals = []
    for count in (1, processes):
        start = context.Barrier(count)
        results = context.Queue()
        children = [
            context.Process(
                target=_timed_pass, args=(images, mask, windows, start, results)
            )
            for _ in range(count)
        ]
        for child in children:
            child.start()
        totals.append(sum(float(results.get()) for _ in children))
        for child in children:
            child.join()
    return totals[1] / totals[0]


def markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables."""
    lines = [
        '| patch | (a) TorchGeo `&`, original files | (b) project, original files, '
        'first pass | (b) later passes | (b) without the warped-tile cache '
        '| (c) project, aligned files | (b) first/(a) | (b) later/(a) '
        '| (b) no cache/(a) | (c)/(a) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in results['datasets']:
        a = row['a']
        lines.append(
            f'| {row["size"]} px | {a:.1f} | {row["b_first"]:.1f} | {row["b"]:.1f} '
            f'| {row["b_nocache"]:.1f} | {row["c"]:.1f} | {row["b_first"] / a:.2f} '
            f'| {row["b"] / a:.2f} | {row["b_nocache"] / a:.2f} | {row["c"] / a:.2f} |'
        )
    lines += [
        '',
        '| patch | loader | workers | batches/s | samples/s | CPU ms / sample |',
        '|---|---|---|---:|---:|---:|',
    ]
    for row in results['loaders']:
        ms = row['cpu_ms_per_sample']
        cpu = '' if ms is None else f'{ms:.1f}'
        lines.append(
            f'| {row["size"]} px | {row["loader"]} | {row["workers"]}{row["note"]} '
            f'| {row["batches_per_s"]:.2f} | {row["samples_per_s"]:.1f} '
            f'| {cpu} |'
        )
    lines.append('')
    copied = set()
    for row in results['loaders']:
        if 'shared_copy_ms' in row and row['size'] not in copied:
            copied.add(row['size'])
            lines.append(
                f'- {row["size"]} px: copying one batch into fresh shared memory '
                f'(as a worker collates) {row["shared_copy_ms"]:.2f} ms per sample; '
                f'into ordinary memory (collation without workers) '
                f'{row["plain_copy_ms"]:.2f} ms per sample'
            )
    for size, ratio in results['worker_scaling'].items():
        lines.append(f'- {size} px: 2 workers / 0 workers = {ratio:.2f} (samples/s)')
    for row in results['datasets']:
        lines.append(
            f'- {row["size"]} px: (b) later passes in {results["read_processes"]} '
            f'processes at once / 1 process = {row["b_processes"]:.2f} '
            '(total samples/s)'
        )
    lines.append(
        "- ready samples: the training loader's samples (keys, shapes, dtypes) "
        'copied instead of read, collated and handed over as in training: '
        'what the workers cost with nothing to read.'
    )
    lines.append(
        f'- align_rasters: {results["align_s_per_mpx"]:.3f} s per output megapixel '
        '(all modalities)'
    )
    placed = 'on the optical grid' if results['snap'] else 'as the sampler drew them'
    lines.append(
        f'- samples/s: paired samples per second, median of {results["rounds"]} '
        f'interleaved rounds of {results["samples"]} windows ({placed}); scene '
        f'{results["scene_size"]} px, one torch thread, {results["cpus"]} CPUs; '
        f'loader batches of {results["batch_size"]}.'
    )
    lines.append(f'- command: `{results["command"]}`')
    return '\n'.join(lines) + '\n'


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Run every measurement on a scene written under *root*."""
    scene = make_synthetic_scene(root / 'scene', size=args.scene_size, seed=0)
    images = {name: Path(scene.images[name]) for name in MODALITIES}
    mask = Path(scene.mask)
    start = time.perf_counter()
    aligned = align_rasters(images, root / 'aligned', mask=mask, progress=False).paths
    align_s = time.perf_counter() - start
    megapixels = 4 * args.scene_size**2 / 1e6
    aligned_images = {name: aligned[name] for name in MODALITIES}

    datasets: dict[str, Callable[[], GeoDataset]] = {
        'a': lambda: torchgeo_pairs(images, mask),
        'b': lambda: project_pairs(images, mask),
        'b_first': lambda: project_pairs(images, mask),
        'b_nocache': lambda: project_pairs(images, mask, warp_cache_mb=0),
        'c': lambda: project_pairs(aligned_images, aligned['mask']),
    }
    with rasterio.open(images['optical']) as src:
        optical_grid = (src.transform.c, src.transform.f, src.res[0], src.res[1])
    processes = max(2, default_num_workers())
    rows = []
    for size in args.sizes:
        built = {key: make() for key, make in datasets.items()}
        generator = torch.Generator().manual_seed(size)
        windows = list(
            RandomGeoSampler(
                built['b'], size=size, length=args.samples, generator=generator
            )
        )
        if args.snap:
            windows = [snap(window, optical_grid) for window in windows]
        rates: dict[str, list[float]] = {key: [] for key in built}
        for key, dataset in built.items():
            # Warm-up: files open, GDAL blocks cached; (b) reads every window
            # once (its first epoch: every tile it needs is warped)
            rate(dataset, windows if key == 'b' else windows[:5])
        for round_ in range(args.rounds):
            # A fresh (b) each round: its first pass warps the tiles it needs
            built['b_first'] = datasets['b_first']()
            keys = list(built)
            keys = keys[round_ % len(keys) :] + keys[: round_ % len(keys)]
            for key in keys:
                rates[key].append(rate(built[key], windows))
        row = {'size': size, **{k: statistics.median(v) for k, v in rates.items()}}
        row['b_processes'] = read_scaling(images, mask, windows, processes)
        print(row, flush=True)
        rows.append(row)

    loaders = []
    scaling = {}
    default = default_num_workers()
    for size in args.sizes:
        per_workers = {}
        runs = [(False, w) for w in sorted({0, 2, default})]
        runs += [(True, w) for w in sorted({2, default})]
        for ready, workers in runs:
            batches_per_s, samples_per_s, cpu_ms, copies = loader_rate(
                images, mask, size, args.samples, args.batch_size, workers, ready
            )
            if not ready:
                per_workers[workers] = samples_per_s
            note = ' (default)' if workers == default else ''
            loaders.append(
                {
                    'size': size,
                    'loader': 'ready samples' if ready else 'training',
                    'workers': workers,
                    'note': note,
                    'batches_per_s': batches_per_s,
                    'samples_per_s': samples_per_s,
                    'cpu_ms_per_sample': cpu_ms,
                    **copies,
                }
            )
            print(loaders[-1], flush=True)
        scaling[size] = per_workers[2] / per_workers[0]
    return {
        'datasets': rows,
        'loaders': loaders,
        'worker_scaling': scaling,
        'read_processes': processes,
        'align_s_per_mpx': align_s / megapixels,
        'rounds': args.rounds,
        'snap': args.snap,
        'command': 'python benchmarks/data_throughput.py ' + ' '.join(sys.argv[1:]),
        'samples': args.samples,
        'scene_size': args.scene_size,
        'batch_size': args.batch_size,
        'cpus': os.cpu_count(),
    }


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[64, 256])
    parser.add_argument('--samples', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument(
        '--scene-size',
        type=int,
        default=1024,
        help='optical side in pixels (val and test stripes take a whole patch each)',
    )
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--no-snap',
        dest='snap',
        action='store_false',
        help="keep the sampler's windows as drawn instead of moving them onto the "
        "optical pixel grid (the datamodule's samplers draw on that grid)",
    )
    parser.add_argument(
        '--output',
        type=Path,
        help='write the markdown here, and the figures as JSON beside it',
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, Path(tmp))
    table = markdown(results)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_suffix('.md').write_text(table)
        args.output.with_suffix('.json').write_text(
            json.dumps(results, indent=2) + '\n'
        )


if __name__ == '__main__':
    main()
