"""Class weights the task counts from the training labels (class_weights='...')."""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import median_frequency_weights
from torchgeo_stars.models import SegmentationOutput
from torchgeo_stars.tasks.checks import batch_inputs
from torchgeo_stars.tasks.class_weights import count_labels

from .helpers import MODALITIES, NUM_CLASSES, random_batch, tiny_task, trainer

IGNORE = 255


def skewed_batch(seed: int, rare: int) -> dict[str, Tensor]:
    """A random batch whose labels favour class 0 and leave class *rare* scarce."""
    batch = random_batch(batch_size=2, size=24, seed=seed)
    generator = np.random.default_rng(seed)
    probabilities = np.array([0.4, 0.2, 0.15, 0.12, 0.1, 0.03])
    probabilities[[rare, 5]] = probabilities[[5, rare]]
    labels = generator.choice(NUM_CLASSES, size=(2, 24, 24), p=probabilities)
    labels[:, :3, :] = IGNORE  # a band of ignored pixels
    batch['mask'] = torch.from_numpy(labels.astype(np.int64))
    return batch


def batches() -> list[dict[str, Tensor]]:
    """Three training batches; the third has another rare class."""
    return [skewed_batch(0, rare=5), skewed_batch(1, rare=5), skewed_batch(2, rare=1)]


def loader(items: list[dict[str, Tensor]], workers: int = 0) -> DataLoader[Any]:
    return DataLoader(
        items,  # type: ignore[arg-type]
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def numpy_counts(items: list[dict[str, Tensor]]) -> list[int]:
    labels = np.concatenate([item['mask'].numpy().ravel() for item in items])
    return np.bincount(labels[labels != IGNORE], minlength=NUM_CLASSES).tolist()


def counted_task(model: str = 'stars', **kwargs: Any) -> STARSSegmentationTask:
    options: dict[str, Any] = {
        'class_weights': 'median_frequency',
        'class_weight_batches': 2,
        'ignore_index': IGNORE,
        'p_drop': 0.0,
    }
    options.update(kwargs)
    return tiny_task(model=model, **options)


@pytest.mark.parametrize(
    ('model', 'name', 'power'),
    [
        ('stars', 'median_frequency', 1.0),
        ('early_fusion', 'median_frequency_sqrt', 0.5),
        ('shaspec', 'median_frequency_sqrt', 0.5),
    ],
)
def test_named_weights_are_median_frequency_of_the_counted_batches(
    model: str, name: str, power: float, caplog: pytest.LogCaptureFixture
) -> None:
    task = counted_task(model, class_weights=name)
    assert task.segmentation_loss.weight is not None
    # Not counted yet: every class weighs one
    assert not task.segmentation_loss.weights_counted
    assert torch.equal(task.segmentation_loss.weight, torch.ones(NUM_CLASSES))
    items = batches()
    with caplog.at_level(logging.INFO, logger='torchgeo_stars.tasks.class_weights'):
        trainer(max_steps=1).fit(task, train_dataloaders=loader(items))
    # class_weight_batches=2: the third batch (another rare class) is not read.
    expected = median_frequency_weights(numpy_counts(items[:2]), power)
    assert expected != pytest.approx(
        median_frequency_weights(numpy_counts(items), power)
    )
    actual = task.segmentation_loss.weight.tolist()
    assert actual == pytest.approx(expected, rel=1e-6)
    assert max(actual) > 1.5  # the rare class is weighted up
    lines = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(lines) == 1
    assert f'{expected[5]:.3g}' in lines[0]


def test_counted_weights_reach_the_training_loss() -> None:
    items = batches()[:1]
    batch = items[0]
    weighted = counted_task(class_weight_batches=1)
    plain = tiny_task(ignore_index=IGNORE, p_drop=0.0, class_weights=None)
    # The logits of the first training step (same initialisation: tiny_task
    # seeds it; no dropout, batch norm in training mode).
    inputs, available = batch_inputs(batch, MODALITIES)
    plain.train()
    with torch.no_grad():
        output: SegmentationOutput = plain.model(inputs, available)
    target = batch['mask']
    weights = torch.tensor(median_frequency_weights(numpy_counts(items)))
    expected = F.cross_entropy(
        output.logits, target, weight=weights, ignore_index=IGNORE
    )
    unweighted = F.cross_entropy(output.logits, target, ignore_index=IGNORE)
    assert abs(float(expected) - float(unweighted)) > 1e-3
    logged = {}
    for name, task in (('weighted', weighted), ('plain', plain)):
        fit = trainer(max_steps=1)
        fit.fit(task, train_dataloaders=loader(items))
        logged[name] = float(fit.callback_metrics['train_loss_seg'])
    assert logged['weighted'] == pytest.approx(float(expected), rel=1e-4)
    assert logged['plain'] == pytest.approx(float(unweighted), rel=1e-4)


def test_counting_leaves_a_persistent_worker_epoch_whole() -> None:
    # Lightning holds the loader's iterator when training starts; with
    # persistent workers reading the loader again would consume that epoch.
    task = counted_task(model='early_fusion')
    fit = trainer(max_epochs=1)
    fit.fit(task, train_dataloaders=loader(batches(), workers=1))
    assert fit.global_step == 3
    weight = task.segmentation_loss.weight
    assert weight is not None
    assert task.segmentation_loss.weights_counted
    assert not torch.equal(weight, torch.ones_like(weight))


def test_weights_are_saved_and_not_counted_again(tmp_path: Path) -> None:
    task = counted_task()
    fit = trainer(max_steps=1, default_root_dir=tmp_path)
    fit.fit(task, train_dataloaders=loader(batches()))
    path = tmp_path / 'model.ckpt'
    fit.save_checkpoint(path)
    counted = task.segmentation_loss.weight
    assert counted is not None
    # Loaded without any data: the same numbers.
    restored = STARSSegmentationTask.load_from_checkpoint(path, map_location='cpu')
    assert restored.segmentation_loss.weight is not None
    assert torch.equal(restored.segmentation_loss.weight, counted)
    # Trained further on data with other class counts: not counted again.
    other = [skewed_batch(7, rare=2), skewed_batch(8, rare=2)]
    trainer(max_steps=1).fit(restored, train_dataloaders=loader(other))
    assert torch.equal(restored.segmentation_loss.weight, counted)
    # Resumed from the checkpoint by a fresh task: the saved numbers.
    fresh = counted_task()
    resume = trainer(max_steps=2, default_root_dir=tmp_path)
    resume.fit(fresh, train_dataloaders=loader(other), ckpt_path=path)
    assert torch.equal(fresh.segmentation_loss.weight, counted)  # type: ignore[arg-type]


def test_listed_weights_stay_out_of_the_checkpoint() -> None:
    task = tiny_task(class_weights=[1.0, 2.0, 1.0, 1.0, 1.0, 3.0])
    assert task.segmentation_loss.weight is not None
    assert task.segmentation_loss.weight.tolist() == [1.0, 2.0, 1.0, 1.0, 1.0, 3.0]
    assert not any('segmentation_loss' in key for key in task.state_dict())


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'class_weights': 'inverse_frequency'}, "'inverse_frequency' is not known"),
        ({'class_weights': [1.0, 2.0]}, 'class_weights has 2 values'),
        ({'class_weights': 'median_frequency', 'class_weight_batches': 0}, '>= 1'),
    ],
)
def test_bad_class_weights_are_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        tiny_task(**kwargs)
    assert '\n' not in str(error.value)


def test_no_labelled_pixel_is_one_line() -> None:
    batch = skewed_batch(0, rare=5)
    batch['mask'][:] = IGNORE
    task = counted_task()
    with pytest.raises(ConfigurationError, match='no labelled pixel') as error:
        trainer(max_steps=1).fit(task, train_dataloaders=loader([batch]))
    assert '\n' not in str(error.value)


def test_count_labels_reads_at_most_the_given_batches() -> None:
    items = batches()
    counts = count_labels(loader(items), NUM_CLASSES, IGNORE, max_batches=2)
    assert counts.tolist() == numpy_counts(items[:2])
    both = count_labels([loader(items[:1]), loader(items[1:])], NUM_CLASSES, IGNORE, 5)
    assert both.tolist() == numpy_counts(items)
