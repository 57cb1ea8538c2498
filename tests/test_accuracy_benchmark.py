"""Tests of the accuracy benchmark's settings (no training)."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from torchgeo_stars.datamodules.splits import Stripe

SCRIPT = Path(__file__).parents[1] / 'benchmarks' / 'accuracy.py'


@pytest.fixture(scope='module')
def accuracy() -> ModuleType:
    spec = importlib.util.spec_from_file_location('accuracy_benchmark', SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_default_run_is_stars_baselines_and_method_ablations(
    accuracy: ModuleType,
) -> None:
    args = accuracy.parse_args([])
    assert args.configs == [
        'stars',
        'early_fusion',
        'moddrop',
        'shaspec',
        'stars_no_stopgrad',
        'stars_random_psa',
        'stars_no_psa',
        'stars_no_translation',
    ]
    assert set(args.configs) < set(accuracy.CONFIGS)


def test_stars_args_reach_stars_configurations_only(accuracy: ModuleType) -> None:
    args = accuracy.parse_args(
        [
            '--stars-arg',
            'n_per_class=16',
            '--stars-arg',
            'lambda_psa=0.5',
            '--stars-arg',
            'model_kwargs.alignment_level=0',
            '--vehicle-scale',
            '3',
        ]
    )
    setting = accuracy.make_setting(args)
    assert setting.vehicle_scale == 3.0
    stars = accuracy.task_arguments('stars', setting)
    assert stars['n_per_class'] == 16
    assert stars['lambda_psa'] == 0.5
    assert stars['model_kwargs']['alignment_level'] == 0
    # An ablation's own arguments win over the study's.
    no_psa = accuracy.task_arguments('stars_no_psa', setting)
    assert no_psa['lambda_psa'] == 0.0
    assert no_psa['n_per_class'] == 16
    projection = accuracy.task_arguments('stars_projection', setting)
    assert projection['model_kwargs']['shared_encoder'] == 'projection'
    assert projection['model_kwargs']['alignment_level'] == 0
    # Baselines are untouched.
    for config in ('early_fusion', 'shaspec'):
        baseline = accuracy.task_arguments(config, setting)
        assert 'n_per_class' not in baseline
        assert 'alignment_level' not in baseline['model_kwargs']


@pytest.mark.parametrize(
    ('item', 'match'),
    [('n_per_class', 'KEY=VALUE'), ('=3', 'KEY=VALUE'), ('epochs=3', 'epochs')],
)
def test_bad_stars_args(accuracy: ModuleType, item: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        accuracy.parse_stars_args([item])
    with pytest.raises(SystemExit, match=match):
        accuracy.main(['--quick', '--stars-arg', item])


def write_result(path: Path, setting: dict[str, Any], config: str) -> Path:
    scenarios = ['a+b', 'a', 'b']
    run = {
        'config': config,
        'seed': setting['seeds'][0],
        'miou': dict.fromkeys(scenarios, 10.0),
        'mf1': dict.fromkeys(scenarios, 20.0),
        'rare_iou': dict.fromkeys(scenarios, 0.0),
        'class_iou': {s: [10.0, 10.0] for s in scenarios},
        'seconds': 1.0,
    }
    payload = {
        'setting': setting,
        'configs': {config: {}},
        'class_names': ['x', 'y'],
        'class_fractions': [0.9, 0.1],
        'rarest_class': 'y',
        'scenarios': scenarios,
        'runs': [run],
        'seconds': 1.0,
    }
    path.write_text(json.dumps(payload))
    return path


def test_merge_reads_files_older_than_the_new_options(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    old = {
        'seeds': [0],
        'steps': 120,
        'epochs': 1,
        'size': 384,
        'patch_size': 64,
        'batch_size': 8,
        'scene_seed': 0,
        'backbone': 'resnet18',
        'lr': 0.001,
    }
    new = {**old, 'seeds': [1], 'vehicle_scale': 1.0, 'stars_args': {}}
    a = write_result(tmp_path / 'old.json', old, 'stars')
    b = write_result(tmp_path / 'new.json', new, 'stars')
    accuracy.merge([a, b], tmp_path / 'joined')
    joined = json.loads((tmp_path / 'joined.json').read_text())
    assert joined['setting']['seeds'] == [0, 1]
    assert len(joined['runs']) == 2
    # Another vehicle scale or STARS argument is another setting.
    for change in ({'vehicle_scale': 3.0}, {'stars_args': {'n_per_class': 16}}):
        c = write_result(tmp_path / 'other.json', {**new, **change}, 'stars')
        with pytest.raises(SystemExit, match='another setting'):
            accuracy.merge([a, c], None)


def test_balanced_class_weights_come_from_the_training_stripe(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    # West half: 6 pixels of class 0, 2 of class 1; east half: only class 2.
    labels = np.full((2, 8), 2, dtype=np.uint8)
    labels[:, :4] = 0
    labels[0, :2] = 1
    labels[1, 3] = 255  # ignored
    path = tmp_path / 'mask.tif'
    transform = from_origin(100.0, 50.0, 10.0, 10.0)
    profile = {'driver': 'GTiff', 'width': 8, 'height': 2, 'count': 1}
    with rasterio.open(
        path, 'w', **profile, dtype='uint8', crs='EPSG:32633', transform=transform
    ) as dst:
        dst.write(labels, 1)

    class Module:
        stripes = {'train': Stripe('train', (100.0, 30.0, 140.0, 50.0), 4)}

    weights = accuracy.training_class_weights(path, Module(), 3)
    # Counts 5, 2, 0 in the stripe: median frequency is the lower of the two.
    assert weights == pytest.approx([2 / 5, 1.0, 1.0])


def test_goal_three_is_judged_for_every_sampling_pair(accuracy: ModuleType) -> None:
    scenarios = ['a+b', 'a']

    def stats(value: float) -> dict[str, dict[str, float]]:
        entry = {'mean': value, 'std': 0.0, 'min': value, 'max': value}
        return dict.fromkeys(scenarios, entry)

    rare = {
        'stars': stats(10.0),
        'stars_random_psa': stats(9.0),
        'stars_psa_full': stats(15.0),
        'stars_psa_full_random': stats(11.0),
    }
    summary = {'miou': rare, 'mf1': rare, 'rare_iou': rare}
    goals = accuracy.check_goals(summary, list(rare), scenarios)
    verdicts = {g['goal']: (g['holds'], g['detail']) for g in goals}
    base = 'balanced PSA raises the rarest-class IoU by >= 3 over random sampling'
    assert verdicts[base] == (False, '+1.0')
    full = f'{base} (stars_psa_full against stars_psa_full_random)'
    assert verdicts[full] == (True, '+4.0')
    assert len(goals) == 4  # the memory pair was not run
