"""End-to-end GeoTIFF inference throughput and peak memory, by raster size.

For each size a synthetic 3-band uint8 raster (smooth cheap patterns, tiled and
DEFLATE-compressed, written by blocks) is segmented by
:func:`torchgeo_stars.inference.predict_geotiff` in a fresh subprocess, which
reports:

* end-to-end throughput: output megapixels / wall time of ``predict_geotiff``
  (reading, normalising, model, blending, writing, COG conversion);
* peak RSS (``ru_maxrss``) at the end of that call;
* the model's own throughput on the same windows: the forward time of a few
  batches of the raster's windows already in memory, scaled to the number of
  windows the run processed, as output megapixels per second. The ratio of the
  two is the pipeline's efficiency (targets: end-to-end >= 0.8 x model, peak
  RSS at the largest size <= 1.2 x at the smallest).

``--model small`` (default) is a small CNN (two 3x3 convolutions of 16
channels, 1x1 head): so cheap that the figures measure the pipeline itself
(reading, blending, writing), and a 16k x 16k raster takes a few minutes on 2
CPU cores. ``--model stars`` is the real network a user runs: STARS (resnet18,
random weights) trained on optical + SAR, given only the optical raster, so
SAR is recovered by translation in every window.

``--device cuda`` runs the model on the GPU (the model-alone time is then
taken between synchronisations of the GPU, with the windows already on it);
``--precision bf16`` runs it under bfloat16 autocast in both measurements. The
report names the device, torch version and precision; ``--output`` writes it as
markdown and ``--jsonl`` appends one JSON line per size.

Usage::

    python benchmarks/inference_throughput.py [--sizes 2048 16384] [--model small]
    python benchmarks/inference_throughput.py --sizes 2048 --model stars
    python benchmarks/inference_throughput.py --device cuda --precision bf16
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from torch import Tensor, nn

from torchgeo_stars.inference import predict_geotiff
from torchgeo_stars.inference.window import window_origins
from torchgeo_stars.models import STARS, to_channels_last
from torchgeo_stars.models.outputs import SegmentationOutput

CLASSES = ['a', 'b', 'c', 'd']


class SmallCNN(nn.Module):
    def __init__(self, bands: int = 3, classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(bands, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, classes, 1),
        )

    def forward(
        self, inputs: dict[str, Tensor], available: Tensor | None = None
    ) -> SegmentationOutput:
        logits = self.body(inputs['optical'])
        if available is None:
            available = torch.ones(logits.shape[0], 1, dtype=torch.bool)
        return SegmentationOutput(logits=logits, available=available)


def build_model(name: str) -> tuple[nn.Module, dict[str, int]]:
    """The benchmarked model and the modalities it was built for."""
    if name == 'stars':
        modalities = {'optical': 3, 'sar': 2}
        stars = STARS(modalities, len(CLASSES), backbone='resnet18', weights=None)
        # As the task builds it (build_model): channels-last weights.
        return to_channels_last(stars), modalities
    return SmallCNN(), {'optical': 3}


def make_raster(path: Path, size: int) -> None:
    """Write a size x size 3-band uint8 tiled, compressed GeoTIFF by strips."""
    profile = {
        'driver': 'GTiff',
        'width': size,
        'height': size,
        'count': 3,
        'dtype': 'uint8',
        'crs': 'EPSG:32631',
        'transform': from_origin(500_000, 4_600_000, 10, 10),
        'tiled': True,
        'blockxsize': 512,
        'blockysize': 512,
        'compress': 'deflate',
        'zlevel': 1,
        'bigtiff': 'if_safer',
    }
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(path, 'w', **profile) as dst:
        for row in range(0, size, 512):
            rows = np.arange(row, min(row + 512, size), dtype=np.float32)[:, None]
            strip = np.stack(
                [
                    127 + 120 * np.sin(cols / 97.0 + rows / 131.0),
                    127 + 120 * np.cos(cols / 53.0 - rows / 71.0),
                    (cols // 64 + rows // 64) % 2 * 200 + 20,
                ]
            ).astype(np.uint8)
            dst.write(strip, window=Window(0, row, size, strip.shape[1]))


def model_seconds_per_window(
    model: nn.Module,
    modalities: int,
    raster: Path,
    patch: int,
    batch: int,
    batches: int,
    device: torch.device,
    precision: str,
) -> float:
    """Forward time per window on windows of the raster already in memory.

    The windows are on *device* before the clock starts; on a GPU the time is
    taken between synchronisations.
    """
    tiles: list[Tensor] = []
    with rasterio.open(raster) as src:
        for i in range(batch * batches):
            offset = (i * 997) % max(src.width - patch, 1)
            data = src.read(window=Window(offset, offset, patch, patch))
            tiles.append(torch.from_numpy(data.astype(np.float32)))
    stacks = [
        torch.stack(tiles[i : i + batch]).to(device)
        for i in range(0, len(tiles), batch)
    ]
    # Only the optical raster is given, as in the end-to-end run.
    available = torch.zeros(batch, modalities, dtype=torch.bool, device=device)
    available[:, 0] = True

    def synchronise() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'),
    ):
        model({'optical': stacks[0]}, available)  # warm-up
        synchronise()
        start = time.perf_counter()
        for stack in stacks:
            model({'optical': stack}, available)
        synchronise()
        elapsed = time.perf_counter() - start
    return elapsed / len(tiles)


def child(args: argparse.Namespace) -> None:
    """Run one size and print a JSON line of results."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model, modalities = build_model(args.model)
    model.eval()
    workdir = Path(args.workdir)
    raster = workdir / f'input_{args.child}.tif'
    output = workdir / f'pred_{args.child}.tif'
    start = time.perf_counter()
    predict_geotiff(
        model,
        {'optical': raster},
        output,
        modalities=modalities,
        class_names=CLASSES,
        patch_size=args.patch_size,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=device,
        precision=args.precision,
        overwrite=True,
        progress=False,
    )
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stride = args.patch_size - args.overlap
    windows = len(window_origins(args.child, args.patch_size, stride)) ** 2
    per_window = model_seconds_per_window(
        model,
        len(modalities),
        raster,
        args.patch_size,
        args.batch_size,
        args.model_batches,
        device,
        args.precision,
    )
    megapixels = args.child**2 / 1e6
    print(
        json.dumps(
            {
                'size': args.child,
                'windows': windows,
                'seconds': elapsed,
                'e2e_mpx_s': megapixels / elapsed,
                'model_mpx_s': megapixels / (per_window * windows),
                'peak_rss_mb': peak_mb,
            }
        )
    )


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's architecture and core count."""
    if device == 'cuda':
        return torch.cuda.get_device_name(0)
    return f'{platform.machine()} CPU ({os.cpu_count()} cores)'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[2048, 16384])
    parser.add_argument('--patch-size', type=int, default=512)
    parser.add_argument('--overlap', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--model-batches', type=int, default=6)
    parser.add_argument('--model', choices=['small', 'stars'], default='small')
    parser.add_argument('--workdir', help='where rasters go (default: a temp dir)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--precision',
        choices=['32', 'bf16'],
        default='32',
        help='float32, or bfloat16 autocast of the model',
    )
    parser.add_argument(
        '--threads', type=int, help="torch CPU threads (torch's default)"
    )
    parser.add_argument('--output', type=Path, help='write the report as markdown')
    parser.add_argument('--jsonl', type=Path, help='append one JSON line per size')
    parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA GPU here; use --device cpu')
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    if args.child is not None:
        child(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows: list[dict[str, Any]] = []
        for size in args.sizes:
            start = time.perf_counter()
            make_raster(workdir / f'input_{size}.tif', size)
            print(f'generated {size} x {size} in {time.perf_counter() - start:.1f} s')
            command = [
                sys.executable,
                __file__,
                '--child',
                str(size),
                '--workdir',
                str(workdir),
                '--patch-size',
                str(args.patch_size),
                '--overlap',
                str(args.overlap),
                '--batch-size',
                str(args.batch_size),
                '--model-batches',
                str(args.model_batches),
                '--model',
                args.model,
                '--device',
                args.device,
                '--precision',
                args.precision,
                '--threads',
                str(torch.get_num_threads()),
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(result.stdout + result.stderr, file=sys.stderr)
                raise SystemExit(
                    f'inference_throughput.py: error: the {size} px run failed '
                    f'(exit {result.returncode}); its output is above'
                )
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            (workdir / f'input_{size}.tif').unlink()

    base_rss = rows[0]['peak_rss_mb']
    environment = {
        'benchmark': 'inference_throughput',
        'device': device_name(args.device),
        'torch': torch.__version__,
        'precision': args.precision,
        'model': args.model,
        'patch_size': args.patch_size,
        'overlap': args.overlap,
        'batch_size': args.batch_size,
        'threads': torch.get_num_threads(),
    }
    lines = [
        f'Inference throughput on {environment["device"]} ({args.device}), torch '
        f'{torch.__version__}, precision {args.precision}; model {args.model}, '
        f'patch {args.patch_size}, overlap {args.overlap}, batch {args.batch_size}, '
        f'{torch.get_num_threads()} torch threads',
        '',
        '| size | windows | e2e s | e2e Mpx/s | model Mpx/s | e2e/model '
        '| peak RSS MB | RSS/first |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        lines.append(
            f'| {row["size"]} | {row["windows"]} | {row["seconds"]:.1f} '
            f'| {row["e2e_mpx_s"]:.2f} | {row["model_mpx_s"]:.2f} '
            f'| {row["e2e_mpx_s"] / row["model_mpx_s"]:.2f} '
            f'| {row["peak_rss_mb"]:.0f} | {row["peak_rss_mb"] / base_rss:.2f} |'
        )
    print('\n' + '\n'.join(lines))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text('\n'.join(lines) + '\n')
    if args.jsonl is not None:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open('a') as stream:
            for row in rows:
                stream.write(json.dumps({**environment, **row}) + '\n')


if __name__ == '__main__':
    main()
