"""The task's optimiser and learning-rate schedules.

Two schedules: ``'plateau'`` reduces the learning rate when the monitored
validation metric stalls (TorchGeo's tasks do the same), ``'poly'`` decays it
per step as ``lr * (1 - step / total) ** power``, the schedule of the
segmentation benchmarks' published protocols (e.g. EarthMiss).
"""

from collections.abc import Iterable
from typing import Literal

from lightning.pytorch.utilities.types import (
    LRSchedulerConfigType,
    OptimizerLRSchedulerConfig,
)
from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from ..errors import ConfigurationError

#: Names of the learning-rate schedules.
Schedule = Literal['plateau', 'poly']


def check_optimization_arguments(
    lr: float, weight_decay: float, lr_schedule: str, poly_power: float
) -> None:
    """Check the optimiser's arguments.

    Args:
        lr: Learning rate.
        weight_decay: AdamW's decoupled weight decay.
        lr_schedule: ``'plateau'`` or ``'poly'``.
        poly_power: Exponent of the poly schedule.

    Raises:
        ConfigurationError: If a value is out of range or the schedule unknown.
    """
    if not lr > 0:
        raise ConfigurationError(f'lr is {lr}; give a learning rate > 0.')
    if weight_decay < 0:
        raise ConfigurationError(f'weight_decay is {weight_decay}; give a value >= 0.')
    if lr_schedule not in ('plateau', 'poly'):
        raise ConfigurationError(
            f"lr_schedule is {lr_schedule!r}; give 'plateau' or 'poly'."
        )
    if not poly_power > 0:
        raise ConfigurationError(f'poly_power is {poly_power}; give a value > 0.')


def build_optimizer(
    parameters: Iterable[nn.Parameter], lr: float, weight_decay: float
) -> AdamW:
    """AdamW over the parameters, fused where the kernel exists.

    Args:
        parameters: Parameters to optimise.
        lr: Learning rate.
        weight_decay: Decoupled weight decay.

    Returns:
        The optimiser.
    """
    params = list(parameters)
    # The fused kernel (one pass over all tensors) exists for CPU and CUDA.
    fused = all(p.device.type in ('cpu', 'cuda') for p in params)
    return AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)


def poly_factor(step: int, total_steps: int, power: float) -> float:
    """Multiplier of the learning rate at a step of the poly schedule.

    Args:
        step: Optimiser steps taken so far.
        total_steps: Steps of the whole run.
        power: Exponent.

    Returns:
        ``(1 - step / total_steps) ** power``, 0 from the last step on.
    """
    remaining = max(0.0, 1.0 - step / max(1, total_steps))
    return float(remaining**power)


def build_scheduler(
    optimizer: Optimizer,
    schedule: Schedule,
    *,
    monitor: str,
    patience: int,
    total_steps: int,
    poly_power: float,
) -> LRSchedulerConfigType:
    """Lightning's ``lr_scheduler`` configuration for a schedule.

    Args:
        optimizer: The optimiser.
        schedule: ``'plateau'`` (per epoch, on *monitor*) or ``'poly'`` (per
            step, over *total_steps*).
        monitor: Metric the plateau schedule watches.
        patience: Epochs without improvement before the plateau schedule
            reduces the learning rate.
        total_steps: Steps of the run (the trainer's
            ``estimated_stepping_batches``), used by the poly schedule.
        poly_power: Exponent of the poly schedule.

    Returns:
        The scheduler configuration.
    """
    if schedule == 'poly':
        poly = LambdaLR(
            optimizer, lambda step: poly_factor(step, total_steps, poly_power)
        )
        return {'scheduler': poly, 'interval': 'step'}
    plateau = ReduceLROnPlateau(optimizer, mode='max', patience=patience)
    return {'scheduler': plateau, 'monitor': monitor, 'strict': False}


def configure_optimization(
    parameters: Iterable[nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    schedule: Schedule,
    monitor: str,
    patience: int,
    total_steps: int,
    poly_power: float,
) -> OptimizerLRSchedulerConfig:
    """The optimiser and schedule a LightningModule's configure_optimizers returns.

    Args:
        parameters: Parameters to optimise.
        lr: Learning rate.
        weight_decay: Decoupled weight decay.
        schedule: ``'plateau'`` or ``'poly'`` (see :func:`build_scheduler`).
        monitor: Metric the plateau schedule watches.
        patience: Patience of the plateau schedule, in epochs.
        total_steps: Steps of the run, for the poly schedule.
        poly_power: Exponent of the poly schedule.

    Returns:
        Lightning's optimiser and scheduler configuration.
    """
    optimizer = build_optimizer(parameters, lr, weight_decay)
    scheduler = build_scheduler(
        optimizer,
        schedule,
        monitor=monitor,
        patience=patience,
        total_steps=total_steps,
        poly_power=poly_power,
    )
    return {'optimizer': optimizer, 'lr_scheduler': scheduler}
