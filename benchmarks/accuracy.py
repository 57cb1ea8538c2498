"""Accuracy under missing modalities: STARS against baselines and ablations.

One command writes a synthetic optical + SAR + DSM scene
(:func:`~torchgeo_stars.datasets.make_synthetic_scene`, fixed scene seed and
size), then, for every training seed and configuration, trains a
:class:`~torchgeo_stars.STARSSegmentationTask` on the western stripe of the
scene (:class:`~torchgeo_stars.datamodules.MultimodalDataModule`) and tests it
on the eastern stripe under every missing-modality scenario (with three
modalities, the seven non-empty subsets). Every configuration uses the same
backbone, decoder width, data, number of steps, learning rate and seeds:

* ``stars``: STARS with the task's defaults;
* ``early_fusion``: channel concatenation, missing modalities zero-filled,
  no modality dropout (``model='early_fusion'``, ``p_drop=0``);
* ``moddrop``: the same network with STARS's modality dropout (``p_drop``);
* ``shaspec``: ShaSpec-style shared + specific features (``model='shaspec'``);
* ``stars_no_stopgrad`` / ``stars_random_psa`` / ``stars_no_psa`` /
  ``stars_no_translation``: the ablations ``stop_gradient=False``,
  ``psa_sampling='random'``, ``lambda_psa=0``, ``translation=False``;
* ``stars_psa_shared``: PSA embedding heads on the shared features;
* ``stars_projection`` / ``stars_full_shared`` / ``stars_shared_lcnet050`` /
  ``stars_shared_lcnet100``: other shared encoders (1x1 projections of the
  specific features; a shared copy of the specific backbone; timm's LCNet-0.5
  and LCNet-1.0);
* ``shaspec_projection``: ShaSpec with the shared projection;
* minority-class study: ``stars_psa_full`` (PSA positions on the
  full-resolution labels, ``psa_positions='full'``), its random-sampling twin
  ``stars_psa_full_random``, ``stars_psa_full_memory`` (plus a memory of 64
  embeddings per class and modality) and its twin
  ``stars_psa_full_memory_random``, ``stars_psa_full_level0`` (embeddings at
  stride 4), ``stars_psa_decoder`` and its twin ``stars_psa_decoder_random``
  (embeddings of the decoder's features the class head reads,
  ``psa_features='decoder'``, one fused view contrasted within itself, at
  full-resolution positions, with the default class weights), and
  class-balanced cross-entropy (the task's
  ``class_weights='median_frequency'``: median-frequency weights the task
  counts on the training batches; not PSA): ``stars_ce_balanced`` (with the
  default PSA), ``stars_no_psa_ce_balanced`` (without PSA),
  ``stars_psa_full_ce_balanced``, and the same weights to the power 0.5
  (``class_weights='median_frequency_sqrt'``: ``stars_ce_sqrt``,
  ``stars_psa_full_ce_sqrt``), and the baselines with those softened
  weights, for a fair comparison (``early_fusion_ce_sqrt``,
  ``moddrop_ce_sqrt``, ``shaspec_ce_sqrt``). The weights a run trained with
  are recorded with its scores. ``'median_frequency_sqrt'`` is the task's
  default since 2026-11-30, so ``stars`` and the baselines above use it too
  (the ``_ce_sqrt`` names say so explicitly); ``stars_unweighted``,
  ``early_fusion_unweighted``, ``moddrop_unweighted`` and
  ``shaspec_unweighted`` train without class weights, as every configuration
  did before.

It prints (and with ``--output`` writes as JSON and markdown) two tables, mIoU
and mF1 in percent, one row per configuration, one column per scenario, as
mean ± std over the seeds (min-max in the JSON), plus the test IoU of the
rarest class (smallest pixel fraction in the scene's label raster) with every
modality present. It then says which goals hold:

1. in every scenario with a modality missing, STARS mIoU >= best baseline
   (``early_fusion``, ``moddrop``, ``shaspec``) + 3 points;
2. with every modality, STARS mIoU >= ``early_fusion`` - 1 point;
3. class-balanced PSA sampling raises the rarest class's IoU by >= 3 points
   over random sampling (``stars`` against ``stars_random_psa``, and each
   pair of :data:`SAMPLING_PAIRS` that was run).

Goals are judged on the means over seeds.

Without ``--configs`` it runs :data:`DEFAULT_CONFIGS`: STARS, the three
baselines and the four ablations ``docs/method.rst`` names; the other configurations
are design studies, run by name. The full setting (the defaults: seeds 0 1 2,
120 steps of 8 patches of 64 x 64 pixels, a 384-pixel scene, resnet18 with
64-channel FPN decoders for every model, AdamW at 1e-3, one torch thread)
needs about 35 minutes of one CPU core (about 90 s per STARS run). ``--quick`` (one seed, 3 steps of 4 patches, a 256-pixel scene) only
checks that everything runs: its scores mean nothing. Patches need at least
64 pixels with a 5-stage encoder (a 32-pixel patch leaves 1 x 1 deepest
features, and batch norm fails when a modality is present in one sample only).

The scene's rarest class, ``vehicle``, is one or two label pixels per object
by default, too small for any model here to predict; ``--vehicle-scale 3``
makes the objects 3-5 by 2 pixels (and the class 1.8 % of the labels instead
of 0.7 %), which is what goal 3 needs. ``--stars-arg KEY=VALUE`` sets a task
argument of every STARS configuration (e.g. ``n_per_class=16`` or
``model_kwargs.alignment_level=0``) for sensitivity studies; both are part of
the recorded setting.

Devices and budgets: ``--accelerator auto|cpu|gpu`` and ``--precision
32|bf16-mixed|16-mixed`` go to every Lightning Trainer (``auto``: the GPU when
there is one). ``--jobs J`` runs the configuration x seed runs as J parallel
processes of this script, each writing its own result file, then joins them
as ``--merge`` does (the same runs and scores as one process: every run seeds
itself); on the CPU each process gets ``cpu_count // J`` torch threads unless
``--threads`` says otherwise, and with ``--devices N`` the processes are
spread over N GPUs, one GPU each. ``--max-time MIN`` stops each run's
training after MIN minutes (Lightning's ``max_time``) and records the steps
it reached: such a run is marked as truncated in every table and goal, never
silently pooled with complete ones. The results name the device, torch
version, precision and steps reached; ``--jsonl`` appends one JSON line per
run to a file.

Usage::

    .venv/bin/python benchmarks/accuracy.py --quick
    .venv/bin/python benchmarks/accuracy.py [--seeds 0 1 2] [--steps 120]
        [--size 384] [--patch-size 64] [--configs stars early_fusion ...]
        [--vehicle-scale 1] [--stars-arg KEY=VALUE ...]
        [--accelerator auto] [--precision 32] [--jobs 1] [--max-time MIN]
        [--weights YAML] [--weights-bands YAML] [--weights-in-channels match]
        [--output benchmarks/results/accuracy] [--jsonl results.jsonl]

``--weights`` starts the specific encoders of every configuration from
pretrained weights, as the task's ``weights`` takes them (one value, or one
per modality for STARS and ShaSpec); a machine without network needs them in
the torch hub cache.
"""

import argparse
import contextlib
import datetime
import inspect
import io
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import rasterio
import torch
import yaml

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets import (
    ModalityStatistics,
    SyntheticScene,
    make_synthetic_scene,
)
from torchgeo_stars.tasks.scenarios import modality_scenarios, scenario_name

IGNORE_INDEX = 255

#: Lightning precisions the benchmark accepts.
PRECISIONS = ('32', 'bf16-mixed', '16-mixed')

#: Setting values of result files written before these options existed.
SETTING_DEFAULTS: dict[str, Any] = {
    'vehicle_scale': 1.0,
    'stars_args': {},
    'precision': '32',
    'max_time': None,
    'weights': None,
    'weights_bands': None,
    'weights_in_channels': 'match',
}

#: Task arguments of every configuration (on top of the common ones).
CONFIGS: dict[str, dict[str, Any]] = {
    'stars': {},
    'early_fusion': {'model': 'early_fusion', 'p_drop': 0.0},
    'moddrop': {'model': 'early_fusion'},
    'shaspec': {'model': 'shaspec'},
    'stars_no_stopgrad': {'stop_gradient': False},
    'stars_random_psa': {'psa_sampling': 'random'},
    'stars_no_psa': {'lambda_psa': 0.0},
    'stars_no_translation': {'translation': False},
    'stars_psa_shared': {'model_kwargs': {'psa_features': 'shared'}},
    'stars_projection': {'model_kwargs': {'shared_encoder': 'projection'}},
    'stars_full_shared': {'model_kwargs': {'shared_encoder': 'backbone'}},
    'stars_shared_lcnet050': {'model_kwargs': {'shared_encoder': 'tu-lcnet_050'}},
    'stars_shared_lcnet100': {'model_kwargs': {'shared_encoder': 'tu-lcnet_100'}},
    'shaspec_projection': {
        'model': 'shaspec',
        'model_kwargs': {'shared_encoder': 'projection'},
    },
    # Minority-class study (docs/method.rst): PSA positions on the
    # full-resolution labels, a per-class memory, class-balanced CE.
    'stars_psa_full': {'psa_positions': 'full'},
    'stars_psa_full_random': {'psa_positions': 'full', 'psa_sampling': 'random'},
    'stars_psa_full_memory': {'psa_positions': 'full', 'psa_memory': 64},
    'stars_psa_full_memory_random': {
        'psa_positions': 'full',
        'psa_memory': 64,
        'psa_sampling': 'random',
    },
    'stars_psa_full_level0': {
        'psa_positions': 'full',
        'model_kwargs': {'alignment_level': 0},
    },
    'stars_psa_full_level0_random': {
        'psa_positions': 'full',
        'psa_sampling': 'random',
        'model_kwargs': {'alignment_level': 0},
    },
    'stars_psa_full_level0_ce_sqrt': {
        'psa_positions': 'full',
        'class_weights': 'median_frequency_sqrt',
        'model_kwargs': {'alignment_level': 0},
    },
    'stars_psa_full_level0_ce_sqrt_random': {
        'psa_positions': 'full',
        'psa_sampling': 'random',
        'class_weights': 'median_frequency_sqrt',
        'model_kwargs': {'alignment_level': 0},
    },
    # PSA on the decoder's features the class head reads (one fused view),
    # with the task's default class weights (median_frequency_sqrt).
    'stars_psa_decoder': {
        'psa_positions': 'full',
        'model_kwargs': {'psa_features': 'decoder'},
    },
    'stars_psa_decoder_random': {
        'psa_positions': 'full',
        'psa_sampling': 'random',
        'model_kwargs': {'psa_features': 'decoder'},
    },
    'stars_ce_balanced': {'class_weights': 'median_frequency'},
    'stars_no_psa_ce_balanced': {
        'class_weights': 'median_frequency',
        'lambda_psa': 0.0,
    },
    'stars_psa_full_ce_balanced': {
        'psa_positions': 'full',
        'class_weights': 'median_frequency',
    },
    'stars_ce_sqrt': {'class_weights': 'median_frequency_sqrt'},
    'stars_psa_full_ce_sqrt': {
        'psa_positions': 'full',
        'class_weights': 'median_frequency_sqrt',
    },
    # The baselines with the same softened class weights (a fair comparison
    # with stars_ce_sqrt).
    'early_fusion_ce_sqrt': {
        'model': 'early_fusion',
        'p_drop': 0.0,
        'class_weights': 'median_frequency_sqrt',
    },
    'moddrop_ce_sqrt': {
        'model': 'early_fusion',
        'class_weights': 'median_frequency_sqrt',
    },
    'shaspec_ce_sqrt': {'model': 'shaspec', 'class_weights': 'median_frequency_sqrt'},
    # Without class weights: the task's default before 2026-11-30 (results
    # recorded before then under the names above without a suffix).
    'stars_unweighted': {'class_weights': None},
    'early_fusion_unweighted': {
        'model': 'early_fusion',
        'p_drop': 0.0,
        'class_weights': None,
    },
    'moddrop_unweighted': {'model': 'early_fusion', 'class_weights': None},
    'shaspec_unweighted': {'model': 'shaspec', 'class_weights': None},
}

#: Class-balanced PSA configuration to its random-sampling twin (goal 3).
SAMPLING_PAIRS = {
    'stars': 'stars_random_psa',
    'stars_psa_full': 'stars_psa_full_random',
    'stars_psa_full_memory': 'stars_psa_full_memory_random',
    'stars_psa_full_level0': 'stars_psa_full_level0_random',
    'stars_psa_full_level0_ce_sqrt': 'stars_psa_full_level0_ce_sqrt_random',
    'stars_psa_decoder': 'stars_psa_decoder_random',
}

#: Configurations that are baselines (goal 1 compares STARS with the best).
BASELINES = ('early_fusion', 'moddrop', 'shaspec')

#: Class-weighted STARS configuration to the baselines with the same weights
#: (the rarest-class goal judged fairly).
WEIGHTED_BASELINES = {
    'stars_ce_sqrt': ('early_fusion_ce_sqrt', 'moddrop_ce_sqrt', 'shaspec_ce_sqrt')
}

#: What one command runs by default: STARS, the baselines, the method's ablations.
DEFAULT_CONFIGS = (
    'stars',
    *BASELINES,
    'stars_no_stopgrad',
    'stars_random_psa',
    'stars_no_psa',
    'stars_no_translation',
)

#: Model keyword arguments every model accepts (backbone-side widths).
COMMON_MODEL_KWARGS: dict[str, Any] = {
    'decoder_channels': 64,
    'decoder_segmentation_channels': 64,
}

#: Model keyword arguments only STARS accepts.
STARS_MODEL_KWARGS: dict[str, Any] = {'translator_channels': 64, 'embedding_dim': 64}


@dataclass(frozen=True)
class Setting:
    """Sizes of one benchmark run.

    Attributes:
        seeds: Training seeds (model initialisation, patch positions, dropout).
        steps: Training steps per epoch.
        epochs: Training epochs.
        size: Optical side of the synthetic scene in pixels.
        patch_size: Patch side in pixels.
        batch_size: Patches per batch.
        scene_seed: Seed of the synthetic scene.
        backbone: Encoder of every configuration.
        lr: AdamW learning rate of every configuration.
        vehicle_scale: Factor on the scene's vehicle footprints (1: cars of one
            or two pixels; 3: a rare class several pixels across).
        stars_args: Task arguments given to every STARS configuration on top
            of the defaults (``model_kwargs.NAME`` keys go to the model); a
            configuration's own arguments (its ablation) win.
        precision: Lightning precision of training and testing.
        max_time: Training time limit of each run in minutes (None: none).
        weights: Pretrained weights of the specific encoders of every
            configuration (the task's ``weights``: one value, or one per
            modality for STARS and ShaSpec), None for random initialisation.
        weights_bands: The task's ``weights_bands``.
        weights_in_channels: The task's ``weights_in_channels``.
    """

    seeds: tuple[int, ...]
    steps: int
    epochs: int
    size: int
    patch_size: int
    batch_size: int
    scene_seed: int
    backbone: str
    lr: float
    vehicle_scale: float = 1.0
    stars_args: dict[str, Any] = field(default_factory=dict)
    precision: str = '32'
    max_time: float | None = None
    weights: Any = None
    weights_bands: dict[str, list[str]] | None = None
    weights_in_channels: str = 'match'

    @property
    def total_steps(self) -> int:
        """Optimizer steps a complete run trains."""
        return self.steps * self.epochs


@dataclass
class RunResult:
    """Test scores of one configuration trained with one seed.

    Attributes:
        config: Configuration name.
        seed: Training seed.
        miou: Scenario name to mIoU (percent).
        mf1: Scenario name to mF1 (percent).
        rare_iou: Scenario name to the rarest class's IoU (percent; NaN if the
            class is neither in the test labels nor predicted).
        class_iou: Scenario name to every class's IoU (percent; NaN, stored
            as null, for classes absent from the test stripe).
        seconds: Wall time of training and testing.
        steps: Optimizer steps the training reached (None in files written
            before it was recorded, when every run was complete).
        train_seconds: Wall time of the training alone (None likewise).
        class_weights: The cross-entropy class weights the run trained with
            (those the task counted for a named ``class_weights``; None
            without weights, and in files written before it was recorded).
    """

    config: str
    seed: int
    miou: dict[str, float] = field(default_factory=dict)
    mf1: dict[str, float] = field(default_factory=dict)
    rare_iou: dict[str, float] = field(default_factory=dict)
    class_iou: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int | None = None
    train_seconds: float | None = None
    class_weights: list[float] | None = None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments (default: ``sys.argv``).

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--quick', action='store_true', help='smoke test: one seed, tiny scene, 3 steps'
    )
    parser.add_argument('--seeds', type=int, nargs='+', help='training seeds (0 1 2)')
    parser.add_argument('--steps', type=int, help='training steps per epoch (120)')
    parser.add_argument('--epochs', type=int, help='training epochs (1)')
    parser.add_argument('--size', type=int, help='scene side in optical pixels (384)')
    parser.add_argument('--patch-size', type=int, help='patch side in pixels (64)')
    parser.add_argument('--batch-size', type=int, help='patches per batch (8)')
    parser.add_argument('--scene-seed', type=int, default=0, help='scene seed (0)')
    parser.add_argument('--backbone', default='resnet18', help='encoder (resnet18)')
    parser.add_argument('--lr', type=float, default=1e-3, help='AdamW lr (1e-3)')
    parser.add_argument(
        '--vehicle-scale',
        type=float,
        default=1.0,
        help="factor on the scene's vehicle footprints (1; 3 makes the rare class "
        'several pixels across, to measure balanced PSA sampling)',
    )
    parser.add_argument(
        '--stars-arg',
        action='append',
        default=[],
        metavar='KEY=VALUE',
        help='task argument for every STARS configuration (YAML value; '
        'model_kwargs.NAME for a model argument), e.g. n_per_class=16; repeatable',
    )
    parser.add_argument(
        '--weights',
        metavar='YAML',
        help='pretrained weights of the specific encoders of every configuration, '
        "as the task's weights (YAML: a name such as "
        'ResNet18_Weights.SENTINEL2_ALL_MOCO, a file, or {optical: ..., sar: ...}); '
        'they must be in the torch hub cache: nothing is downloaded on a machine '
        'without network',
    )
    parser.add_argument(
        '--weights-bands',
        metavar='YAML',
        help="the task's weights_bands, e.g. '{optical: [B2, B3, B4, B8]}' (the "
        "synthetic scene's optical bands are blue, green, red, nir)",
    )
    parser.add_argument(
        '--weights-in-channels',
        choices=('match', 'adapt'),
        default='match',
        help="the task's weights_in_channels (match)",
    )
    parser.add_argument(
        '--configs',
        nargs='+',
        choices=list(CONFIGS),
        default=list(DEFAULT_CONFIGS),
        help='configurations to run (default: STARS, the baselines and the '
        'ablations of docs/method.rst; the others are design studies)',
    )
    parser.add_argument(
        '--output',
        type=Path,
        help='write OUTPUT.json and OUTPUT.md (suffix replaced) with the results',
    )
    parser.add_argument(
        '--merge',
        type=Path,
        nargs='+',
        metavar='JSON',
        help='join the JSON results of runs split by configuration or seed '
        '(same setting), recompute the tables and goals; nothing is trained',
    )
    parser.add_argument(
        '--scene-dir', type=Path, help='where to write the scene (default: temporary)'
    )
    parser.add_argument(
        '--threads',
        type=int,
        help='torch CPU threads per run (default 1, or cpu_count // JOBS with '
        '--jobs; 1 is fastest on a shared 2-core machine)',
    )
    parser.add_argument(
        '--accelerator',
        choices=('auto', 'cpu', 'gpu'),
        default='auto',
        help='where to train and test (auto: the GPU when there is one)',
    )
    parser.add_argument(
        '--devices',
        type=int,
        default=1,
        help='GPUs to spread the --jobs processes over (each run uses one)',
    )
    parser.add_argument(
        '--precision',
        choices=PRECISIONS,
        default='32',
        help='Lightning precision of training and testing (32)',
    )
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='parallel processes, one configuration x seed run each (1)',
    )
    parser.add_argument(
        '--max-time',
        type=float,
        metavar='MIN',
        help='stop each run training after MIN minutes and record the steps '
        'it reached (the tables mark it as truncated)',
    )
    parser.add_argument(
        '--jsonl',
        type=Path,
        help='append one JSON line per run (with device, torch, precision)',
    )
    parser.add_argument(
        '--parts-dir',
        type=Path,
        help="with --jobs: keep each run's result files here (default: a "
        'temporary folder), so that --merge can join the finished ones if the '
        'command is killed',
    )
    return parser.parse_args(argv)


def make_setting(args: argparse.Namespace) -> Setting:
    """Fill the sizes left out with the quick or the full defaults.

    Args:
        args: Parsed command line.

    Returns:
        The setting.

    Raises:
        ValueError: If a size is not positive.
    """
    quick = bool(args.quick)
    defaults: dict[str, Any] = {
        'seeds': (0,) if quick else (0, 1, 2),
        'steps': 3 if quick else 120,
        'epochs': 1,
        'size': 256 if quick else 384,
        'patch_size': 64,
        'batch_size': 4 if quick else 8,
    }
    values = {
        key: getattr(args, key) if getattr(args, key) is not None else default
        for key, default in defaults.items()
    }
    for key in ('steps', 'epochs', 'size', 'patch_size', 'batch_size'):
        if values[key] < 1:
            raise ValueError(
                f'--{key.replace("_", "-")} must be >= 1, got {values[key]}'
            )
    if args.max_time is not None and not args.max_time > 0:
        raise ValueError(f'--max-time must be > 0 minutes, got {args.max_time}')
    weights = yaml.safe_load(args.weights) if args.weights is not None else None
    bands = yaml.safe_load(args.weights_bands) if args.weights_bands else None
    early_fusion = [
        c for c in args.configs if CONFIGS[c].get('model') == 'early_fusion'
    ]
    if isinstance(weights, dict) and early_fusion:
        raise ValueError(
            f'--weights gives one value per modality, but {early_fusion} stack the '
            'modalities into one encoder; give one value, or leave them out of '
            '--configs'
        )
    if bands is not None and not isinstance(bands, dict):
        raise ValueError(
            f'--weights-bands must be a mapping of modality to band names, got {bands!r}'
        )
    return Setting(
        weights=weights,
        weights_bands=bands,
        weights_in_channels=args.weights_in_channels,
        stars_args=parse_stars_args(args.stars_arg),
        seeds=tuple(values['seeds']),
        steps=values['steps'],
        epochs=values['epochs'],
        size=values['size'],
        patch_size=values['patch_size'],
        batch_size=values['batch_size'],
        scene_seed=args.scene_seed,
        backbone=args.backbone,
        lr=args.lr,
        vehicle_scale=args.vehicle_scale,
        precision=args.precision,
        max_time=args.max_time,
    )


def resolve_accelerator(
    accelerator: str, precision: str, devices: int, jobs: int
) -> str:
    """Check the device options and turn ``auto`` into ``cpu`` or ``gpu``.

    Args:
        accelerator: ``auto``, ``cpu`` or ``gpu``.
        precision: Lightning precision.
        devices: GPUs to spread the runs over.
        jobs: Parallel processes.

    Returns:
        ``cpu`` or ``gpu``.

    Raises:
        ValueError: If the options do not fit together or no GPU is there.
    """
    if jobs < 1:
        raise ValueError(f'--jobs must be >= 1, got {jobs}')
    if devices < 1:
        raise ValueError(f'--devices must be >= 1, got {devices}')
    cuda = torch.cuda.is_available()
    if accelerator == 'auto':
        accelerator = 'gpu' if cuda else 'cpu'
    if accelerator == 'gpu' and not cuda:
        raise ValueError('--accelerator gpu: no CUDA GPU here; use cpu or auto')
    if accelerator == 'gpu' and devices > min(jobs, torch.cuda.device_count()):
        raise ValueError(
            f'--devices {devices}: each run trains on one GPU and --devices '
            'spreads the --jobs processes over GPUs; give at most --jobs and at '
            f'most the {torch.cuda.device_count()} GPU(s) here'
        )
    if accelerator == 'cpu' and devices != 1:
        raise ValueError('--devices applies to GPUs; give --jobs for parallel CPU runs')
    if accelerator == 'cpu' and precision == '16-mixed':
        raise ValueError('--precision 16-mixed needs a GPU; use bf16-mixed on the CPU')
    return accelerator


def environment(accelerator: str, threads: int, jobs: int) -> dict[str, Any]:
    """What the results were measured on.

    Args:
        accelerator: ``cpu`` or ``gpu``.
        threads: Torch CPU threads per run.
        jobs: Parallel processes.

    Returns:
        Device name, accelerator, torch and Lightning versions, threads, jobs.
    """
    if accelerator == 'gpu':
        device = torch.cuda.get_device_name(0)
    else:
        device = f'{platform.machine()} CPU ({os.cpu_count()} cores)'
    return {
        'device': device,
        'accelerator': accelerator,
        'torch': torch.__version__,
        'lightning': lightning.__version__,
        'threads': threads,
        'jobs': jobs,
    }


def parse_stars_args(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``--stars-arg KEY=VALUE`` items.

    Args:
        items: ``KEY=VALUE`` strings; values are read as YAML (``16``,
            ``0.05``, ``random``, ``null``).

    Returns:
        Task arguments, with ``model_kwargs.NAME`` items gathered into a
        ``model_kwargs`` dictionary.

    Raises:
        ValueError: If an item has no ``=`` or names no task argument.
    """
    known = set(inspect.signature(STARSSegmentationTask.__init__).parameters)
    fixed = {'self', 'modalities', 'num_classes', 'ignore_index', 'model'}
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition('=')
        if not sep or not key:
            raise ValueError(f'--stars-arg {item!r}: write KEY=VALUE')
        value = yaml.safe_load(text)
        if key.startswith('model_kwargs.'):
            parsed.setdefault('model_kwargs', {})[key.split('.', 1)[1]] = value
        elif key in known - fixed - {'model_kwargs'}:
            parsed[key] = value
        else:
            raise ValueError(
                f'--stars-arg {item!r}: {key} is not a STARSSegmentationTask '
                'argument the benchmark lets you set; see its docstring'
            )
    return parsed


def class_fractions(mask_path: Path, num_classes: int) -> list[float]:
    """Pixel fraction of every class in a label raster, ignoring ``255``.

    Args:
        mask_path: Label GeoTIFF.
        num_classes: Number of classes.

    Returns:
        One fraction per class.

    Raises:
        ValueError: If the raster has no labelled pixel.
    """
    with rasterio.open(mask_path) as src:
        labels = src.read(1).ravel()
    labels = labels[labels != IGNORE_INDEX]
    if labels.size == 0:
        raise ValueError(f'the label raster {mask_path} has no labelled pixel')
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    return [float(c) / labels.size for c in counts]


def task_arguments(config: str, setting: Setting) -> dict[str, Any]:
    """Arguments of :class:`STARSSegmentationTask` for one configuration.

    Args:
        config: Configuration name (a key of :data:`CONFIGS`).
        setting: Benchmark sizes.

    Returns:
        Keyword arguments (without modalities, classes and ignore index).
    """
    arguments = dict(CONFIGS[config])
    kwargs = dict(COMMON_MODEL_KWARGS)
    if arguments.get('model', 'stars') == 'stars':
        kwargs.update(STARS_MODEL_KWARGS)
        extra = dict(setting.stars_args)
        kwargs.update(extra.pop('model_kwargs', {}))
        arguments = {**extra, **arguments}
    kwargs.update(arguments.pop('model_kwargs', {}))
    arguments.update(
        backbone=setting.backbone,
        lr=setting.lr,
        model_kwargs=kwargs,
        plot_every_n_epochs=0,
    )
    if setting.weights is not None:
        arguments.update(
            weights=setting.weights,
            weights_bands=setting.weights_bands,
            weights_in_channels=setting.weights_in_channels,
        )
    return arguments


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's info logs, warnings and the task's printed table."""
    names = ('lightning', 'lightning.pytorch', 'lightning.fabric')
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def make_datamodule(
    scene: SyntheticScene,
    setting: Setting,
    seed: int,
    statistics: Mapping[str, ModalityStatistics] | None = None,
) -> MultimodalDataModule:
    """The datamodule over the scene (west: train, then val, east: test).

    Args:
        scene: The synthetic scene.
        setting: Benchmark sizes.
        seed: Seed of the training patch positions.
        statistics: Normalisation statistics (estimated in ``setup`` if None).

    Returns:
        The datamodule, not set up.
    """
    return MultimodalDataModule(
        paths={name: str(path) for name, path in scene.images.items()},
        mask=str(scene.mask),
        ignore_index=IGNORE_INDEX,
        statistics=statistics,
        patch_size=setting.patch_size,
        batch_size=setting.batch_size,
        length=setting.steps * setting.batch_size,
        seed=seed,
    )


def train_and_test(
    config: str,
    seed: int,
    scene: SyntheticScene,
    setting: Setting,
    rarest: int,
    statistics: Mapping[str, ModalityStatistics],
    accelerator: str = 'cpu',
) -> RunResult:
    """Train one configuration with one seed and test every scenario.

    Args:
        config: Configuration name.
        seed: Training seed.
        scene: The synthetic scene.
        setting: Benchmark sizes, precision and time limit.
        rarest: Index of the rarest class.
        statistics: Normalisation statistics shared by every run.
        accelerator: ``cpu`` or ``gpu`` (one device).

    Returns:
        The test scores in percent and the steps the training reached.
    """
    start = time.perf_counter()
    with quiet():
        lightning.seed_everything(seed, workers=True)
        datamodule = make_datamodule(scene, setting, seed, statistics)
        datamodule.setup('fit')
        arguments = task_arguments(config, setting)
        task = STARSSegmentationTask(
            modalities=datamodule.modalities,
            num_classes=scene.num_classes,
            class_names=list(scene.class_names),
            ignore_index=IGNORE_INDEX,
            **arguments,
        )
        max_time = (
            None
            if setting.max_time is None
            else datetime.timedelta(minutes=setting.max_time)
        )
        trainer = lightning.Trainer(
            accelerator=accelerator,
            devices=1,
            precision=setting.precision,  # type: ignore[arg-type]
            max_time=max_time,
            max_epochs=setting.epochs,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        fit_start = time.perf_counter()
        trainer.fit(task, datamodule=datamodule)
        train_seconds = time.perf_counter() - fit_start
        trainer.test(task, datamodule=datamodule, verbose=False)
    weight = task.segmentation_loss.weight
    result = RunResult(
        config,
        seed,
        steps=trainer.global_step,
        train_seconds=train_seconds,
        class_weights=None if weight is None else weight.tolist(),
    )
    for name, score in task.scenario_scores['test'].items():
        result.miou[name] = 100 * score.miou
        result.mf1[name] = 100 * score.mf1
        result.rare_iou[name] = 100 * score.iou[rarest]
        result.class_iou[name] = [100 * value for value in score.iou]
    result.seconds = time.perf_counter() - start
    return result


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Mean, std (sample; 0 for one value), min and max, ignoring NaN.

    Args:
        values: Values over seeds.

    Returns:
        The summary (NaN everywhere if no value is finite).
    """
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {'mean': math.nan, 'std': math.nan, 'min': math.nan, 'max': math.nan}
    return {
        'mean': statistics.fmean(finite),
        'std': statistics.stdev(finite) if len(finite) > 1 else 0.0,
        'min': min(finite),
        'max': max(finite),
    }


def aggregate(
    results: Sequence[RunResult], configs: Sequence[str], scenarios: Sequence[str]
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Summarise the runs over seeds.

    Args:
        results: Every run.
        configs: Configurations in table order.
        scenarios: Scenario names in table order.

    Returns:
        ``summary[metric][config][scenario]`` with metric ``miou``, ``mf1``
        or ``rare_iou``.
    """
    summary: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for metric in ('miou', 'mf1', 'rare_iou'):
        summary[metric] = {}
        for config in configs:
            runs = [r for r in results if r.config == config]
            summary[metric][config] = {
                scenario: summarise(
                    [getattr(r, metric).get(scenario, math.nan) for r in runs]
                )
                for scenario in scenarios
            }
    return summary


def cell(stats: Mapping[str, float]) -> str:
    """Format ``mean ± std``.

    Args:
        stats: A summary from :func:`summarise`.

    Returns:
        The text.
    """
    if math.isnan(stats['mean']):
        return 'n/a'
    return f'{stats["mean"]:.1f} ± {stats["std"]:.1f}'


def markdown_table(
    summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    metric: str,
    configs: Sequence[str],
    scenarios: Sequence[str],
    rare_label: str,
    labels: Mapping[str, str] | None = None,
) -> str:
    """One markdown table: configurations by scenarios, plus the rarest class.

    Args:
        summary: Output of :func:`aggregate`.
        metric: ``miou`` or ``mf1``.
        configs: Row order.
        scenarios: Column order (the first is every modality).
        rare_label: Header of the rarest-class column.
        labels: Row label of a configuration, when not its name (truncated
            runs).

    Returns:
        The table.
    """
    header = ['config', *scenarios, rare_label]
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|',
    ]
    full = scenarios[0]
    for config in configs:
        row = [cell(summary[metric][config][s]) for s in scenarios]
        row.append(cell(summary['rare_iou'][config][full]))
        label = (labels or {}).get(config, config)
        lines.append('| ' + ' | '.join([label, *row]) + ' |')
    return '\n'.join(lines)


def truncated_runs(
    results: Sequence[RunResult], total_steps: int
) -> dict[str, list[int]]:
    """Steps reached by the runs that stopped before *total_steps*.

    Args:
        results: Every run (runs without recorded steps count as complete).
        total_steps: Optimizer steps a complete run trains.

    Returns:
        Configuration name to the steps of its every run, for configurations
        with at least one truncated run.
    """
    truncated: dict[str, list[int]] = {}
    for config in dict.fromkeys(r.config for r in results):
        steps = [
            total_steps if r.steps is None else r.steps
            for r in results
            if r.config == config
        ]
        if min(steps) < total_steps:
            truncated[config] = steps
    return truncated


def steps_text(steps: Sequence[int]) -> str:
    """``N`` or ``MIN-MAX`` steps."""
    low, high = min(steps), max(steps)
    return str(low) if low == high else f'{low}-{high}'


def training_table(
    results: Sequence[RunResult],
    configs: Sequence[str],
    total_steps: int,
    labels: Mapping[str, str],
) -> str:
    """Steps reached and training time per configuration (means over seeds).

    Args:
        results: Every run; runs without recorded steps or training time
            (older JSON) are left out.
        configs: Row order.
        total_steps: Optimizer steps a complete run trains.
        labels: Row label of a configuration, when not its name.

    Returns:
        The markdown table; ``x early_fusion`` is the ratio of seconds per
        step to early fusion's (blank without early fusion).
    """
    per_step: dict[str, float] = {}
    rows: dict[str, tuple[str, float]] = {}
    for config in configs:
        runs = [
            r
            for r in results
            if r.config == config and r.steps and r.train_seconds is not None
        ]
        if not runs:
            continue
        seconds = statistics.fmean(float(r.train_seconds or 0.0) for r in runs)
        per_step[config] = statistics.fmean(
            float(r.train_seconds or 0.0) / int(r.steps or 1) for r in runs
        )
        rows[config] = (steps_text([int(r.steps or 0) for r in runs]), seconds)
    lines = [
        f'| config | steps reached (of {total_steps}) | train s | steps/s '
        '| s/step x early_fusion |',
        '|---|---:|---:|---:|---:|',
    ]
    base = per_step.get('early_fusion')
    for config, (steps, seconds) in rows.items():
        ratio = '' if base is None else f'{per_step[config] / base:.2f}'
        lines.append(
            f'| {labels.get(config, config)} | {steps} | {seconds:.0f} '
            f'| {1 / per_step[config]:.2f} | {ratio} |'
        )
    return '\n'.join(lines)


def class_table(
    results: Sequence[RunResult],
    configs: Sequence[str],
    class_names: Sequence[str],
    scenario: str,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Per-class IoU (mean over seeds) of one scenario, one row per configuration.

    Args:
        results: Every run; runs without per-class scores (older JSON) are
            skipped.
        configs: Row order.
        class_names: Column order.
        scenario: The scenario.
        labels: Row label of a configuration, when not its name.

    Returns:
        The markdown table (header only if no run has per-class scores).
    """
    lines = [
        '| config | ' + ' | '.join(class_names) + ' |',
        '|' + '|'.join(['---'] + ['---:'] * len(class_names)) + '|',
    ]
    for config in configs:
        runs = [
            r.class_iou[scenario]
            for r in results
            if r.config == config and scenario in r.class_iou
        ]
        if not runs:
            continue
        means = [
            summarise([math.nan if run[k] is None else run[k] for run in runs])
            for k in range(len(class_names))
        ]
        label = (labels or {}).get(config, config)
        lines.append(
            f'| {label} | ' + ' | '.join(f'{m["mean"]:.1f}' for m in means) + ' |'
        )
    return '\n'.join(lines)


def weights_table(
    results: Sequence[RunResult], configs: Sequence[str], class_names: Sequence[str]
) -> str | None:
    """Cross-entropy class weights the runs trained with, per seed.

    Args:
        results: Every run.
        configs: Row order.
        class_names: Column order.

    Returns:
        The markdown table, one row per (configuration, seed) with weights,
        or None if no run used class weights.
    """
    lines = [
        '| config | seed | ' + ' | '.join(class_names) + ' |',
        '|' + '|'.join(['---', '---:'] + ['---:'] * len(class_names)) + '|',
    ]
    for config in configs:
        for run in results:
            if run.config == config and run.class_weights is not None:
                cells = ' | '.join(f'{w:.2f}' for w in run.class_weights)
                lines.append(f'| {config} | {run.seed} | {cells} |')
    return '\n'.join(lines) if len(lines) > 2 else None


def check_goals(
    summary: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    configs: Sequence[str],
    scenarios: Sequence[str],
) -> list[dict[str, Any]]:
    """Judge the three goals on the means over seeds.

    Args:
        summary: Output of :func:`aggregate`.
        configs: Configurations that were run.
        scenarios: Scenario names (the first is every modality).

    Returns:
        One entry per goal: ``goal``, ``holds`` (True, False, or None when a
        configuration it needs was not run) and ``detail``.
    """
    miou = summary['miou']
    goals: list[dict[str, Any]] = []
    baselines = [b for b in BASELINES if b in configs]
    text = 'STARS mIoU >= best baseline + 3 in every scenario with a modality missing'
    if 'stars' in configs and baselines:
        details, holds = [], True
        for scenario in scenarios[1:]:
            best = max(baselines, key=lambda b: miou[b][scenario]['mean'])
            margin = miou['stars'][scenario]['mean'] - miou[best][scenario]['mean']
            holds = holds and margin >= 3
            details.append(f'{scenario}: {margin:+.1f} vs {best}')
        goals.append({'goal': text, 'holds': holds, 'detail': '; '.join(details)})
    else:
        goals.append(
            {'goal': text, 'holds': None, 'detail': 'needs stars + a baseline'}
        )
    text = 'STARS mIoU >= early_fusion - 1 with every modality'
    if 'stars' in configs and 'early_fusion' in configs:
        full = scenarios[0]
        margin = miou['stars'][full]['mean'] - miou['early_fusion'][full]['mean']
        goals.append({'goal': text, 'holds': margin >= -1, 'detail': f'{margin:+.1f}'})
    else:
        goals.append({'goal': text, 'holds': None, 'detail': 'needs early_fusion'})
    text = 'balanced PSA raises the rarest-class IoU by >= 3 over random sampling'
    rare, full = summary['rare_iou'], scenarios[0]
    if 'stars' in configs and 'stars_random_psa' in configs:
        margin = rare['stars'][full]['mean'] - rare['stars_random_psa'][full]['mean']
        goals.append({'goal': text, 'holds': margin >= 3, 'detail': f'{margin:+.1f}'})
    else:
        goals.append({'goal': text, 'holds': None, 'detail': 'needs stars_random_psa'})
    for balanced, random in SAMPLING_PAIRS.items():
        if balanced != 'stars' and balanced in configs and random in configs:
            margin = rare[balanced][full]['mean'] - rare[random][full]['mean']
            goals.append(
                {
                    'goal': f'{text} ({balanced} against {random})',
                    'holds': margin >= 3,
                    'detail': f'{margin:+.1f}',
                }
            )
    for weighted, weighted_baselines in WEIGHTED_BASELINES.items():
        others = [b for b in weighted_baselines if b in configs]
        if weighted in configs and others:
            goals.append(rare_class_goal(rare, weighted, others, scenarios))
    return goals


def rare_class_goal(
    rare: Mapping[str, Mapping[str, Mapping[str, float]]],
    config: str,
    baselines: Sequence[str],
    scenarios: Sequence[str],
) -> dict[str, Any]:
    """Judge: *config*'s rarest-class IoU >= the best baseline's + 3, everywhere.

    Args:
        rare: The rarest class's IoU summary (``summary['rare_iou']``).
        config: The STARS configuration.
        baselines: Baselines trained the same way (e.g. the same class weights).
        scenarios: Scenario names (every scenario is judged).

    Returns:
        The goal entry (``goal``, ``holds``, ``detail``).
    """
    details, holds = [], True
    for scenario in scenarios:
        best = max(baselines, key=lambda b: rare[b][scenario]['mean'])
        margin = rare[config][scenario]['mean'] - rare[best][scenario]['mean']
        holds = holds and margin >= 3
        details.append(f'{scenario}: {margin:+.1f} vs {best}')
    return {
        'goal': f'{config} rarest-class IoU >= best of {", ".join(baselines)} + 3 '
        'in every scenario',
        'holds': holds,
        'detail': '; '.join(details),
    }


def goal_lines(goals: Sequence[Mapping[str, Any]]) -> list[str]:
    """Format the goals, one line each.

    Args:
        goals: Output of :func:`check_goals`.

    Returns:
        The lines.
    """
    verdict = {True: 'MET', False: 'NOT MET', None: 'NOT CHECKED'}
    return [f'- {verdict[g["holds"]]}: {g["goal"]} ({g["detail"]})' for g in goals]


def without_nan(value: Any) -> Any:
    """Replace NaN floats by None, recursively, so the JSON stays standard.

    Args:
        value: Nested dicts, lists, tuples and scalars.

    Returns:
        The same structure with NaN replaced.
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(item) for item in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark.

    Args:
        argv: Arguments (default: ``sys.argv``).
    """
    args = parse_args(argv)
    if args.merge:
        merge(args.merge, args.output, args.jsonl)
        return
    try:
        setting = make_setting(args)
        accelerator = resolve_accelerator(
            args.accelerator, args.precision, args.devices, args.jobs
        )
    except ValueError as error:
        raise SystemExit(f'accuracy.py: error: {error}') from None
    configs = [c for c in CONFIGS if c in args.configs]
    if args.jobs > 1:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        run_jobs(args, setting, configs, accelerator, threads)
        return
    threads = max(1, args.threads or 1)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        scene_dir = args.scene_dir
        if scene_dir is None:
            scene_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        scene = make_synthetic_scene(
            scene_dir,
            size=setting.size,
            seed=setting.scene_seed,
            vehicle_scale=setting.vehicle_scale,
            overwrite=True,
        )
        fractions = class_fractions(scene.mask, scene.num_classes)
        rarest = min(range(scene.num_classes), key=lambda k: fractions[k])
        rare_name = scene.class_names[rarest]
        scenarios = [scenario_name(s) for s in modality_scenarios(scene.modalities)]
        reference = make_datamodule(scene, setting, setting.scene_seed)
        with quiet():
            reference.setup('fit')
        statistics = dict(reference.statistics)
        print(f'setting: {asdict(setting)}')
        print(
            f'rarest class: {rarest} {rare_name} ({100 * fractions[rarest]:.2f} % '
            'of labelled pixels)'
        )
        results: list[RunResult] = []
        for seed in setting.seeds:
            for config in configs:
                result = train_and_test(
                    config, seed, scene, setting, rarest, statistics, accelerator
                )
                results.append(result)
                print(progress_line(result, scenarios, setting.total_steps), flush=True)
    elapsed = time.perf_counter() - start
    payload = {
        'setting': asdict(setting),
        'configs': {c: task_arguments(c, setting) for c in configs},
        'class_names': list(scene.class_names),
        'class_fractions': fractions,
        'rarest_class': rare_name,
        'scenarios': scenarios,
        'runs': [asdict(r) for r in results],
        'seconds': elapsed,
        'environment': [environment(accelerator, threads, 1)],
    }
    publish(payload, args.output, args.jsonl)


def progress_line(result: RunResult, scenarios: Sequence[str], total_steps: int) -> str:
    """One line on a finished run: time, steps if truncated, mIoU per scenario.

    Args:
        result: The run.
        scenarios: Scenario names in column order.
        total_steps: Optimizer steps a complete run trains.

    Returns:
        The line.
    """
    steps = result.steps if result.steps is not None else total_steps
    short = f' ({steps}/{total_steps} steps)' if steps < total_steps else ''
    return (
        f'seed {result.seed} {result.config:<21} {result.seconds:5.0f} s{short}  mIoU '
        + ' '.join(f'{result.miou.get(s, math.nan):5.1f}' for s in scenarios)
    )


def child_command(
    args: argparse.Namespace,
    setting: Setting,
    config: str,
    seed: int,
    output: Path,
    threads: int,
) -> list[str]:
    """The command line of one run of a ``--jobs`` benchmark.

    Args:
        args: The parent's parsed command line.
        setting: The parent's setting (quick defaults already filled in).
        config: Configuration of the run.
        seed: Seed of the run.
        output: Where the run writes its result files (suffix replaced).
        threads: Torch CPU threads of the run.

    Returns:
        The command: this script, the same setting, one configuration and seed.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        '--configs',
        config,
        '--seeds',
        str(seed),
        '--steps',
        str(setting.steps),
        '--epochs',
        str(setting.epochs),
        '--size',
        str(setting.size),
        '--patch-size',
        str(setting.patch_size),
        '--batch-size',
        str(setting.batch_size),
        '--scene-seed',
        str(setting.scene_seed),
        '--backbone',
        setting.backbone,
        '--lr',
        repr(setting.lr),
        '--vehicle-scale',
        repr(setting.vehicle_scale),
        '--accelerator',
        args.accelerator,
        '--precision',
        setting.precision,
        '--threads',
        str(threads),
        '--output',
        str(output),
    ]
    for item in args.stars_arg:
        command += ['--stars-arg', item]
    if setting.weights is not None:
        command += ['--weights', json.dumps(setting.weights)]
    if setting.weights_bands is not None:
        command += ['--weights-bands', json.dumps(setting.weights_bands)]
    command += ['--weights-in-channels', setting.weights_in_channels]
    if setting.max_time is not None:
        command += ['--max-time', repr(setting.max_time)]
    return command


def run_jobs(
    args: argparse.Namespace,
    setting: Setting,
    configs: Sequence[str],
    accelerator: str,
    threads: int,
) -> None:
    """Run every configuration x seed as ``--jobs`` parallel processes, then merge.

    Every process is this script with one configuration and one seed, writing
    its own result file in a temporary folder (or ``--parts-dir``), named
    ``CONFIG_seedSEED.json``; the files are joined as
    ``--merge`` joins them (the wall time is the parent's). With
    ``--devices N`` on the GPU, process ``k`` sees only GPU ``k mod N``. If a
    run fails, the others still finish and are published, then the command
    exits with one line naming the failed runs (their output's last lines go
    to standard error first).

    Args:
        args: Parsed command line.
        setting: Benchmark setting.
        configs: Configurations to run.
        accelerator: ``cpu`` or ``gpu``.
        threads: Torch CPU threads of each process.

    Raises:
        SystemExit: If a run failed.
    """
    runs = [(config, seed) for seed in setting.seeds for config in configs]
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    gpus = (visible.split(',') if visible else [str(i) for i in range(args.devices)])[
        : args.devices
    ]
    print(f'setting: {asdict(setting)}')
    print(
        f'{len(runs)} runs as {args.jobs} parallel processes of {threads} '
        f'thread(s) on {accelerator}',
        flush=True,
    )
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.parts_dir is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
        else:
            args.parts_dir.mkdir(parents=True, exist_ok=True)
            folder = str(args.parts_dir)

        def run(index: int) -> tuple[int, subprocess.CompletedProcess[str]]:
            config, seed = runs[index]
            env = dict(os.environ)
            if accelerator == 'gpu':
                env['CUDA_VISIBLE_DEVICES'] = gpus[index % len(gpus)]
            output = Path(folder) / f'{config}_seed{seed}'
            for suffix in ('.json', '.md'):
                output.with_suffix(suffix).unlink(missing_ok=True)
            command = child_command(args, setting, config, seed, output, threads)
            completed = subprocess.run(
                command, env=env, capture_output=True, text=True, check=False
            )
            return index, completed

        parts: list[dict[str, Any]] = []
        failed: list[str] = []
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run, index) for index in range(len(runs))]
            for future in as_completed(futures):
                index, completed = future.result()
                config, seed = runs[index]
                path = Path(folder) / f'{config}_seed{seed}.json'
                if completed.returncode != 0 or not path.exists():
                    failed.append(f'{config} seed {seed}')
                    tail = (completed.stdout + completed.stderr).splitlines()[-20:]
                    print(
                        f'run {config} seed {seed} failed (exit '
                        f'{completed.returncode}); its output ends:',
                        *tail,
                        sep='\n',
                        file=sys.stderr,
                    )
                    continue
                part = json.loads(path.read_text())
                parts.append(part)
                result = RunResult(**part['runs'][0])
                print(
                    progress_line(result, part['scenarios'], setting.total_steps),
                    flush=True,
                )
    if parts:
        payload = merge_payloads(parts, [f'run {i}' for i in range(len(parts))])
        payload['seconds'] = time.perf_counter() - start
        for env in payload['environment']:
            env['jobs'] = args.jobs
        publish(payload, args.output, args.jsonl)
    if failed:
        raise SystemExit(
            f'accuracy.py: error: {len(failed)} of {len(runs)} runs failed '
            f'({"; ".join(failed)}); their output is above'
        )


def publish(
    payload: dict[str, Any], output: Path | None, jsonl: Path | None = None
) -> None:
    """Summarise runs, print the tables and goals, and write them.

    Args:
        payload: Setting, configurations, class facts, scenarios, ``runs`` (as
            dicts), ``seconds`` and ``environment`` (a list: one entry per
            distinct device set-up); ``summary``, ``goals`` and ``truncated``
            are added.
        output: Where to write ``.json`` and ``.md`` (None: print only).
        jsonl: JSON-lines file to append one line per run to (None: none).
    """
    configs = list(payload['configs'])
    scenarios = list(payload['scenarios'])
    results = [RunResult(**run) for run in payload['runs']]
    setting = payload['setting']
    total_steps = int(setting['steps']) * int(setting['epochs'])
    truncated = truncated_runs(results, total_steps)
    labels = {config: f'{config} (truncated)' for config in truncated}
    summary = aggregate(results, configs, scenarios)
    rare_label = f'IoU {payload["rarest_class"]} (rarest, all)'
    tables = {
        metric: markdown_table(summary, metric, configs, scenarios, rare_label, labels)
        for metric in ('miou', 'mf1')
    }
    goals = check_goals(summary, configs, scenarios)
    for goal in goals:
        short = [c for c in ('stars', *BASELINES, 'stars_random_psa') if c in truncated]
        if goal['holds'] is not None and short:
            goal['detail'] += f'; judged on truncated runs of {", ".join(short)}'
    payload.update(
        summary=summary,
        goals=goals,
        truncated={config: steps for config, steps in truncated.items()},
    )
    elapsed = float(payload['seconds'])
    seeds = len(setting['seeds'])
    environments = payload.get('environment') or []
    report = '\n'.join(
        [
            *(
                f'measured on {env["device"]} ({env["accelerator"]}), torch '
                f'{env["torch"]}, precision {setting.get("precision", "32")}, '
                f'{env["jobs"]} parallel job(s) of {env["threads"]} thread(s)'
                for env in environments
            ),
            *(
                [
                    f'TRUNCATED: {", ".join(f"{c} ({steps_text(s)} steps)" for c, s in truncated.items())}'
                    f' of {total_steps} asked (--max-time {setting.get("max_time")} min);'
                    ' their scores are not comparable with complete runs'
                ]
                if truncated
                else []
            ),
            '',
            f'mIoU (%), mean ± std over {seeds} seed(s), test stripe:',
            '',
            tables['miou'],
            '',
            f'mF1 (%), mean ± std over {seeds} seed(s), test stripe:',
            '',
            tables['mf1'],
            '',
            f'IoU per class (%), every modality ({scenarios[0]}), mean over '
            'seeds (runs that recorded it):',
            '',
            class_table(results, configs, payload['class_names'], scenarios[0], labels),
            '',
            *(
                ['Cross-entropy class weights the runs trained with:', '', weights, '']
                if (weights := weights_table(results, configs, payload['class_names']))
                else []
            ),
            'Training (means over seeds):',
            '',
            training_table(results, configs, total_steps, labels),
            '',
            'Goals (means over seeds):',
            '',
            *goal_lines(goals),
            '',
            f'total wall time: {elapsed:.0f} s',
        ]
    )
    print()
    print(report)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        json_path = output.with_suffix('.json')
        json_path.write_text(json.dumps(without_nan(payload), indent=2) + '\n')
        output.with_suffix('.md').write_text(report + '\n')
        print(f'wrote {json_path} and {output.with_suffix(".md")}')
    if jsonl is not None:
        append_jsonl(jsonl, payload)


def append_jsonl(path: Path, payload: Mapping[str, Any]) -> None:
    """Append one JSON line per run: setting, environment and scores.

    Args:
        path: JSON-lines file (created if missing).
        payload: The published results.
    """
    environments = payload.get('environment') or [{}]
    total_steps = int(payload['setting']['steps']) * int(payload['setting']['epochs'])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('a') as stream:
        for run in payload['runs']:
            steps = run.get('steps')
            record = {
                'benchmark': 'accuracy',
                **environments[0],
                'precision': payload['setting'].get('precision', '32'),
                'setting': payload['setting'],
                'truncated': steps is not None and steps < total_steps,
                **run,
            }
            stream.write(json.dumps(without_nan(record)) + '\n')


def merge(
    paths: Sequence[Path], output: Path | None, jsonl: Path | None = None
) -> None:
    """Join the JSON results of runs split by configuration or seed.

    Every file must come from the same setting except its seeds (scene, steps,
    sizes, backbone, learning rate, precision, time limit); runs are pooled,
    configurations kept in :data:`CONFIGS` order, and the tables and goals
    recomputed.

    Args:
        paths: JSON files written by ``--output``.
        output: Where to write the joined ``.json`` and ``.md``.
        jsonl: JSON-lines file to append one line per run to.

    Raises:
        SystemExit: If the files come from different settings.
    """
    parts = [json.loads(path.read_text()) for path in paths]
    payload = merge_payloads(parts, [str(path) for path in paths])
    publish(payload, output, jsonl)


def merge_payloads(
    parts: Sequence[dict[str, Any]], names: Sequence[str]
) -> dict[str, Any]:
    """Pool the runs of result payloads of one setting.

    Runs are ordered as one process runs them (seed, then configuration in
    :data:`CONFIGS` order); ``seconds`` is the sum of the parts'.

    Args:
        parts: Payloads as written to ``.json`` by :func:`publish`.
        names: Where each part comes from, for error messages.

    Returns:
        The joined payload, without summary or goals.

    Raises:
        SystemExit: If the parts come from different settings.
    """
    first = parts[0]

    def fixed(part: Mapping[str, Any]) -> dict[str, Any]:
        # Files written before these options existed used their defaults.
        setting = {**SETTING_DEFAULTS, **part['setting']}
        return {k: v for k, v in setting.items() if k != 'seeds'}

    for name, part in zip(names, parts, strict=True):
        if fixed(part) != fixed(first) or part['scenarios'] != first['scenarios']:
            raise SystemExit(f'{name}: another setting than {names[0]}; not merged.')
    configs: dict[str, Any] = {}
    environments: list[dict[str, Any]] = []
    for part in parts:
        configs.update(part['configs'])
        for env in part.get('environment') or []:
            if env not in environments:
                environments.append(env)
    seeds = sorted({run['seed'] for part in parts for run in part['runs']})
    order = list(CONFIGS)
    runs = sorted(
        (run for part in parts for run in part['runs']),
        key=lambda run: (run['seed'], order.index(run['config'])),
    )
    payload = {
        key: value
        for key, value in first.items()
        if key not in ('summary', 'goals', 'truncated')
    }
    payload.update(
        setting={**first['setting'], **fixed(first), 'seeds': seeds},
        configs={c: configs[c] for c in CONFIGS if c in configs},
        runs=runs,
        seconds=sum(float(part['seconds']) for part in parts),
        environment=environments,
    )
    return payload


if __name__ == '__main__':
    main()
