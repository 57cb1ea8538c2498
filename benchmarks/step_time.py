"""Training step time: STARS against TorchGeo early fusion, and the alignment share.

One training step (forward, losses, backward, AdamW step) on a synthetic batch
of co-registered optical (4 bands), SAR (2) and DSM (1) images, 6 classes,
every modality present in the data, for these configurations:

* ``early_fusion_fpn``: TorchGeo's :class:`~torchgeo.tasks.SemanticSegmentation`
  (``backbone='resnet18'``, ``weights=None``, ``in_channels=7``,
  ``num_classes=6``) on the 7 bands concatenated: its cross-entropy criterion
  and AdamW. TorchGeo 0.10.1 accepts ``model='fpn'`` but builds no model for
  it, so its ``.model`` is set to ``smp.FPN`` built exactly as TorchGeo builds
  its other smp models (encoder name, ``encoder_weights=None``, in_channels,
  classes).
* ``early_fusion_unet`` (with ``--unet``): the same task with its own
  default architecture (``model='unet'``), for reference.
* ``stars``: :class:`~torchgeo_stars.STARSSegmentationTask` (resnet18,
  its default light shared backbone ``shared_encoder='light'``,
  the defaults ``p_drop=0.3``,
  ``lambda_tr=1``, ``lambda_psa=0.1``): the lines of its ``training_step``
  (modality dropout, model forward with ``dropped``, the task's
  ``compute_losses``) then backward and the task's optimizer (its
  ``configure_optimizers``: fused AdamW; the early-fusion rows use TorchGeo's
  ``configure_optimizers`` likewise).
* ``stars_no_align``: the same task and dropout draw, with the model asked for
  no alignment outputs (``return_alignment=False``), so ``compute_losses``
  skips the translation and PSA losses. ``(stars - stars_no_align) / stars`` is share (a):
  everything the alignment costs, i.e. the translators run on every row, the
  encoders of dropped modalities (run only for the alignment targets), the
  embedding heads, the two losses and all their backward.
* ``stars_projection``: as ``stars`` with ``shared_encoder='projection'``
  (no second backbone).
* ``stars_full_shared``: as ``stars`` with ``shared_encoder='backbone'`` (a
  shared resnet18).
* ``stars_shared_<name>`` (with ``--shared-backbones NAME ...``): as
  ``stars`` with ``shared_encoder=NAME``.
* ``stars_psa_full`` / ``stars_psa_full_memory`` / ``stars_psa_full_level0``
  / ``stars_psa_decoder`` (with ``--minority``): as ``stars`` with
  ``psa_positions='full'``, and with ``psa_memory=64``, the embeddings on the
  stride-4 features (``alignment_level=0``) or on the decoder's features the
  class head reads (``psa_features='decoder'``) too.
* ``stars_timed_losses``: as ``stars``, and also the backward of
  ``lambda_tr * L_tr + lambda_psa * L_psa`` alone, down to the model outputs
  they read (``torch.autograd.grad`` on the translated features and the
  embeddings, graph retained). Share (b) is (forward of both losses + that
  backward) / ``stars`` step, the forward of both losses being the median
  time of ``compute_losses`` in this row minus that in ``stars_no_align``
  (segmentation loss only); this row's own total is inflated by that extra
  backward and is not used for ratios.

Within a round the STARS configurations use one modality-dropout draw. After
warm-up rounds, each round runs every configuration once, in an order rotated
from round to round; the table gives medians over rounds and the ratios both
as ratio of medians and as median of the per-round ratios.

``--device cuda`` runs everything on the GPU and times it with CUDA events
recorded between the phases of a step, read after synchronising at the end
of the step (so the splits are GPU time, not launch time); ``--device cpu``
uses ``time.perf_counter``. ``--precision bf16`` runs the forward passes and
the losses under bfloat16 autocast (the losses' own float32 parts stay
float32), the backward and optimizer outside it, as Lightning's
``bf16-mixed`` does. The first lines name the device, torch version and
precision; ``--output`` writes the report as markdown and ``--jsonl``
appends one JSON line per configuration.

Usage::

    .venv/bin/python benchmarks/step_time.py [--batch-size 8] [--size 128]
        [--rounds 10] [--warmup 2] [--threads N] [--unet] [--minority]
        [--shared-backbones NAME ...] [--device cpu|cuda] [--precision 32|bf16]
        [--output step_time.md] [--jsonl results.jsonl]
"""

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.optim import Optimizer
from torchgeo.tasks import SemanticSegmentation

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.models import SegmentationOutput, modality_dropout

MODALITIES = {'optical': 4, 'sar': 2, 'dsm': 1}
NUM_CLASSES = 6
BACKBONE = 'resnet18'

Splits = dict[str, float]
Step = Callable[[int], Splits]


class Clock:
    """Time points within a step: CUDA events on a GPU, ``perf_counter`` otherwise.

    ``mark()`` records a point without waiting for the GPU; ``intervals()``
    synchronises once and returns the seconds between consecutive points.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'
        self.points: list[Any] = []

    def start(self) -> None:
        """Forget earlier points and record the first one."""
        self.points = []
        self.mark()

    def mark(self) -> None:
        """Record a point."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self.points.append(event)
        else:
            self.points.append(time.perf_counter())

    def intervals(self) -> list[float]:
        """Seconds between consecutive points (synchronises the GPU)."""
        if self.cuda:
            torch.cuda.synchronize()
            return [
                a.elapsed_time(b) / 1000
                for a, b in zip(self.points, self.points[1:], strict=False)
            ]
        return [b - a for a, b in zip(self.points, self.points[1:], strict=False)]

    def splits(self, names: list[str]) -> dict[str, float]:
        """Name the intervals and add their ``total``."""
        values = self.intervals()
        assert len(values) == len(names)
        splits = dict(zip(names, values, strict=True))
        splits['total'] = sum(values)
        return splits


def autocast(
    device: torch.device, precision: str
) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on *device* for ``precision='bf16'``, else nothing."""
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'
    )


class Batch:
    """A synthetic batch: per-modality images, their concatenation, labels."""

    def __init__(
        self, batch_size: int, size: int, device: torch.device | None = None
    ) -> None:
        generator = torch.Generator().manual_seed(0)
        self.inputs = {
            name: torch.randn(batch_size, bands, size, size, generator=generator)
            for name, bands in MODALITIES.items()
        }
        self.stacked = torch.cat(list(self.inputs.values()), dim=1)
        # Blocky labels, so every class covers areas at the PSA scale.
        coarse = torch.randint(
            0, NUM_CLASSES, (batch_size, 1, size // 16, size // 16), generator=generator
        )
        self.mask = nn.functional.interpolate(coarse.float(), size=(size, size))[
            :, 0
        ].long()
        self.available = torch.ones(batch_size, len(MODALITIES), dtype=torch.bool)
        if device is not None:
            self.inputs = {k: v.to(device) for k, v in self.inputs.items()}
            self.stacked = self.stacked.to(device)
            self.mask = self.mask.to(device)
            self.available = self.available.to(device)


def task_optimizer(task: LightningModule) -> Optimizer:
    """The optimizer a task trains with (its ``configure_optimizers``)."""
    configured = task.configure_optimizers()
    if isinstance(configured, dict):
        configured = configured['optimizer']
    assert isinstance(configured, Optimizer)
    return configured


def early_fusion_step(
    model_name: str, batch: Batch, device: torch.device, precision: str
) -> Step:
    """A TorchGeo SemanticSegmentation training step on the 7 stacked bands."""
    task = SemanticSegmentation(
        model='unet',
        backbone=BACKBONE,
        weights=None,
        in_channels=batch.stacked.shape[1],
        num_classes=NUM_CLASSES,
    )
    if model_name == 'fpn':
        task.model = smp.FPN(
            encoder_name=BACKBONE,
            encoder_weights=None,
            in_channels=batch.stacked.shape[1],
            classes=NUM_CLASSES,
        )
    task.to(device).train()
    optimizer = task_optimizer(task)
    clock = Clock(device)

    def step(round_index: int) -> Splits:
        clock.start()
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = task.criterion(task.model(batch.stacked), batch.mask)
        clock.mark()
        loss.backward()
        clock.mark()
        optimizer.step()
        clock.mark()
        return clock.splits(['forward', 'backward', 'optimizer'])

    return step


def alignment_tensors(output: SegmentationOutput) -> list[Tensor]:
    """Model outputs through which the alignment losses send gradients."""
    tensors = [f for pyramid in output.translated.values() for f in pyramid]
    tensors += list(output.embeddings.values())
    return [t for t in tensors if t.requires_grad]


def stars_step(
    batch: Batch,
    device: torch.device,
    precision: str,
    align: bool = True,
    time_losses: bool = False,
    task_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> Step:
    """One STARSSegmentationTask training step (its training_step lines).

    Args:
        batch: The batch.
        device: Where the task runs.
        precision: ``'32'`` or ``'bf16'`` (autocast of forward and losses).
        align: Whether the model returns alignment outputs and the alignment
            losses run.
        time_losses: Whether to also time the alignment losses' own backward.
        task_kwargs: Further task arguments (e.g. ``psa_positions``).
        **model_kwargs: Keyword arguments of the STARS model (task defaults
            otherwise).

    Returns:
        The timed step.
    """
    torch.manual_seed(0)
    task = STARSSegmentationTask(
        modalities=MODALITIES,
        num_classes=NUM_CLASSES,
        backbone=BACKBONE,
        model_kwargs=model_kwargs,
        **(task_kwargs or {}),
    )
    task.to(device).train()
    optimizer = task_optimizer(task)
    clock = Clock(device)
    p_drop = float(task.hparams['p_drop'])

    def step(round_index: int) -> Splits:
        generator = torch.Generator().manual_seed(round_index)
        clock.start()
        optimizer.zero_grad(set_to_none=True)
        dropped = modality_dropout(batch.available, p_drop, generator=generator)
        with autocast(device, precision):
            output: SegmentationOutput = task.model(
                batch.inputs, batch.available, dropped=dropped, return_alignment=align
            )
            clock.mark()
            # The task's own loss composition (skipping alignment terms the
            # output does not carry, as with return_alignment=False).
            losses = task.compute_losses(output, batch.mask)
            loss, aux = losses.total, losses.alignment
            clock.mark()
        if time_losses and aux is not None:
            torch.autograd.grad(
                aux, alignment_tensors(output), retain_graph=True, allow_unused=True
            )
        clock.mark()
        loss.backward()  # type: ignore[no-untyped-call]
        clock.mark()
        optimizer.step()
        clock.mark()
        return clock.splits(
            ['forward', 'losses', 'aux_backward', 'backward', 'optimizer']
        )

    return step


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's architecture and core count."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{platform.machine()} CPU ({os.cpu_count()} cores)'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--unet',
        action='store_true',
        help='also time TorchGeo early fusion with its default U-Net',
    )
    parser.add_argument(
        '--threads', type=int, default=os.cpu_count() or 1, help='torch threads'
    )
    parser.add_argument(
        '--minority',
        action='store_true',
        help='also time STARS with PSA on full-resolution positions '
        "(psa_positions='full'), with and without a 64-per-class memory, "
        "on the stride-4 specific features and on the decoder's features",
    )
    parser.add_argument(
        '--shared-backbones',
        nargs='*',
        default=[],
        metavar='NAME',
        help='also time STARS with each of these shared backbones',
    )
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument(
        '--precision',
        choices=('32', 'bf16'),
        default='32',
        help='float32, or bfloat16 autocast of forward passes and losses',
    )
    parser.add_argument(
        '--configs',
        nargs='+',
        metavar='NAME',
        help='time only these configurations (early_fusion_fpn, stars and '
        'stars_no_align are always kept: the ratios need them)',
    )
    parser.add_argument('--output', type=Path, help='write the report as markdown')
    parser.add_argument(
        '--jsonl', type=Path, help='append one JSON line per configuration'
    )
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA GPU here; use --device cpu')
    if args.rounds < 1 or args.warmup < 0:
        parser.error('--rounds must be >= 1 and --warmup >= 0')
    return args


def make_steps(
    args: argparse.Namespace, batch: Batch, device: torch.device
) -> dict[str, Step]:
    """Every configuration asked for, ready to time."""
    precision = args.precision
    factories: dict[str, Callable[[], Step]] = {
        'early_fusion_fpn': lambda: early_fusion_step('fpn', batch, device, precision),
        'stars': lambda: stars_step(batch, device, precision),
        'stars_no_align': lambda: stars_step(batch, device, precision, align=False),
        'stars_projection': lambda: stars_step(
            batch, device, precision, shared_encoder='projection'
        ),
        'stars_full_shared': lambda: stars_step(
            batch, device, precision, shared_encoder='backbone'
        ),
        'stars_timed_losses': lambda: stars_step(
            batch, device, precision, time_losses=True
        ),
    }
    for name in args.shared_backbones:
        factories[f'stars_shared_{name}'] = functools.partial(
            stars_step, batch, device, precision, shared_encoder=name
        )
    if args.minority:
        positions = {'psa_positions': 'full'}
        factories['stars_psa_full'] = functools.partial(
            stars_step, batch, device, precision, task_kwargs=positions
        )
        factories['stars_psa_full_memory'] = functools.partial(
            stars_step,
            batch,
            device,
            precision,
            task_kwargs={**positions, 'psa_memory': 64},
        )
        factories['stars_psa_full_level0'] = functools.partial(
            stars_step,
            batch,
            device,
            precision,
            task_kwargs=positions,
            alignment_level=0,
        )
        factories['stars_psa_decoder'] = functools.partial(
            stars_step,
            batch,
            device,
            precision,
            task_kwargs=positions,
            psa_features='decoder',
        )
    if args.unet:
        factories['early_fusion_unet'] = lambda: early_fusion_step(
            'unet', batch, device, precision
        )
    keep = set(args.configs or factories) | {
        'early_fusion_fpn',
        'stars',
        'stars_no_align',
    }
    unknown = keep - set(factories)
    if unknown:
        raise SystemExit(
            f'step_time.py: error: unknown --configs {sorted(unknown)}; '
            f'choose among {list(factories)}'
        )
    return {name: make() for name, make in factories.items() if name in keep}


@contextlib.contextmanager
def report_to(output: Path | None) -> Iterator[Callable[[str], None]]:
    """A ``print`` that also keeps the lines, written to *output* at the end."""
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    yield say
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text('\n'.join(lines) + '\n')


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print markdown tables."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    environment = {
        'benchmark': 'step_time',
        'device': device_name(device),
        'torch': torch.__version__,
        'precision': args.precision,
        'threads': torch.get_num_threads(),
        'batch_size': args.batch_size,
        'size': args.size,
        'rounds': args.rounds,
        'warmup': args.warmup,
    }
    with report_to(args.output) as say:
        say(
            f'Step time on {environment["device"]} ({args.device}), torch '
            f'{torch.__version__}, precision {args.precision}; '
            f'{torch.get_num_threads()} torch threads, os.cpu_count() = '
            f'{os.cpu_count()}, load average at start {os.getloadavg()[0]:.2f}; '
            f'batch {args.batch_size}, {args.size} px, {args.rounds} rounds after '
            f'{args.warmup} warm-up'
        )
        batch = Batch(args.batch_size, args.size, device)
        steps = make_steps(args, batch, device)
        results = time_rounds(steps, args.rounds, args.warmup)
        report(results, args.rounds, say)
    if args.jsonl is not None:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open('a') as stream:
            for name, splits in results.items():
                record = {
                    **environment,
                    'config': name,
                    **{key: median([s[key] for s in splits]) for key in splits[0]},
                    'total_min': min(s['total'] for s in splits),
                    'total_max': max(s['total'] for s in splits),
                }
                stream.write(json.dumps(record) + '\n')


def time_rounds(
    steps: dict[str, Step], rounds: int, warmup: int
) -> dict[str, list[Splits]]:
    """Run every configuration once per round, order rotated, after warm-up."""
    names = list(steps)
    results: dict[str, list[Splits]] = {name: [] for name in names}
    began = time.perf_counter()
    for round_index in range(warmup + rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            splits = steps[name](round_index)
            if round_index >= warmup:
                results[name].append(splits)
        print(
            f'round {round_index + 1}/{warmup + rounds} done '
            f'({time.perf_counter() - began:.0f} s)',
            flush=True,
        )
    return results


def report(
    results: dict[str, list[Splits]], rounds: int, say: Callable[[str], None]
) -> None:
    """Say the step-time tables, the alignment shares and the targets."""
    names = list(results)

    def totals(name: str) -> list[float]:
        return [s['total'] for s in results[name]]

    def per_round(fn: Callable[[int], float]) -> float:
        return median([fn(r) for r in range(rounds)])

    base = median(totals('early_fusion_fpn'))
    say(
        f'\nload average at end {os.getloadavg()[0]:.2f}\n\n'
        '| configuration | step s (median) | min | max '
        '| x early fusion FPN (ratio of medians) | (median of per-round ratios) |\n'
        '|---|---:|---:|---:|---:|---:|'
    )
    for name in names:
        values = totals(name)
        ratio = per_round(
            lambda r, name=name: (
                results[name][r]['total']  # type: ignore[misc]
                / results['early_fusion_fpn'][r]['total']
            )
        )
        say(
            f'| {name} | {median(values):.3f} | {min(values):.3f} | '
            f'{max(values):.3f} | {median(values) / base:.2f} | {ratio:.2f} |'
        )

    full = median(totals('stars'))
    no_align = median(totals('stars_no_align'))
    share_a = (full - no_align) / full
    share_a_rounds = per_round(
        lambda r: (
            (results['stars'][r]['total'] - results['stars_no_align'][r]['total'])
            / results['stars'][r]['total']
        )
    )
    say(
        '\n| PSA + translation share of the STARS step | value |\n|---|---:|\n'
        f'| (a) (stars - stars_no_align) / stars, medians | {share_a:.1%} |\n'
        f'| (a) same, median of per-round values | {share_a_rounds:.1%} |'
    )
    share_b: float | None = None
    if 'stars_timed_losses' in results and 'stars_no_align' in results:
        timed = results['stars_timed_losses']
        # Alignment losses' forward: the losses with them minus without them
        # (segmentation only, the stars_no_align row).
        align_fwd = median([s['losses'] for s in timed]) - median(
            [s['losses'] for s in results['stars_no_align']]
        )
        aux_bwd = median([s['aux_backward'] for s in timed])
        share_b = (align_fwd + aux_bwd) / full
        say(
            f'| (b) translation + PSA loss forward | {align_fwd * 1e3:.1f} ms |\n'
            f'| (b) backward of both losses down to the model outputs '
            f'| {aux_bwd * 1e3:.1f} ms |\n'
            f'| (b) sum / stars step | {share_b:.1%} |'
        )
    say('\n| stars step split (medians) | s |\n|---|---:|')
    for key in ('forward', 'losses', 'backward', 'optimizer'):
        say(f'| {key} | {median([s[key] for s in results["stars"]]):.4f} |')

    ratio = full / base
    say(
        f'\nTarget STARS step <= 2.5x early fusion FPN (CPU; 2.0x on a GPU in '
        f'bf16): {ratio:.2f}x, {"met" if ratio <= 2.5 else "MISSED"} at 2.5x, '
        f'{"met" if ratio <= 2.0 else "MISSED"} at 2.0x.'
    )
    shares = [('(a)', share_a)] + ([('(b)', share_b)] if share_b is not None else [])
    for label, share in shares:
        say(
            f'Target PSA + translation <= 10% of the STARS step, {label}: '
            f'{share:.1%}, {"met" if share <= 0.10 else "MISSED"}.'
        )


if __name__ == '__main__':
    main()
