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
* ``stars_psa_full`` / ``stars_psa_full_memory`` (with ``--minority``): as
  ``stars`` with ``psa_positions='full'``, and with ``psa_memory=64`` too.
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

Usage::

    .venv/bin/python benchmarks/step_time.py [--batch-size 8] [--size 128]
        [--rounds 10] [--warmup 2] [--threads N] [--unet] [--minority]
        [--shared-backbones NAME ...]
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
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


class Batch:
    """A synthetic batch: per-modality images, their concatenation, labels."""

    def __init__(self, batch_size: int, size: int) -> None:
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


def task_optimizer(task: LightningModule) -> Optimizer:
    """The optimizer a task trains with (its ``configure_optimizers``)."""
    configured = task.configure_optimizers()
    if isinstance(configured, dict):
        configured = configured['optimizer']
    assert isinstance(configured, Optimizer)
    return configured


def early_fusion_step(model_name: str, batch: Batch) -> Step:
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
    task.train()
    optimizer = task_optimizer(task)

    def step(round_index: int) -> Splits:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = task.criterion(task.model(batch.stacked), batch.mask)
        forward = time.perf_counter()
        loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        return {
            'forward': forward - start,
            'backward': backward - forward,
            'optimizer': end - backward,
            'total': end - start,
        }

    return step


def alignment_tensors(output: SegmentationOutput) -> list[Tensor]:
    """Model outputs through which the alignment losses send gradients."""
    tensors = [f for pyramid in output.translated.values() for f in pyramid]
    tensors += list(output.embeddings.values())
    return [t for t in tensors if t.requires_grad]


def stars_step(
    batch: Batch,
    align: bool = True,
    time_losses: bool = False,
    task_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> Step:
    """One STARSSegmentationTask training step (its training_step lines).

    Args:
        batch: The batch.
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
    task.train()
    optimizer = task_optimizer(task)
    p_drop = float(task.hparams['p_drop'])

    def step(round_index: int) -> Splits:
        generator = torch.Generator().manual_seed(round_index)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        dropped = modality_dropout(batch.available, p_drop, generator=generator)
        output: SegmentationOutput = task.model(
            batch.inputs, batch.available, dropped=dropped, return_alignment=align
        )
        model_end = time.perf_counter()
        # The task's own loss composition (skipping alignment terms the
        # output does not carry, as with return_alignment=False).
        losses = task.compute_losses(output, batch.mask)
        loss, aux = losses.total, losses.alignment
        loss_end = time.perf_counter()
        if time_losses and aux is not None:
            torch.autograd.grad(
                aux, alignment_tensors(output), retain_graph=True, allow_unused=True
            )
        aux_backward_end = time.perf_counter()
        loss.backward()  # type: ignore[no-untyped-call]
        backward_end = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        return {
            'forward': model_end - start,
            'losses': loss_end - model_end,
            'aux_backward': aux_backward_end - loss_end,
            'backward': backward_end - aux_backward_end,
            'optimizer': end - backward_end,
            'total': end - start,
        }

    return step


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return statistics.median(values)


def main() -> None:
    """Run the benchmark and print a markdown table."""
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
        "(psa_positions='full'), with and without a 64-per-class memory",
    )
    parser.add_argument(
        '--shared-backbones',
        nargs='*',
        default=[],
        metavar='NAME',
        help='also time STARS with each of these shared backbones',
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f'torch {torch.__version__}, {torch.get_num_threads()} torch threads, '
        f'os.cpu_count() = {os.cpu_count()}, load average at start '
        f'{os.getloadavg()[0]:.2f}; batch {args.batch_size}, '
        f'{args.size} px, {args.rounds} rounds after {args.warmup} warm-up'
    )

    batch = Batch(args.batch_size, args.size)
    steps: dict[str, Step] = {
        'early_fusion_fpn': early_fusion_step('fpn', batch),
        'stars': stars_step(batch),
        'stars_no_align': stars_step(batch, align=False),
        'stars_projection': stars_step(batch, shared_encoder='projection'),
        'stars_full_shared': stars_step(batch, shared_encoder='backbone'),
        'stars_timed_losses': stars_step(batch, time_losses=True),
    }
    for name in args.shared_backbones:
        steps[f'stars_shared_{name}'] = stars_step(batch, shared_encoder=name)
    if args.minority:
        positions = {'psa_positions': 'full'}
        steps['stars_psa_full'] = stars_step(batch, task_kwargs=positions)
        steps['stars_psa_full_memory'] = stars_step(
            batch, task_kwargs={**positions, 'psa_memory': 64}
        )
    if args.unet:
        steps['early_fusion_unet'] = early_fusion_step('unet', batch)
    names = list(steps)
    results: dict[str, list[Splits]] = {name: [] for name in names}
    began = time.perf_counter()
    for round_index in range(args.warmup + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            splits = steps[name](round_index)
            if round_index >= args.warmup:
                results[name].append(splits)
        print(
            f'round {round_index + 1}/{args.warmup + args.rounds} done '
            f'({time.perf_counter() - began:.0f} s)',
            flush=True,
        )

    def totals(name: str) -> list[float]:
        return [s['total'] for s in results[name]]

    def per_round(fn: Callable[[int], float]) -> float:
        return median([fn(r) for r in range(args.rounds)])

    base = median(totals('early_fusion_fpn'))
    print(
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
        print(
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
    timed = results['stars_timed_losses']
    # Alignment losses' forward: the losses with them minus without them
    # (segmentation only, the stars_no_align row).
    align_fwd = median([s['losses'] for s in timed]) - median(
        [s['losses'] for s in results['stars_no_align']]
    )
    aux_bwd = median([s['aux_backward'] for s in timed])
    share_b = (align_fwd + aux_bwd) / full
    stars_splits = results['stars']
    print(
        '\n| PSA + translation share of the STARS step | value |\n|---|---:|\n'
        f'| (a) (stars - stars_no_align) / stars, medians | {share_a:.1%} |\n'
        f'| (a) same, median of per-round values | {share_a_rounds:.1%} |\n'
        f'| (b) translation + PSA loss forward | {align_fwd * 1e3:.1f} ms |\n'
        f'| (b) backward of both losses down to the model outputs '
        f'| {aux_bwd * 1e3:.1f} ms |\n'
        f'| (b) sum / stars step | {share_b:.1%} |'
    )
    print('\n| stars step split (medians) | s |\n|---|---:|')
    for key in ('forward', 'losses', 'backward', 'optimizer'):
        print(f'| {key} | {median([s[key] for s in stars_splits]):.3f} |')

    ratio = full / base
    print(
        f'\nTarget STARS step <= 2.5x early fusion FPN: {ratio:.2f}x, '
        f'{"met" if ratio <= 2.5 else "MISSED"}.'
    )
    for label, share in (('(a)', share_a), ('(b)', share_b)):
        print(
            f'Target PSA + translation <= 10% of the STARS step, {label}: '
            f'{share:.1%}, {"met" if share <= 0.10 else "MISSED"}.'
        )


if __name__ == '__main__':
    main()
