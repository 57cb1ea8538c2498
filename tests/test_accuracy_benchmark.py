"""Tests of the accuracy benchmark: settings, devices, --jobs, --max-time."""

import datetime
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

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


def test_decoder_psa_configurations_differ_only_in_sampling(
    accuracy: ModuleType,
) -> None:
    from torchgeo_stars import STARSSegmentationTask
    from torchgeo_stars.models import FUSED_VIEW

    setting = accuracy.make_setting(accuracy.parse_args(['--quick']))
    balanced = accuracy.task_arguments('stars_psa_decoder', setting)
    random = accuracy.task_arguments('stars_psa_decoder_random', setting)
    assert accuracy.SAMPLING_PAIRS['stars_psa_decoder'] == 'stars_psa_decoder_random'
    assert balanced['model_kwargs']['psa_features'] == 'decoder'
    assert balanced['psa_positions'] == 'full'
    assert 'psa_sampling' not in balanced  # the task's default, 'balanced'
    assert 'class_weights' not in balanced  # the task's default
    assert random.pop('psa_sampling') == 'random'
    assert random == balanced
    task = STARSSegmentationTask(
        modalities={'optical': 4, 'sar': 2, 'dsm': 1},
        num_classes=6,
        ignore_index=255,
        **balanced,
    )
    assert task.hparams['psa_sampling'] == 'balanced'
    assert task.hparams['class_weights'] == 'median_frequency_sqrt'
    assert task.psa_loss.positions == 'full'
    heads = task.model.embedding_heads
    assert heads is not None
    assert list(heads.heads) == [FUSED_VIEW]


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


#: A result file's setting as the first harness wrote it (before the
#: vehicle scale, STARS arguments, precision and time limit existed).
OLDEST_SETTING: dict[str, Any] = {
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


def test_merge_reads_files_older_than_the_new_options(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    old = dict(OLDEST_SETTING)
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


def test_merge_refuses_another_precision_or_time_limit(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    base = dict(OLDEST_SETTING)
    old = write_result(tmp_path / 'old.json', base, 'stars')
    same = write_result(
        tmp_path / 'same.json',
        {**base, 'seeds': [1], 'precision': '32', 'max_time': None},
        'early_fusion',
    )
    accuracy.merge([old, same], None)
    for change in ({'precision': 'bf16-mixed'}, {'max_time': 5.0}):
        other = write_result(tmp_path / 'other.json', {**base, **change}, 'stars')
        with pytest.raises(SystemExit, match='another setting'):
            accuracy.merge([old, other], None)


def test_device_options_are_checked(accuracy: ModuleType) -> None:
    resolve = accuracy.resolve_accelerator
    assert resolve('cpu', 'bf16-mixed', 1, 4) == 'cpu'
    if not torch.cuda.is_available():
        assert resolve('auto', '32', 1, 1) == 'cpu'
        with pytest.raises(ValueError, match='no CUDA GPU'):
            resolve('gpu', '32', 1, 1)
    with pytest.raises(ValueError, match='16-mixed needs a GPU'):
        resolve('cpu', '16-mixed', 1, 1)
    with pytest.raises(ValueError, match='--devices applies to GPUs'):
        resolve('cpu', '32', 2, 2)
    with pytest.raises(ValueError, match='--jobs must be >= 1'):
        resolve('cpu', '32', 1, 0)
    with pytest.raises(SystemExit, match='--max-time must be > 0'):
        accuracy.main(['--quick', '--max-time', '0'])


def test_child_command_repeats_the_setting(accuracy: ModuleType) -> None:
    args = accuracy.parse_args(
        [
            '--quick',
            '--lr',
            '0.0003',
            '--vehicle-scale',
            '3',
            '--stars-arg',
            'n_per_class=16',
            '--precision',
            'bf16-mixed',
            '--max-time',
            '1.5',
            '--accelerator',
            'cpu',
            '--jobs',
            '4',
        ]
    )
    setting = accuracy.make_setting(args)
    command = accuracy.child_command(
        args, setting, 'shaspec', 2, Path('part'), threads=3
    )
    assert command[1] == str(SCRIPT.resolve())
    child = accuracy.parse_args(command[2:])
    assert child.jobs == 1
    assert child.threads == 3
    assert child.configs == ['shaspec']
    assert child.accelerator == 'cpu'
    assert child.output == Path('part')
    expected = {**accuracy.asdict(setting), 'seeds': (2,)}
    assert accuracy.asdict(accuracy.make_setting(child)) == expected


class TrainerCalledError(Exception):
    pass


def test_precision_and_time_limit_reach_the_trainer(
    accuracy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def trainer(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise TrainerCalledError

    monkeypatch.setattr(accuracy.lightning, 'Trainer', trainer)
    with pytest.raises(TrainerCalledError):
        accuracy.main(
            [
                '--quick',
                '--configs',
                'early_fusion',
                '--precision',
                'bf16-mixed',
                '--max-time',
                '2.5',
                '--accelerator',
                'cpu',
            ]
        )
    assert seen['precision'] == 'bf16-mixed'
    assert seen['max_time'] == datetime.timedelta(minutes=2.5)
    assert seen['accelerator'] == 'cpu'
    assert seen['devices'] == 1


def truncated_payload(steps: dict[str, list[int]]) -> dict[str, Any]:
    scenarios = ['a+b', 'a', 'b']
    runs = [
        {
            'config': config,
            'seed': seed,
            'miou': dict.fromkeys(scenarios, 10.0 + seed),
            'mf1': dict.fromkeys(scenarios, 20.0),
            'rare_iou': dict.fromkeys(scenarios, 0.0),
            'class_iou': {s: [10.0, 10.0] for s in scenarios},
            'seconds': 2.0,
            'steps': reached,
            'train_seconds': 1.0,
        }
        for config, counts in steps.items()
        for seed, reached in enumerate(counts)
    ]
    return {
        'setting': {'seeds': [0, 1], 'steps': 100, 'epochs': 1, 'max_time': 1.0},
        'configs': {config: {} for config in steps},
        'class_names': ['x', 'y'],
        'class_fractions': [0.9, 0.1],
        'rarest_class': 'y',
        'scenarios': scenarios,
        'runs': runs,
        'seconds': 4.0,
        'environment': [
            {
                'device': 'test CPU',
                'accelerator': 'cpu',
                'torch': torch.__version__,
                'threads': 1,
                'jobs': 1,
            }
        ],
    }


def test_truncated_runs_are_marked(accuracy: ModuleType, tmp_path: Path) -> None:
    # early_fusion complete; stars stopped early for one seed of two.
    payload = truncated_payload({'stars': [100, 40], 'early_fusion': [100, 100]})
    accuracy.publish(payload, tmp_path / 'out', tmp_path / 'runs.jsonl')
    report = (tmp_path / 'out.md').read_text()
    assert 'TRUNCATED: stars (40-100 steps) of 100 asked' in report
    rows = [line for line in report.splitlines() if line.startswith('| stars')]
    assert rows
    assert all(line.startswith('| stars (truncated) |') for line in rows)
    assert any(line.startswith('| early_fusion | ') for line in report.splitlines())
    assert 'early_fusion (truncated)' not in report
    # Seconds per step, mean over seeds: (1/100 + 1/40) / 2 = 0.0175 s, i.e.
    # 57.14 steps/s and 1.75x early fusion's 0.01 s.
    assert '| stars (truncated) | 40-100 | 1 | 57.14 | 1.75 |' in report
    assert '| early_fusion | 100 | 1 | 100.00 | 1.00 |' in report
    assert 'judged on truncated runs of stars' in report
    assert f'torch {torch.__version__}' in report
    saved = json.loads((tmp_path / 'out.json').read_text())
    assert saved['truncated'] == {'stars': [100, 40]}
    lines = [
        json.loads(line) for line in (tmp_path / 'runs.jsonl').read_text().splitlines()
    ]
    assert [(r['config'], r['truncated']) for r in lines] == [
        ('stars', False),
        ('stars', True),
        ('early_fusion', False),
        ('early_fusion', False),
    ]
    assert {r['device'] for r in lines} == {'test CPU'}


@pytest.mark.slow
def test_max_time_stops_training_and_marks_the_run(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    torch_threads = torch.get_num_threads()
    try:
        accuracy.main(
            [
                '--quick',
                '--configs',
                'early_fusion',
                '--steps',
                '4',
                '--max-time',
                '0.00001',
                '--accelerator',
                'cpu',
                '--output',
                str(tmp_path / 'out'),
            ]
        )
    finally:
        torch.set_num_threads(torch_threads)
    saved = json.loads((tmp_path / 'out.json').read_text())
    # The limit is checked after every step: the run stops after the first.
    assert [run['steps'] for run in saved['runs']] == [1]
    assert saved['truncated'] == {'early_fusion': [1]}
    assert saved['setting']['max_time'] == 0.00001
    assert '| early_fusion (truncated) |' in (tmp_path / 'out.md').read_text()


@pytest.mark.slow
def test_jobs_give_the_results_of_one_process(tmp_path: Path) -> None:
    common = [
        '--quick',
        '--configs',
        'stars',
        'early_fusion',
        '--steps',
        '2',
        '--batch-size',
        '2',
        '--threads',
        '1',
        '--accelerator',
        'cpu',
    ]
    for name, extra in (('one', []), ('jobs', ['--jobs', '2'])):
        subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                *common,
                *extra,
                '--output',
                str(tmp_path / name),
            ],
            check=True,
            capture_output=True,
        )
    one = json.loads((tmp_path / 'one.json').read_text())
    jobs = json.loads((tmp_path / 'jobs.json').read_text())

    def scores(payload: dict[str, Any]) -> list[dict[str, Any]]:
        timing = ('seconds', 'train_seconds')
        return [
            {k: v for k, v in r.items() if k not in timing} for r in payload['runs']
        ]

    assert [(r['config'], r['seed']) for r in jobs['runs']] == [
        ('stars', 0),
        ('early_fusion', 0),
    ]
    assert scores(jobs) == scores(one)
    for key in (
        'setting',
        'configs',
        'summary',
        'goals',
        'scenarios',
        'class_fractions',
    ):
        assert jobs[key] == one[key], key
    assert one['environment'][0]['jobs'] == 1
    assert jobs['environment'][0]['jobs'] == 2


def test_a_failed_job_keeps_the_others(
    accuracy: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Stand-in runs: early_fusion writes a result file, stars fails.
    fake = tmp_path / 'fake_run.py'
    fake.write_text(
        'import json, sys\n'
        'payload = json.loads(sys.argv[1])\n'
        'open(sys.argv[2], "w").write(json.dumps(payload))\n'
    )
    result = write_result(
        tmp_path / 'template.json',
        {'seeds': [0], 'steps': 3, 'epochs': 1},
        'early_fusion',
    )
    payload = json.loads(result.read_text())
    payload['environment'] = [
        {'device': 'cpu', 'accelerator': 'cpu', 'torch': '0', 'threads': 1, 'jobs': 1}
    ]

    def command(
        args: Any, setting: Any, config: str, seed: int, output: Path, threads: int
    ) -> list[str]:
        if config == 'stars':
            return [sys.executable, '-c', 'import sys; print("boom"); sys.exit(3)']
        target = str(output.with_suffix('.json'))
        return [sys.executable, str(fake), json.dumps(payload), target]

    monkeypatch.setattr(accuracy, 'child_command', command)
    argv = ['--quick', '--configs', 'stars', 'early_fusion', '--jobs', '2']
    argv += ['--accelerator', 'cpu', '--output', str(tmp_path / 'out')]
    with pytest.raises(SystemExit, match=r'1 of 2 runs failed \(stars seed 0\)'):
        accuracy.main(argv)
    # The failed run's output is shown before the one-line error.
    assert 'run stars seed 0 failed (exit 3); its output ends:\nboom' in (
        capsys.readouterr().err
    )
    saved = json.loads((tmp_path / 'out.json').read_text())
    assert [(r['config'], r['seed']) for r in saved['runs']] == [('early_fusion', 0)]
    assert saved['environment'][0]['jobs'] == 2


def test_weights_reach_every_configuration_and_its_encoders(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    from segmentation_models_pytorch.encoders import get_encoder

    from torchgeo_stars import STARSSegmentationTask

    encoder = get_encoder('resnet18', in_channels=2, weights=None)
    generator = torch.Generator().manual_seed(3)
    state = {
        key: torch.randn(value.shape, generator=generator)
        if value.is_floating_point()
        else value.clone()
        for key, value in encoder.state_dict().items()
    }
    path = tmp_path / 'sar.pth'
    torch.save(state, path)
    argv = ['--quick', '--weights', f'{{sar: {path}}}', '--configs', 'stars', 'shaspec']
    args = accuracy.parse_args(argv)
    setting = accuracy.make_setting(args)
    assert setting.weights == {'sar': str(path)}
    for config in ('stars', 'shaspec'):
        arguments = accuracy.task_arguments(config, setting)
        assert arguments['weights'] == {'sar': str(path)}
        assert arguments['weights_in_channels'] == 'match'
    task = STARSSegmentationTask(
        modalities={'optical': 4, 'sar': 2, 'dsm': 1},
        num_classes=6,
        ignore_index=255,
        **accuracy.task_arguments('stars', setting),
    )
    loaded = task.model.specific_encoders.encoders['sar'].encoder.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # The setting travels to --jobs children and is kept in result files.
    command = accuracy.child_command(args, setting, 'stars', 0, Path('part'), threads=1)
    child = accuracy.make_setting(accuracy.parse_args(command[2:]))
    assert child.weights == setting.weights
    assert accuracy.asdict(child)['weights'] == {'sar': str(path)}


def test_per_modality_weights_refuse_early_fusion(accuracy: ModuleType) -> None:
    argv = ['--quick', '--weights', '{sar: x.pth}', '--configs', 'stars', 'moddrop']
    with pytest.raises(SystemExit, match=r"\['moddrop'\] stack the modalities"):
        accuracy.main(argv)
    # Without weights, or with one value, every configuration is accepted.
    one = accuracy.make_setting(
        accuracy.parse_args(['--quick', '--weights', 'x.pth', '--configs', 'moddrop'])
    )
    assert accuracy.task_arguments('moddrop', one)['weights'] == 'x.pth'
    none = accuracy.make_setting(accuracy.parse_args(['--quick']))
    assert 'weights' not in accuracy.task_arguments('stars', none)


def test_ce_sqrt_configurations_add_only_the_named_class_weights(
    accuracy: ModuleType,
) -> None:
    setting = accuracy.make_setting(accuracy.parse_args(['--quick']))
    pairs = {
        'stars': 'stars_ce_sqrt',
        'early_fusion': 'early_fusion_ce_sqrt',
        'moddrop': 'moddrop_ce_sqrt',
        'shaspec': 'shaspec_ce_sqrt',
    }
    for plain, weighted in pairs.items():
        arguments = accuracy.task_arguments(weighted, setting)
        assert arguments.pop('class_weights') == 'median_frequency_sqrt'
        assert arguments == accuracy.task_arguments(plain, setting), weighted
    balanced = accuracy.task_arguments('stars_ce_balanced', setting)
    assert balanced['class_weights'] == 'median_frequency'
    assert set(accuracy.WEIGHTED_BASELINES['stars_ce_sqrt']) == {
        pairs[b] for b in accuracy.BASELINES
    }


def test_weighted_runs_record_the_weights_the_task_counted(
    accuracy: ModuleType, tmp_path: Path
) -> None:
    # stars: the task's default weights (median_frequency_sqrt)
    configs = ['stars', 'early_fusion_ce_sqrt', 'early_fusion_unweighted']
    accuracy.main(['--quick', '--configs', *configs, '--output', str(tmp_path / 'r')])
    runs = json.loads((tmp_path / 'r.json').read_text())['runs']
    # Counting read its own copy of the loader: every run trained its steps.
    assert [run['steps'] for run in runs] == [3, 3, 3]
    weights = {run['config']: run['class_weights'] for run in runs}
    assert weights['early_fusion_unweighted'] is None
    counted = weights['stars']
    assert len(counted) == 6
    assert min(counted) > 0
    assert max(counted) > 1.5  # the rare classes weigh more
    assert 1.0 in counted  # the median class
    # Same seed, same training batches: the baseline trains with the same weights.
    assert weights['early_fusion_ce_sqrt'] == counted
    report = (tmp_path / 'r.md').read_text()
    row = '| stars | 0 | ' + ' | '.join(f'{w:.2f}' for w in counted) + ' |'
    assert row in report.splitlines()
    assert '| early_fusion_unweighted | 0 |' not in report


def test_rare_class_goal_compares_weighted_stars_with_weighted_baselines(
    accuracy: ModuleType,
) -> None:
    scenarios = ['a+b', 'a', 'b']

    def stats(*values: float) -> dict[str, dict[str, float]]:
        return {
            s: {'mean': v, 'std': 0.0, 'min': v, 'max': v}
            for s, v in zip(scenarios, values, strict=True)
        }

    rare = {
        'stars_ce_sqrt': stats(30.0, 20.0, 10.0),
        'early_fusion_ce_sqrt': stats(20.0, 16.0, 8.0),
        'shaspec_ce_sqrt': stats(26.0, 18.0, 2.0),
    }
    summary = {'miou': rare, 'mf1': rare, 'rare_iou': rare}
    goals = accuracy.check_goals(summary, list(rare), scenarios)
    assert len(goals) == 4
    goal = goals[-1]
    assert goal['goal'].startswith('stars_ce_sqrt rarest-class IoU >= best of')
    assert goal['holds'] is False  # only +2.0 over early fusion without b
    assert goal['detail'] == (
        'a+b: +4.0 vs shaspec_ce_sqrt; a: +2.0 vs shaspec_ce_sqrt; '
        'b: +2.0 vs early_fusion_ce_sqrt'
    )
    rare['stars_ce_sqrt'] = stats(30.0, 21.0, 11.0)
    assert accuracy.check_goals(summary, list(rare), scenarios)[-1]['holds'] is True
    # Without a weighted baseline the goal is not judged.
    alone = {'stars_ce_sqrt': rare['stars_ce_sqrt']}
    summary = {'miou': alone, 'mf1': alone, 'rare_iou': alone}
    assert len(accuracy.check_goals(summary, list(alone), scenarios)) == 3


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
