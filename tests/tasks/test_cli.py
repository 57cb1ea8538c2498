import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
import torch

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.main import CHECKPOINT_SUBCOMMANDS, COMMANDS, OVERVIEW, main

from .helpers import CONFIG, ROOT, SCENE, TINY_MODEL_YAML, scene_data_args

SCRIPT = Path(sys.executable).with_name('torchgeo-stars')


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in a fresh process."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_fit_fast_dev_run_with_the_example_config(tmp_path: Path) -> None:
    status = main(
        [
            'fit',
            '--config',
            str(CONFIG),
            '--trainer.fast_dev_run',
            'true',
            '--trainer.default_root_dir',
            str(tmp_path),
            '--trainer.enable_progress_bar',
            'false',
            *scene_data_args(),
        ]
    )
    assert status == 0


def test_plain_torchgeo_cli_resolves_our_class_paths(tmp_path: Path) -> None:
    import torchgeo.main

    torchgeo.main.main(
        [
            'fit',
            '--model.class_path',
            'torchgeo_stars.STARSSegmentationTask',
            '--model.init_args.modalities',
            '{optical: 4, sar: 2, dsm: 1}',
            '--model.init_args.num_classes',
            '6',
            '--model.init_args.ignore_index',
            '255',
            '--model.init_args.model_kwargs',
            TINY_MODEL_YAML,
            '--data.class_path',
            'torchgeo_stars.datamodules.MultimodalDataModule',
            '--data.init_args.paths',
            f'{{optical: {SCENE / "optical"}, sar: {SCENE / "sar"}, dsm: {SCENE / "dsm"}}}',
            '--data.init_args.mask',
            str(SCENE / 'mask'),
            '--data.init_args.ignore_index',
            '255',
            '--data.init_args.patch_size',
            '16',
            '--data.init_args.batch_size',
            '2',
            '--trainer.fast_dev_run',
            'true',
            '--trainer.enable_progress_bar',
            'false',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )


def test_torchgeo_short_names_still_resolve() -> None:
    # Our entry point keeps TorchGeo's own tasks and datamodules reachable.
    with pytest.raises(SystemExit) as exit_info:
        main(['fit', '--model', 'SemanticSegmentation', '--print_config'])
    assert exit_info.value.code == 0


@pytest.mark.parametrize(
    ('override', 'message'),
    [
        (['--model.init_args.modalities', '{optical: 4, sar: 2, hyper: 30}'], 'hyper'),
        (['--model.init_args.modalities', '{optical: 3, sar: 2, dsm: 1}'], "'optical'"),
        (['--model.init_args.class_names', '[a, b, c]'], 'class_names'),
        (
            [
                '--model.init_args.num_classes',
                '2',
                '--model.init_args.class_names',
                'null',
            ],
            'num_classes',
        ),
        (
            [
                '--data.init_args.val_fraction',
                '0.5',
                '--data.init_args.test_fraction',
                '0.5',
            ],
            'fraction',
        ),
        (['--data.init_args.patch_size', '80'], 'patch'),
        (['--model.init_args.class_weights', 'inverse'], 'class_weights'),
    ],
)
def test_bad_configuration_is_one_line_without_traceback(
    override: list[str], message: str, tmp_path: Path
) -> None:
    result = run_cli(
        'fit',
        '--config',
        str(CONFIG),
        '--trainer.fast_dev_run',
        'true',
        '--trainer.default_root_dir',
        str(tmp_path),
        *scene_data_args(),
        *override,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    errors = [
        line for line in result.stderr.splitlines() if 'torchgeo-stars: error' in line
    ]
    assert len(errors) == 1, result.stderr[-2000:]
    assert message in errors[0]


def test_synthetic_command_writes_a_scene(tmp_path: Path) -> None:
    status = main(
        ['synthetic', str(tmp_path / 'scene'), '--size', '48', '--classes', '4']
    )
    assert status == 0
    assert sorted(p.name for p in (tmp_path / 'scene').iterdir() if p.is_dir()) == [
        'dsm',
        'mask',
        'optical',
        'sar',
    ]
    # A second run refuses to overwrite, as one line.
    assert main(['synthetic', str(tmp_path / 'scene'), '--size', '48']) == 1


def test_synthetic_command_vehicle_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ['synthetic', str(tmp_path / 'scene'), '--size', '48']
    assert main([*args, '--vehicle-scale', '9']) == 1
    assert 'vehicle_scale=9.0' in capsys.readouterr().err
    assert not (tmp_path / 'scene').exists() or not any(
        (tmp_path / 'scene').rglob('*.tif')
    )
    assert main([*args, '--vehicle-scale', '2.5']) == 0
    with rasterio.open(tmp_path / 'scene' / 'mask' / 'labels_scene.tif') as src:
        assert src.tags()['SYNTHETIC_VEHICLE_SCALE'] == '2.5'


def scenario_table(stdout: str) -> str:
    """The per-scenario table the task prints after testing."""
    match = re.search(
        r'Test scores per missing-modality scenario.*?\n((?:.+\n?)+)', stdout
    )
    assert match is not None, stdout[-3000:]
    return match.group(1).strip()


@pytest.mark.slow
def test_ddp_fit_checkpoint_and_synced_metrics(tmp_path: Path) -> None:
    common = [
        '--config',
        str(CONFIG),
        *scene_data_args(patch_size=16, batch_size=2),
        # GroupNorm of the FPN needs 2+ values per group on 1 x 1 maps.
        '--model.init_args.model_kwargs',
        TINY_MODEL_YAML.replace(
            'decoder_segmentation_channels: 32', 'decoder_segmentation_channels: 64'
        ),
        '--trainer.accelerator',
        'cpu',
        '--trainer.enable_progress_bar',
        'false',
        '--trainer.logger',
        'false',
    ]
    fit = run_cli(
        'fit',
        *common,
        '--trainer.devices',
        '2',
        '--trainer.strategy',
        'ddp',
        '--trainer.max_epochs',
        '1',
        '--trainer.limit_train_batches',
        '2',
        '--trainer.limit_val_batches',
        '2',
        '--trainer.default_root_dir',
        str(tmp_path),
        cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoints = sorted(tmp_path.rglob('*.ckpt'))
    assert checkpoints, fit.stderr[-3000:]
    task = STARSSegmentationTask.load_from_checkpoint(
        checkpoints[0], map_location='cpu'
    )
    assert task.data_statistics is not None
    assert set(task.data_statistics) == {'optical', 'sar', 'dsm'}
    assert torch.isfinite(next(task.parameters())).all()

    tables = []
    for devices in ('1', '2'):
        result = run_cli(
            'test',
            *common,
            '--trainer.devices',
            devices,
            '--trainer.strategy',
            'ddp' if devices == '2' else 'auto',
            '--ckpt_path',
            str(checkpoints[0]),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        tables.append(scenario_table(result.stdout))
    assert tables[0] == tables[1]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['--help']) == 0
    shown = capsys.readouterr().out
    assert shown == OVERVIEW
    for command in [*CHECKPOINT_SUBCOMMANDS, *COMMANDS]:
        assert f'\n  {command} ' in shown
    assert main([]) == 2  # no command: the same overview, on stderr
    assert capsys.readouterr().err == OVERVIEW


@pytest.mark.parametrize('argv', [['--help'], ['synthetic', '--help']])
def test_help_does_not_import_lightning(argv: list[str]) -> None:
    code = (
        'import sys\n'
        'from torchgeo_stars.main import main\n'
        'try:\n'
        f'    main({argv!r})\n'
        'except SystemExit:\n'  # argparse's help exits
        '    pass\n'
        'print("lightning" in sys.modules, "torch" in sys.modules)'
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == 'False False'


def test_module_entry_point_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'torchgeo_stars', '--help'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0
    assert 'fit' in result.stdout


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('median_frequency_sqrt', 'class_weights: median_frequency_sqrt'),
        ('[1, 2, 1, 1, 1, 3]', 'class_weights:\n    - 1.0\n    - 2.0'),
        ('null', 'class_weights: null'),
    ],
)
def test_class_weights_accept_a_name_a_list_or_null(
    value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ['fit', '--config', str(CONFIG), '--model.init_args.class_weights', value]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, '--print_config'])
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out
