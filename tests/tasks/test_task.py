import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.tasks import modality_scenarios, scenario_name

from .helpers import MODALITIES, NUM_CLASSES, random_batch, tiny_task, trainer


def one_batch_loader(batch: dict[str, Tensor]) -> DataLoader[Any]:
    """A DataLoader that yields exactly *batch*."""
    return DataLoader([batch], batch_size=None)  # type: ignore[arg-type]


def numpy_scores(
    truth: np.ndarray, predicted: np.ndarray
) -> tuple[float, float, float]:
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (truth.ravel(), predicted.ravel()), 1)
    tp = np.diag(matrix).astype(float)
    fn = matrix.sum(axis=1) - tp
    fp = matrix.sum(axis=0) - tp
    occurs = tp + fp + fn > 0
    iou = tp[occurs] / (tp + fp + fn)[occurs]
    f1 = 2 * tp[occurs] / (2 * tp + fp + fn)[occurs]
    return float(tp.sum() / matrix.sum()), float(iou.mean()), float(f1.mean())


def test_training_logs_every_loss_term() -> None:
    task = tiny_task()
    batch = random_batch()
    trainer(max_steps=2).fit(task, train_dataloaders=one_batch_loader(batch))
    metrics = trainer_metrics = task.trainer.callback_metrics
    for key in ('train_loss', 'train_loss_seg', 'train_loss_tr', 'train_loss_psa'):
        assert key in trainer_metrics, key
        assert math.isfinite(float(metrics[key]))
    total = (
        metrics['train_loss_seg']
        + metrics['train_loss_tr']
        + 0.1 * metrics['train_loss_psa']
    )
    assert float(metrics['train_loss']) == pytest.approx(float(total), rel=1e-5)


def test_ablation_switches_remove_loss_terms() -> None:
    task = tiny_task(lambda_psa=0.0, translation=False)
    trainer(max_steps=1).fit(task, train_dataloaders=one_batch_loader(random_batch()))
    metrics = task.trainer.callback_metrics
    assert 'train_loss_psa' not in metrics
    assert 'train_loss_tr' not in metrics
    assert float(metrics['train_loss']) == pytest.approx(
        float(metrics['train_loss_seg'])
    )


@pytest.mark.parametrize('model', ['early_fusion', 'shaspec'])
def test_baselines_train_and_evaluate_in_the_same_harness(model: str) -> None:
    task = tiny_task(model=model, p_drop=0.5)
    batch = random_batch()
    fit = trainer(max_steps=1, limit_val_batches=1)
    fit.fit(task, one_batch_loader(batch), one_batch_loader(batch))
    metrics = fit.callback_metrics
    assert 'train_loss_tr' not in metrics
    assert 'val_mIoU' in metrics
    for subset in modality_scenarios(list(MODALITIES)):
        assert f'val/{scenario_name(subset)}/mIoU' in metrics


def test_logged_scores_match_numpy_confusion_matrix() -> None:
    task = tiny_task()
    available = torch.tensor(
        [
            [True, True, True],
            [True, False, True],
            [False, True, True],
            [True, True, False],
        ]
    )
    batch = random_batch(batch_size=4, size=20, available=available)
    validate = trainer()
    validate.validate(task, one_batch_loader(batch), verbose=False)
    logged = validate.callback_metrics
    task.eval()
    names = list(MODALITIES)
    mious = []
    with torch.no_grad():
        for subset in modality_scenarios(names):
            keep = available & torch.tensor([name in subset for name in names])
            rows = keep.any(dim=1)
            inputs = {m: batch[f'image_{m}'][rows] for m in subset}
            predicted = task.model(inputs, keep[rows]).logits.argmax(dim=1)
            accuracy, miou, mf1 = numpy_scores(
                batch['mask'][rows].numpy(), predicted.numpy()
            )
            name = scenario_name(subset)
            assert float(logged[f'val/{name}/OA']) == pytest.approx(accuracy, abs=1e-6)
            assert float(logged[f'val/{name}/mIoU']) == pytest.approx(miou, abs=1e-6)
            assert float(logged[f'val/{name}/mF1']) == pytest.approx(mf1, abs=1e-6)
            mious.append(miou)
    assert float(logged['val_mIoU']) == pytest.approx(float(np.mean(mious)), abs=1e-6)
    assert float(logged['val_mIoU_full']) == pytest.approx(mious[0], abs=1e-6)
    # Every scenario had samples; the references above use only the rows that
    # have a scenario modality (a row with none would make the model raise).
    assert task.scenario_scores['val'].keys() == {
        scenario_name(s) for s in modality_scenarios(names)
    }


def test_metrics_are_reset_between_epochs() -> None:
    task = tiny_task()
    first = random_batch(seed=1)
    check = trainer()
    check.validate(task, one_batch_loader(first), verbose=False)
    once = {k: float(v) for k, v in check.callback_metrics.items()}
    check.validate(task, one_batch_loader(first), verbose=False)
    twice = {k: float(v) for k, v in check.callback_metrics.items()}
    assert once.keys() == twice.keys()
    for key in once:
        if not math.isnan(once[key]):
            assert once[key] == pytest.approx(twice[key], abs=1e-9), key


@pytest.mark.parametrize(
    'present', [('optical', 'sar', 'dsm'), ('sar', 'dsm'), ('optical',), ('dsm',)]
)
def test_predict_step_any_subset(present: tuple[str, ...]) -> None:
    task = tiny_task().eval()
    batch = random_batch(batch_size=2, size=21)
    for name in MODALITIES:
        if name not in present:
            del batch[f'image_{name}']
    del batch['mask']
    with torch.no_grad():
        result = task.predict_step(batch, 0)
    probabilities = result['probabilities']
    assert probabilities.shape == (2, NUM_CLASSES, 21, 21)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2, 21, 21), atol=1e-5)
    assert torch.equal(result['bounds'], batch['bounds'])
    assert torch.equal(result['transform'], batch['transform'])


def test_band_count_mismatch_names_the_modality() -> None:
    task = tiny_task()
    batch = random_batch()
    batch['image_sar'] = batch['image_sar'][:, :1]
    with pytest.raises(ConfigurationError, match=r"modality 'sar'.*2 band"):
        task.training_step(batch, 0)


def test_labels_above_num_classes_are_refused() -> None:
    task = tiny_task()
    batch = random_batch()
    batch['mask'][0, 0, 0] = NUM_CLASSES + 3
    with pytest.raises(ConfigurationError, match='num_classes'):
        task.training_step(batch, 0)


def test_ignore_index_labels_are_allowed() -> None:
    task = tiny_task(ignore_index=255)
    batch = random_batch()
    batch['mask'][:, :4] = 255
    loss = task.training_step(batch, 0)
    assert torch.isfinite(loss)


def test_data_without_configured_modalities_is_refused() -> None:
    task = tiny_task()
    batch = {
        'image_hyper': torch.zeros(2, 3, 8, 8),
        'mask': torch.zeros(2, 8, 8).long(),
    }
    with pytest.raises(ConfigurationError, match='none of the configured modalities'):
        task.training_step(batch, 0)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'class_names': ['a', 'b']}, 'class_names'),
        ({'p_drop': 1.0}, 'p_drop'),
        ({'num_classes': 1}, 'num_classes'),
        ({'modalities': {}}, 'modalities'),
        ({'model': 'unet3000'}, 'unet3000'),
    ],
)
def test_inconsistent_arguments_are_refused(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        tiny_task(**kwargs)


def test_checkpoint_alone_rebuilds_the_model(tmp_path: Path) -> None:
    task = tiny_task(class_names=[f'c{k}' for k in range(NUM_CLASSES)])
    fit = trainer(max_steps=1, default_root_dir=tmp_path)
    fit.fit(task, train_dataloaders=one_batch_loader(random_batch()))
    task.data_statistics = {'optical': {'mean': [1.0] * 4, 'std': [2.0] * 4}}
    path = tmp_path / 'model.ckpt'
    fit.save_checkpoint(path)
    restored = STARSSegmentationTask.load_from_checkpoint(path, map_location='cpu')
    assert restored.class_names == task.class_names
    assert restored.data_statistics == task.data_statistics
    batch = random_batch(batch_size=2, size=19, seed=3)
    task.eval()
    restored.eval()
    with torch.no_grad():
        expected = task.predict_step(batch, 0)['probabilities']
        actual = restored.predict_step(batch, 0)['probabilities']
    assert torch.allclose(expected, actual, atol=1e-6)


def test_validation_logs_a_scenario_figure_to_tensorboard(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    task = tiny_task(plot_every_n_epochs=1)
    logger = TensorBoardLogger(tmp_path, name='run')
    validate = trainer(logger=logger)
    validate.validate(task, one_batch_loader(random_batch()), verbose=False)
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert 'val/scenarios' in events.Tags()['images']
    image = events.Images('val/scenarios')[0]
    # One panel per modality, the label and the seven scenarios: a wide figure.
    assert image.width > 3 * image.height


def test_minority_options_reach_the_psa_loss() -> None:
    task = tiny_task(psa_positions='full', psa_memory=4)
    assert task.psa_loss.positions == 'full'
    assert task.psa_loss.memory_size == 4
    trainer(max_steps=2).fit(task, train_dataloaders=one_batch_loader(random_batch()))
    assert math.isfinite(float(task.trainer.callback_metrics['train_loss_psa']))
    count = task.psa_loss.memory_count
    assert count is not None
    assert int(count.max()) == 4  # filled in training
