from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau
from torch.utils.data import DataLoader

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.tasks.optimization import (
    build_scheduler,
    check_optimization_arguments,
    configure_optimization,
    poly_factor,
)

from .helpers import random_batch, tiny_task


def test_poly_factor_decays_to_zero() -> None:
    assert poly_factor(0, 100, 0.9) == 1.0
    assert poly_factor(50, 100, 1.0) == pytest.approx(0.5)
    assert poly_factor(50, 100, 0.9) == pytest.approx(0.5**0.9)
    assert poly_factor(100, 100, 0.9) == 0.0
    assert poly_factor(150, 100, 0.9) == 0.0


def test_poly_schedule_steps_the_learning_rate() -> None:
    layer = nn.Linear(2, 2)
    config = configure_optimization(
        layer.parameters(),
        lr=1e-2,
        weight_decay=0.05,
        schedule='poly',
        monitor='val_mIoU',
        patience=3,
        total_steps=4,
        poly_power=1.0,
    )
    optimizer = config['optimizer']
    assert optimizer.param_groups[0]['weight_decay'] == 0.05
    scheduler_config: Any = config['lr_scheduler']
    assert scheduler_config['interval'] == 'step'
    scheduler = scheduler_config['scheduler']
    assert isinstance(scheduler, LambdaLR)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1e-2, 7.5e-3, 5e-3, 2.5e-3])
    assert optimizer.param_groups[0]['lr'] == 0.0


def test_plateau_schedule_watches_the_monitor() -> None:
    layer = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    config: Any = build_scheduler(
        optimizer,
        'plateau',
        monitor='val_mIoU',
        patience=0,
        total_steps=0,
        poly_power=0.9,
    )
    assert isinstance(config['scheduler'], ReduceLROnPlateau)
    assert config['monitor'] == 'val_mIoU'
    config['scheduler'].step(0.5)
    config['scheduler'].step(0.4)  # worse (mode 'max') -> reduced
    assert optimizer.param_groups[0]['lr'] < 1.0


@pytest.mark.parametrize(
    ('lr', 'weight_decay', 'schedule', 'power', 'name'),
    [
        (0.0, 0.0, 'plateau', 0.9, 'lr'),
        (1e-3, -1.0, 'plateau', 0.9, 'weight_decay'),
        (1e-3, 0.0, 'cosine', 0.9, 'lr_schedule'),
        (1e-3, 0.0, 'poly', 0.0, 'poly_power'),
    ],
)
def test_bad_arguments_name_the_parameter(
    lr: float, weight_decay: float, schedule: str, power: float, name: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        check_optimization_arguments(lr, weight_decay, schedule, power)
    with pytest.raises(ConfigurationError, match=name):
        tiny_task(
            lr=lr, weight_decay=weight_decay, lr_schedule=schedule, poly_power=power
        )


def test_task_trains_with_the_poly_schedule_over_max_steps() -> None:
    task = tiny_task(lr=1e-2, weight_decay=0.05, lr_schedule='poly', poly_power=1.0)
    batches = [random_batch(batch_size=2, size=16, seed=i) for i in range(4)]
    loader: DataLoader[Any] = DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
    trainer = Trainer(
        max_steps=4,
        accelerator='cpu',
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(task, train_dataloaders=loader)
    optimizer = trainer.optimizers[0]
    assert optimizer.param_groups[0]['weight_decay'] == 0.05
    # 4 steps of a 4-step poly schedule with power 1 end at 0.
    assert optimizer.param_groups[0]['lr'] == pytest.approx(0.0)
