"""Small tasks, batches and data paths shared by the task and CLI tests."""

from pathlib import Path
from typing import Any

import lightning
import torch
from torch import Tensor

from torchgeo_stars import STARSSegmentationTask

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / 'tests' / 'data' / 'synthetic' / 'scene'
CONFIG = ROOT / 'examples' / 'configs' / 'synthetic.yaml'
MODALITIES = {'optical': 4, 'sar': 2, 'dsm': 1}
NUM_CLASSES = 6
#: Small decoder, translators and embeddings: fast on a CPU.
TINY_MODEL: dict[str, Any] = {
    'decoder_channels': 16,
    'decoder_segmentation_channels': 32,
    'translator_channels': 8,
    'embedding_dim': 8,
    'dropout': 0.0,
}
TINY_MODEL_YAML = (
    '{decoder_channels: 16, decoder_segmentation_channels: 32, '
    'translator_channels: 8, embedding_dim: 8, dropout: 0.0}'
)


def tiny_task(model: str = 'stars', **kwargs: Any) -> STARSSegmentationTask:
    """A STARS task (or baseline) with a small decoder."""
    model_kwargs = dict(TINY_MODEL)
    if model != 'stars':
        model_kwargs.pop('translator_channels')
        model_kwargs.pop('embedding_dim')
    torch.manual_seed(0)
    options: dict[str, Any] = {
        'modalities': dict(MODALITIES),
        'num_classes': NUM_CLASSES,
        'model': model,
        'model_kwargs': model_kwargs,
        'n_per_class': 8,
        'plot_every_n_epochs': 0,
    }
    options.update(kwargs)
    return STARSSegmentationTask(**options)


def random_batch(
    batch_size: int = 4, size: int = 24, seed: int = 0, available: Tensor | None = None
) -> dict[str, Tensor]:
    """A batch shaped like the datamodule's, with random content."""
    generator = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {
        f'image_{name}': torch.randn(batch_size, bands, size, size, generator=generator)
        for name, bands in MODALITIES.items()
    }
    batch['mask'] = torch.randint(
        0, NUM_CLASSES, (batch_size, size, size), generator=generator
    )
    if available is None:
        available = torch.ones(batch_size, len(MODALITIES), dtype=torch.bool)
    batch['available'] = available
    batch['bounds'] = torch.arange(batch_size * 9, dtype=torch.float64).reshape(
        batch_size, 9
    )
    batch['transform'] = torch.ones(batch_size, 9, dtype=torch.float64)
    return batch


def scene_data_args(patch_size: int = 16, batch_size: int = 2) -> list[str]:
    """Command-line overrides pointing the synthetic config at the test scene."""
    return [
        '--data.init_args.paths',
        f'{{optical: {SCENE / "optical"}, sar: {SCENE / "sar"}, dsm: {SCENE / "dsm"}}}',
        '--data.init_args.mask',
        str(SCENE / 'mask'),
        '--data.init_args.patch_size',
        str(patch_size),
        '--data.init_args.batch_size',
        str(batch_size),
        '--model.init_args.model_kwargs',
        TINY_MODEL_YAML,
        '--model.init_args.n_per_class',
        '8',
    ]


def trainer(**kwargs: Any) -> lightning.Trainer:
    """A quiet CPU trainer (no logger, checkpoints or progress bar)."""
    options: dict[str, Any] = {
        'accelerator': 'cpu',
        'logger': False,
        'enable_progress_bar': False,
        'enable_checkpointing': False,
        'enable_model_summary': False,
    }
    options.update(kwargs)
    return lightning.Trainer(**options)
