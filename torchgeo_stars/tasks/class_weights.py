"""Cross-entropy class weights counted from the training labels at fit start.

``STARSSegmentationTask(class_weights='median_frequency')`` (or
``'median_frequency_sqrt'``) asks the task for
:func:`~torchgeo_stars.losses.median_frequency_weights` of the training
labels (power 1, or 0.5) without the user counting them. The task builds its
:class:`~torchgeo_stars.losses.SegmentationLoss` with *pending* weights (ones,
flagged as not counted, see :func:`pending_class_weights`: a task used
outside a fit, e.g. a single ``training_step``, weighs every class alike);
when training starts,
:func:`install_counted_weights` counts the labelled pixels of the first
``class_weight_batches`` batches of the training dataloader (summed over
processes; read in the main process, see :func:`count_labels`), computes
the weights and writes them into the loss. The weights
are a buffer of the state dict, so a checkpoint keeps them: a resumed or
loaded model trains with the same numbers and does not count again.

.. versionadded:: 0.1
"""

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from lightning.pytorch import Trainer
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from ..errors import ConfigurationError
from ..losses import SegmentationLoss, median_frequency_weights
from .checks import batch_labels, check_labels

#: ``class_weights`` names to the power of
#: :func:`~torchgeo_stars.losses.median_frequency_weights`.
MEDIAN_FREQUENCY_POWERS: dict[str, float] = {
    'median_frequency': 1.0,
    'median_frequency_sqrt': 0.5,
}

logger = logging.getLogger(__name__)


def check_class_weights(
    class_weights: list[float] | str | None, num_classes: int, batches: int
) -> None:
    """Check the task's ``class_weights`` and ``class_weight_batches``.

    Args:
        class_weights: A weight per class, a name of
            :data:`MEDIAN_FREQUENCY_POWERS`, or None.
        num_classes: Number of classes.
        batches: Training batches counted for a name.

    Raises:
        ConfigurationError: If the name is unknown, the list does not have
            one weight per class, or *batches* is not positive.
    """
    if isinstance(class_weights, str):
        if class_weights not in MEDIAN_FREQUENCY_POWERS:
            names = ', '.join(repr(name) for name in MEDIAN_FREQUENCY_POWERS)
            raise ConfigurationError(
                f'class_weights {class_weights!r} is not known; give a list of one '
                f'weight per class, {names} or null.'
            )
    elif class_weights is not None and len(class_weights) != num_classes:
        raise ConfigurationError(
            f'class_weights has {len(class_weights)} values but num_classes is '
            f'{num_classes}; give one weight per class.'
        )
    if batches < 1:
        raise ConfigurationError(f'class_weight_batches must be >= 1, got {batches}.')


def pending_class_weights(loss: SegmentationLoss, num_classes: int) -> None:
    """Give *loss* class weights of one, saved in the state dict, to be counted.

    :class:`~torchgeo_stars.losses.SegmentationLoss` keeps weights given as
    numbers out of the state dict (they are hyper-parameters); weights
    counted from data are not, so here they are a persistent buffer, with a
    persistent ``weights_counted`` flag beside them (False until counted; a
    loaded checkpoint brings its own).

    Args:
        loss: The task's segmentation loss, built without class weights.
        num_classes: Number of classes.
    """
    loss.register_buffer('weight', torch.ones(num_classes), persistent=True)
    loss.register_buffer('weights_counted', torch.tensor(False), persistent=True)


def _loaders(dataloaders: Any) -> Iterator[Iterable[Any]]:
    """The training dataloaders to read (see :func:`count_labels`).

    Lightning allows one dataloader, a list or a dict.
    """
    if isinstance(dataloaders, Mapping):
        loaders = list(dataloaders.values())
    elif isinstance(dataloaders, list | tuple):
        loaders = list(dataloaders)
    else:
        loaders = [dataloaders]
    for loader in loaders:
        if not isinstance(loader, DataLoader):
            yield loader
        elif isinstance(loader.dataset, IterableDataset):
            yield DataLoader(
                loader.dataset,
                batch_size=loader.batch_size,
                drop_last=loader.drop_last,
                collate_fn=loader.collate_fn,
            )
        elif loader.batch_sampler is not None:
            yield DataLoader(
                loader.dataset,
                batch_sampler=loader.batch_sampler,
                collate_fn=loader.collate_fn,
            )
        else:  # no automatic batching: the dataset yields batches
            yield DataLoader(
                loader.dataset,
                batch_size=None,
                sampler=loader.sampler,
                collate_fn=loader.collate_fn,
            )


def count_labels(
    dataloaders: Any, num_classes: int, ignore_index: int | None, max_batches: int
) -> Tensor:
    """Labelled pixels per class in the first batches of the training data.

    A :class:`~torch.utils.data.DataLoader` is read through a worker-less copy
    (same dataset, sampler or batch sampler, and collation): when training
    starts Lightning already holds the loader's iterator, which with
    ``persistent_workers`` is the one object the loader hands out, so reading
    the loader itself would consume the training epoch.

    Args:
        dataloaders: Training dataloader(s) yielding batches with a ``mask``.
        num_classes: Number of classes.
        ignore_index: Label that is not counted.
        max_batches: Batches read from each dataloader at most.

    Returns:
        ``(num_classes,)`` int64 counts.

    Raises:
        ConfigurationError: If a batch has no mask or labels out of range.
    """
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for loader in _loaders(dataloaders):
        for index, batch in enumerate(loader):
            if index >= max_batches:
                break
            labels = batch_labels(batch)
            check_labels(labels, num_classes, ignore_index)
            labels = labels.flatten().cpu()
            if ignore_index is not None:
                labels = labels[labels != ignore_index]
            counts += torch.bincount(labels, minlength=num_classes)
    return counts


def install_counted_weights(
    loss: SegmentationLoss, hparams: Mapping[str, Any], trainer: Trainer
) -> None:
    """Count the training labels and write the weights into *loss*, once.

    Nothing happens unless ``class_weights`` is a name and the weights are
    still pending (not counted before nor loaded from a checkpoint).

    Args:
        loss: The task's segmentation loss.
        hparams: The task's hyper-parameters (``class_weights``,
            ``class_weight_batches``, ``num_classes``, ``ignore_index``).
        trainer: The fitting trainer (its training dataloaders and strategy).

    Raises:
        ConfigurationError: If the counted batches hold no labelled pixel.
    """
    name = hparams['class_weights']
    if not isinstance(name, str) or loss.weight is None:
        return
    if bool(getattr(loss, 'weights_counted', True)):  # counted, or loaded
        return
    batches = hparams['class_weight_batches']
    counts = count_labels(
        trainer.train_dataloader,
        hparams['num_classes'],
        hparams['ignore_index'],
        batches,
    )
    counts = trainer.strategy.reduce(
        counts.to(loss.weight.device), reduce_op='sum'
    ).cpu()
    if int(counts.sum()) == 0:
        raise ConfigurationError(
            f'class_weights={name!r}: the first {batches} training batches hold no '
            'labelled pixel; check the mask and ignore_index, or give a list.'
        )
    weights = median_frequency_weights(counts.tolist(), MEDIAN_FREQUENCY_POWERS[name])
    loss.weight.copy_(torch.tensor(weights))
    loss.get_buffer('weights_counted').fill_(True)
    if not trainer.is_global_zero:
        return
    logger.info(
        'class_weights=%r from %d labelled pixels (at most %d training batches): %s',
        name,
        int(counts.sum()),
        batches,
        ', '.join(f'{weight:.3g}' for weight in weights),
    )
