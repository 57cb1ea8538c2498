"""Where the task checks label values: on the host, once per batch."""

import pytest
import torch
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.tasks.checks import check_labels

from .helpers import NUM_CLASSES, random_batch, tiny_task


def test_labels_are_checked_before_transfer_to_an_accelerator() -> None:
    # Bound for a device, the batch's labels are checked while still on the
    # host (reading them on the device would make every step wait for it).
    task = tiny_task()
    task._device = torch.device('cuda', 0)  # only the device type is read
    batch = random_batch()
    assert task.on_before_batch_transfer(batch, 0) is batch
    batch['mask'][0, 0, 0] = NUM_CLASSES
    with pytest.raises(ConfigurationError, match='num_classes'):
        task.on_before_batch_transfer(batch, 0)


def test_labels_on_the_host_are_checked_once_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On the CPU the hook leaves the check to the step: one check per batch.
    calls: list[int] = []

    def counting(mask: Tensor, num_classes: int, ignore_index: int | None) -> None:
        calls.append(1)
        check_labels(mask, num_classes, ignore_index)

    monkeypatch.setattr('torchgeo_stars.tasks.segmentation.check_labels', counting)
    task = tiny_task()
    batch = task.on_before_batch_transfer(random_batch(), 0)
    assert calls == []
    task.training_step(batch, 0)
    assert calls == [1]
