"""Checks of the task's arguments, of its batches and of its datamodule.

Every check raises :class:`~torchgeo_stars.errors.ConfigurationError` with one
line naming the argument or the data and what to change.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..datasets.keys import AVAILABLE, MASK, check_modalities, image_key
from ..errors import ConfigurationError


def check_task_arguments(
    modalities: Mapping[str, int],
    num_classes: int,
    class_names: Sequence[str] | None,
    class_colors: Sequence[Any] | None,
    p_drop: float,
) -> None:
    """Check the task's arguments against each other.

    Args:
        modalities: Modality name to band count.
        num_classes: Number of classes.
        class_names: Optional name per class.
        class_colors: Optional colour per class (``class_weights`` is checked
            by :func:`~torchgeo_stars.tasks.class_weights.check_class_weights`).
        p_drop: Modality dropout probability.

    Raises:
        ConfigurationError: If the arguments are inconsistent.
    """
    check_modalities(modalities, 'modalities')
    if num_classes < 2:
        raise ConfigurationError(f'num_classes must be >= 2, got {num_classes}.')
    per_class = (
        ('class_names', class_names, 'names'),
        ('class_colors', class_colors, 'colours'),
    )
    for argument, values, what in per_class:
        if values is not None and len(values) != num_classes:
            raise ConfigurationError(
                f'{argument} has {len(values)} {what} but num_classes is {num_classes}.'
            )
    if not 0 <= p_drop < 1:
        raise ConfigurationError(f'p_drop must be in [0, 1), got {p_drop}.')


def batch_inputs(
    batch: Mapping[str, Any], modalities: Mapping[str, int]
) -> tuple[dict[str, Tensor], Tensor]:
    """Check a batch against the configured modalities and split out the inputs.

    Args:
        batch: A collated sample dictionary.
        modalities: Modality name to band count, in the model's order.

    Returns:
        Modality inputs and their ``(B, M)`` availability (False for a
        modality absent from the batch).

    Raises:
        ConfigurationError: If a modality's band count differs from the
            configuration, no configured modality is in the batch, or the
            availability flags do not have one column per modality.
    """
    names = list(modalities)
    inputs: dict[str, Tensor] = {}
    for name, bands in modalities.items():
        key = image_key(name)
        if key not in batch:
            continue
        image = batch[key]
        if image.ndim != 4 or image.shape[1] != bands:
            raise ConfigurationError(
                f"modality '{name}': the model expects {bands} band(s) but the "
                f'data gives {tuple(image.shape[1:-2])} (tensor shape '
                f'{tuple(image.shape)}); set modalities.{name} to the number of '
                'bands of the data.'
            )
        inputs[name] = image
    if not inputs:
        # 'image' also lists a TorchGeo-style single 'image' key.
        present = sorted(key for key in batch if key.startswith('image'))
        raise ConfigurationError(
            f'none of the configured modalities {names} is in the data (its image '
            f'keys are {present}); make the modalities of the model and the data '
            'agree.'
        )
    reference = next(iter(inputs.values()))
    batch_size = reference.shape[0]
    if AVAILABLE in batch:
        available = batch[AVAILABLE].to(torch.bool)
        if available.shape != (batch_size, len(names)):
            raise ConfigurationError(
                f"the data's 'available' flags have shape "
                f'{tuple(available.shape)} but the model has {len(names)} '
                f'modalities {names}; make the modalities of the model and the '
                'data agree.'
            )
    else:
        available = torch.ones(
            batch_size, len(names), dtype=torch.bool, device=reference.device
        )
    in_batch = torch.tensor([name in inputs for name in names]).to(
        available.device, non_blocking=True
    )
    return inputs, available & in_batch


def batch_labels(batch: Mapping[str, Any]) -> Tensor:
    """The batch's labels as ``(B, H, W)`` int64, without checking their values.

    Args:
        batch: A collated sample dictionary.

    Returns:
        The labels.

    Raises:
        ConfigurationError: If the batch has no mask.
    """
    if MASK not in batch:
        raise ConfigurationError(
            "the data has no 'mask': training and evaluation need labels; "
            'give the datamodule a mask path.'
        )
    mask: Tensor = batch[MASK].long()
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    return mask


def check_labels(mask: Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Check that every label is a class or *ignore_index*.

    This reads the labels' values, so on an accelerator it waits for the
    device: the task calls it while the batch is still on the host.

    Args:
        mask: Integer labels.
        num_classes: Number of classes.
        ignore_index: Label value that is not a class, or None.

    Raises:
        ConfigurationError: If a label is out of range.
    """
    labels = mask if ignore_index is None else mask[mask != ignore_index]
    if labels.numel() and (labels.max() >= num_classes or labels.min() < 0):
        raise ConfigurationError(
            f'the labels hold values from {int(labels.min())} to '
            f'{int(labels.max())} but num_classes is {num_classes}; raise '
            'num_classes or set ignore_index for the value that marks unlabelled '
            'pixels.'
        )


def check_datamodule_modalities(
    configured: Mapping[str, int], datamodule: object
) -> None:
    """Check the model's modalities against those a datamodule declares.

    Args:
        configured: The model's modality name to band count.
        datamodule: The trainer's datamodule, or None; nothing is checked
            unless it declares its ``modalities`` as a dictionary.

    Raises:
        ConfigurationError: If the datamodule declares other modalities,
            another order or other band counts.
    """
    try:
        declared = getattr(datamodule, 'modalities', None)
    except RuntimeError:  # not set up
        declared = None
    if not isinstance(declared, dict):
        return
    for name in configured:
        if name not in declared:
            raise ConfigurationError(
                f"modality '{name}' of the model is not in the data, which has "
                f'{list(declared)}; remove it from model modalities or give the '
                'datamodule a path for it.'
            )
    for name, bands in declared.items():
        if name not in configured:
            raise ConfigurationError(
                f"the data has modality '{name}' that the model lacks "
                f'(model modalities {list(configured)}); add {name}: {bands} to '
                'the model modalities.'
            )
        if configured[name] != bands:
            raise ConfigurationError(
                f"modality '{name}': the model expects {configured[name]} band(s) "
                f'but the data has {bands}; set modalities.{name} to {bands}.'
            )
    if list(declared) != list(configured):
        raise ConfigurationError(
            f'the model lists its modalities as {list(configured)} but the data '
            f'as {list(declared)}; list them in the same order.'
        )
