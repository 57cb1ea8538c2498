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
  stride 4), and class-balanced cross-entropy (median-frequency weights of
  the training stripe's labels; not PSA): ``stars_ce_balanced`` (with the
  default PSA), ``stars_no_psa_ce_balanced`` (without PSA),
  ``stars_psa_full_ce_balanced``, and the same weights to the power 0.5
  (``stars_ce_sqrt``, ``stars_psa_full_ce_sqrt``).

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

Usage::

    .venv/bin/python benchmarks/accuracy.py --quick
    .venv/bin/python benchmarks/accuracy.py [--seeds 0 1 2] [--steps 120]
        [--size 384] [--patch-size 64] [--configs stars early_fusion ...]
        [--vehicle-scale 1] [--stars-arg KEY=VALUE ...]
        [--output benchmarks/results/accuracy]
"""

import argparse
import contextlib
import inspect
import io
import json
import logging
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import rasterio
import rasterio.windows
import torch
import yaml

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets import (
    ModalityStatistics,
    SyntheticScene,
    make_synthetic_scene,
)
from torchgeo_stars.losses import median_frequency_weights
from torchgeo_stars.tasks.scenarios import modality_scenarios, scenario_name

IGNORE_INDEX = 255

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
    'stars_ce_balanced': {'class_weights': 'balanced'},
    'stars_no_psa_ce_balanced': {'class_weights': 'balanced', 'lambda_psa': 0.0},
    'stars_psa_full_ce_balanced': {
        'psa_positions': 'full',
        'class_weights': 'balanced',
    },
    'stars_ce_sqrt': {'class_weights': 'balanced_sqrt'},
    'stars_psa_full_ce_sqrt': {
        'psa_positions': 'full',
        'class_weights': 'balanced_sqrt',
    },
}

#: ``class_weights`` values the harness replaces by median-frequency weights
#: of the training stripe's labels (:func:`training_class_weights`), to this
#: power.
BALANCED = {'balanced': 1.0, 'balanced_sqrt': 0.5}

#: Class-balanced PSA configuration to its random-sampling twin (goal 3).
SAMPLING_PAIRS = {
    'stars': 'stars_random_psa',
    'stars_psa_full': 'stars_psa_full_random',
    'stars_psa_full_memory': 'stars_psa_full_memory_random',
}

#: Configurations that are baselines (goal 1 compares STARS with the best).
BASELINES = ('early_fusion', 'moddrop', 'shaspec')

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
    """

    config: str
    seed: int
    miou: dict[str, float] = field(default_factory=dict)
    mf1: dict[str, float] = field(default_factory=dict)
    rare_iou: dict[str, float] = field(default_factory=dict)
    class_iou: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


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
        default=1,
        help='torch CPU threads (1: fastest on a shared 2-core machine)',
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
    return Setting(
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
    )


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


def training_class_weights(
    mask_path: Path,
    datamodule: MultimodalDataModule,
    num_classes: int,
    power: float = 1.0,
) -> list[float]:
    """Median-frequency class weights of the training stripe's labels.

    Args:
        mask_path: Label GeoTIFF of the scene.
        datamodule: The set-up datamodule (its ``'train'`` stripe is read).
        num_classes: Number of classes.
        power: Exponent of :func:`median_frequency_weights`.

    Returns:
        One weight per class (:func:`median_frequency_weights`).
    """
    with rasterio.open(mask_path) as src:
        window = (
            rasterio.windows.from_bounds(
                *datamodule.stripes['train'].box, transform=src.transform
            )
            .round_offsets()
            .round_lengths()
        )
        labels = src.read(1, window=window).ravel()
    labels = labels[labels != IGNORE_INDEX]
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    return median_frequency_weights(counts.tolist(), power)


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
) -> RunResult:
    """Train one configuration with one seed and test every scenario.

    Args:
        config: Configuration name.
        seed: Training seed.
        scene: The synthetic scene.
        setting: Benchmark sizes.
        rarest: Index of the rarest class.
        statistics: Normalisation statistics shared by every run.

    Returns:
        The test scores in percent.
    """
    start = time.perf_counter()
    with quiet():
        lightning.seed_everything(seed, workers=True)
        datamodule = make_datamodule(scene, setting, seed, statistics)
        datamodule.setup('fit')
        arguments = task_arguments(config, setting)
        weights = arguments.get('class_weights')
        if isinstance(weights, str) and weights in BALANCED:
            arguments['class_weights'] = training_class_weights(
                scene.mask, datamodule, scene.num_classes, BALANCED[weights]
            )
        task = STARSSegmentationTask(
            modalities=datamodule.modalities,
            num_classes=scene.num_classes,
            class_names=list(scene.class_names),
            ignore_index=IGNORE_INDEX,
            **arguments,
        )
        trainer = lightning.Trainer(
            accelerator='cpu',
            devices=1,
            max_epochs=setting.epochs,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(task, datamodule=datamodule)
        trainer.test(task, datamodule=datamodule, verbose=False)
    result = RunResult(config, seed)
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
) -> str:
    """One markdown table: configurations by scenarios, plus the rarest class.

    Args:
        summary: Output of :func:`aggregate`.
        metric: ``miou`` or ``mf1``.
        configs: Row order.
        scenarios: Column order (the first is every modality).
        rare_label: Header of the rarest-class column.

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
        lines.append('| ' + ' | '.join([config, *row]) + ' |')
    return '\n'.join(lines)


def class_table(
    results: Sequence[RunResult],
    configs: Sequence[str],
    class_names: Sequence[str],
    scenario: str,
) -> str:
    """Per-class IoU (mean over seeds) of one scenario, one row per configuration.

    Args:
        results: Every run; runs without per-class scores (older JSON) are
            skipped.
        configs: Row order.
        class_names: Column order.
        scenario: The scenario.

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
        lines.append(
            f'| {config} | ' + ' | '.join(f'{m["mean"]:.1f}' for m in means) + ' |'
        )
    return '\n'.join(lines)


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
    return goals


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
        merge(args.merge, args.output)
        return
    try:
        setting = make_setting(args)
    except ValueError as error:
        raise SystemExit(f'accuracy.py: error: {error}') from None
    torch.set_num_threads(max(1, args.threads))
    configs = [c for c in CONFIGS if c in args.configs]
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
                    config, seed, scene, setting, rarest, statistics
                )
                results.append(result)
                print(
                    f'seed {seed} {config:<21} {result.seconds:5.0f} s  mIoU '
                    + ' '.join(
                        f'{result.miou.get(s, math.nan):5.1f}' for s in scenarios
                    ),
                    flush=True,
                )
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
    }
    publish(payload, args.output)


def publish(payload: dict[str, Any], output: Path | None) -> None:
    """Summarise runs, print the tables and goals, and write them.

    Args:
        payload: Setting, configurations, class facts, scenarios, ``runs`` (as
            dicts) and ``seconds``; ``summary`` and ``goals`` are added.
        output: Where to write ``.json`` and ``.md`` (None: print only).
    """
    configs = list(payload['configs'])
    scenarios = list(payload['scenarios'])
    results = [RunResult(**run) for run in payload['runs']]
    summary = aggregate(results, configs, scenarios)
    rare_label = f'IoU {payload["rarest_class"]} (rarest, all)'
    tables = {
        metric: markdown_table(summary, metric, configs, scenarios, rare_label)
        for metric in ('miou', 'mf1')
    }
    goals = check_goals(summary, configs, scenarios)
    payload.update(summary=summary, goals=goals)
    elapsed = float(payload['seconds'])
    seeds = len(payload['setting']['seeds'])
    report = '\n'.join(
        [
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
            class_table(results, configs, payload['class_names'], scenarios[0]),
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


def merge(paths: Sequence[Path], output: Path | None) -> None:
    """Join the JSON results of runs split by configuration or seed.

    Every file must come from the same setting except its seeds (scene, steps,
    sizes, backbone, learning rate); runs are pooled, configurations kept in
    :data:`CONFIGS` order, and the tables and goals recomputed.

    Args:
        paths: JSON files written by ``--output``.
        output: Where to write the joined ``.json`` and ``.md``.

    Raises:
        SystemExit: If the files come from different settings.
    """
    parts = [json.loads(path.read_text()) for path in paths]
    first = parts[0]

    def fixed(part: dict[str, Any]) -> dict[str, Any]:
        # Files written before these options existed used their defaults.
        setting = {'vehicle_scale': 1.0, 'stars_args': {}, **part['setting']}
        return {k: v for k, v in setting.items() if k != 'seeds'}

    for path, part in zip(paths, parts, strict=True):
        if fixed(part) != fixed(first) or part['scenarios'] != first['scenarios']:
            raise SystemExit(f'{path}: another setting than {paths[0]}; not merged.')
    configs: dict[str, Any] = {}
    for part in parts:
        configs.update(part['configs'])
    seeds = sorted({run['seed'] for part in parts for run in part['runs']})
    payload = dict(first)
    payload.update(
        setting={**first['setting'], 'seeds': seeds},
        configs={c: configs[c] for c in CONFIGS if c in configs},
        runs=[run for part in parts for run in part['runs']],
        seconds=sum(float(part['seconds']) for part in parts),
    )
    publish(payload, output)


if __name__ == '__main__':
    main()
