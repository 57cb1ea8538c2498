"""Every checkpoint the project writes loads with ``weights_only=True``."""

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.inference import load_predictor
from torchgeo_stars.inference.export import export_model
from torchgeo_stars.inference.model_file import is_model_file
from torchgeo_stars.main import main, with_safe_loading

from ..tasks.helpers import CONFIG, random_batch, scene_data_args, tiny_task


def assert_loads_safely(path: Path) -> None:
    """torch, Lightning and the predictor loader read *path* without pickling."""
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    assert 'state_dict' in checkpoint
    task = STARSSegmentationTask.load_from_checkpoint(
        path, map_location='cpu', weights_only=True
    )
    assert task.data_statistics is not None
    predictor = load_predictor(path)
    assert predictor.statistics is not None


def test_checkpoints_written_by_training_load_with_weights_only(tmp_path: Path) -> None:
    task = tiny_task()
    # The statistics are saved with every checkpoint (set here as on_fit_start
    # would from a datamodule).
    task.data_statistics = {
        'optical': {'mean': [1.0] * 4, 'std': [2.0] * 4, 'bands': list('bgrn')},
        'sar': {'mean': [-12.0, -19.0], 'std': [3.0, 3.0]},
        'dsm': {'mean': [200.0], 'std': [5.0]},
    }
    task.reader_options = {'sar': {'to_db': True}, 'dsm': {'nodata': -9999.0}}
    callback = ModelCheckpoint(dirpath=tmp_path / 'callback', save_last=True)
    trainer = lightning.Trainer(
        max_steps=1,
        accelerator='cpu',
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    loader: DataLoader[Any] = DataLoader([random_batch()], batch_size=None)  # type: ignore[arg-type]
    trainer.fit(task, train_dataloaders=loader)
    full = tmp_path / 'full.ckpt'
    trainer.save_checkpoint(full, weights_only=False)
    weights = tmp_path / 'weights.ckpt'
    trainer.save_checkpoint(weights, weights_only=True)
    written = sorted((tmp_path / 'callback').glob('*.ckpt'))
    assert written, 'ModelCheckpoint wrote nothing'
    for path in [full, weights, *written]:
        assert_loads_safely(path)
    assert 'optimizer_states' in torch.load(full, weights_only=True)
    # The exported model file is safetensors: it holds no pickle at all.
    exported = export_model(full, tmp_path / 'model.safetensors')
    assert is_model_file(exported)
    assert load_predictor(exported).reader_options == task.reader_options


def test_lightning_commands_load_checkpoints_with_weights_only() -> None:
    assert with_safe_loading(['test', '--ckpt_path', 'x']) == [
        'test',
        '--ckpt_path',
        'x',
        '--weights_only=true',
    ]
    for command in ('fit', 'validate', 'predict'):
        assert with_safe_loading([command])[-1] == '--weights_only=true'
    given = ['test', '--weights_only', 'false']
    assert with_safe_loading(given) == given
    assert with_safe_loading(['--help']) == ['--help']


@pytest.mark.slow
def test_cli_test_refuses_an_unsafe_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        '--config',
        str(CONFIG),
        *scene_data_args(),
        '--trainer.logger',
        'false',
        '--trainer.enable_progress_bar',
        'false',
        '--trainer.default_root_dir',
        str(tmp_path),
    ]
    status = main(
        [
            'fit',
            *common,
            '--trainer.max_epochs',
            '1',
            '--trainer.limit_train_batches',
            '1',
            '--trainer.limit_val_batches',
            '1',
        ]
    )
    assert status == 0
    checkpoints = sorted(tmp_path.rglob('*.ckpt'))
    assert checkpoints
    assert_loads_safely(checkpoints[0])
    args = ['test', *common, '--trainer.limit_test_batches', '1', '--ckpt_path']
    assert main([*args, str(checkpoints[0])]) == 0
    capsys.readouterr()
    unsafe = tmp_path / 'unsafe.ckpt'
    content = torch.load(checkpoints[0], weights_only=True)
    content['hyper_parameters']['extra'] = object()
    torch.save(content, unsafe)
    assert main([*args, str(unsafe)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith('torchgeo-stars: error: the checkpoint (--ckpt_path)')
    assert 'refused' in error[-1]
