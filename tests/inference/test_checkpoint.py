"""predict-geotiff from a real STARSSegmentationTask checkpoint."""

from pathlib import Path
from typing import Any

import lightning
import numpy as np
import rasterio
from torch.utils.data import DataLoader

from torchgeo_stars.inference import load_predictor
from torchgeo_stars.main import main

from ..tasks.helpers import SCENE, random_batch, tiny_task
from .helpers import predict_args


def train_checkpoint(tmp_path: Path) -> Path:
    task = tiny_task(class_names=[f'class{k}' for k in range(6)])
    trainer = lightning.Trainer(
        max_steps=1,
        accelerator='cpu',
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    loader: DataLoader[Any] = DataLoader([random_batch()], batch_size=None)  # type: ignore[arg-type]
    trainer.fit(task, train_dataloaders=loader)
    task.data_statistics = {
        'optical': {'mean': [500.0] * 4, 'std': [300.0] * 4},
        'sar': {'mean': [-12.0, -19.0], 'std': [3.0, 3.0]},
        'dsm': {'mean': [200.0], 'std': [5.0]},
    }
    task.reader_options = {'sar': {'to_db': True}}
    path = tmp_path / 'stars.ckpt'
    trainer.save_checkpoint(path)
    return path


def test_load_predictor_restores_everything(tmp_path: Path) -> None:
    predictor = load_predictor(train_checkpoint(tmp_path))
    assert predictor.modalities == {'optical': 4, 'sar': 2, 'dsm': 1}
    assert predictor.class_names == [f'class{k}' for k in range(6)]
    assert predictor.statistics is not None
    assert list(predictor.statistics['sar'].mean) == [-12.0, -19.0]
    assert predictor.reader_options == {'sar': {'to_db': True}}
    assert not predictor.model.training


def test_cli_predicts_from_sar_and_dsm_on_the_sar_grid(tmp_path: Path) -> None:
    checkpoint = train_checkpoint(tmp_path)
    output = tmp_path / 'map.tif'
    sources = ('--sar', str(SCENE / 'sar'), '--dsm', str(SCENE / 'dsm'))
    status = main(['predict-geotiff', *predict_args(checkpoint, output, *sources)])
    assert status == 0
    sar_file = next((SCENE / 'sar').glob('*.tif'))
    with rasterio.open(sar_file) as reference, rasterio.open(output) as result:
        assert result.crs == reference.crs
        assert result.transform.almost_equals(reference.transform)
        assert (result.width, result.height) == (reference.width, reference.height)
        classes = result.read(1)
        assert result.tags()['STARS_CLASS_NAMES'].count('class') == 6
    labelled = classes[classes != 255]
    assert labelled.size > 0
    assert np.all(labelled < 6)
