#!/usr/bin/env python3
"""Make the checkpoint and logits that pin the models' behaviour across refactors.

Written by the package as it was before the models and the task were
reorganised (issue 17), and kept: the tests in
``tests/tasks/test_saved_checkpoint.py`` check that today's code loads this
checkpoint and predicts what that version predicted, and that fixed-seed
models give the logits and state-dict keys that version gave.

* ``stars.ckpt``: a Lightning checkpoint (weights only) of a tiny
  :class:`~torchgeo_stars.STARSSegmentationTask` (two modalities, timm's
  ``test_efficientnet`` encoder, projection shared encoder) after two
  training steps on random batches, with normalisation statistics.
* ``expected.pt``: a fixed input batch; the logits of the checkpoint's model
  on it (every missing-modality scenario); and the logits of fixed-seed tiny
  models (STARS with each shared encoder, ShaSpec, EarlyFusion) on a batch
  of three modalities, some missing per sample.
* ``state_dict_keys.json``: the state-dict keys of those fixed-seed models.

Run ``python data.py`` in this folder to regenerate them; only do so on
purpose, since the point is that they come from an earlier version.
"""

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datasets.keys import AVAILABLE, MASK, image_key
from torchgeo_stars.models import build_model

HERE = Path(__file__).resolve().parent
BACKBONE = 'tu-test_efficientnet'
NUM_CLASSES = 4
#: Modalities of the checkpoint's task.
CHECKPOINT_MODALITIES = {'optical': 3, 'sar': 2}
#: Modalities of the fixed-seed models.
MODALITIES = {'optical': 4, 'sar': 2, 'dsm': 1}
SIZE = 24
TINY: dict[str, Any] = {
    'decoder_channels': 8,
    'decoder_segmentation_channels': 32,
    'dropout': 0.0,
    'stem_channels': 4,
}
TINY_STARS: dict[str, Any] = {**TINY, 'translator_channels': 4, 'embedding_dim': 4}
#: Fixed-seed models: name to (model name, keyword arguments).
FRESH_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    'stars_light': ('stars', TINY_STARS),
    'stars_projection': ('stars', {**TINY_STARS, 'shared_encoder': 'projection'}),
    'stars_backbone': ('stars', {**TINY_STARS, 'shared_encoder': 'backbone'}),
    'stars_no_translation': ('stars', {**TINY_STARS, 'translation': False}),
    'shaspec': ('shaspec', TINY),
    'early_fusion': (
        'early_fusion',
        {k: v for k, v in TINY.items() if k != 'stem_channels'},
    ),
}


def make_batch(
    modalities: dict[str, int], batch_size: int, seed: int
) -> dict[str, Tensor]:
    """A random batch in the sample format, some modalities missing per row."""
    generator = torch.Generator().manual_seed(seed)
    batch = {
        image_key(name): torch.randn(batch_size, bands, SIZE, SIZE, generator=generator)
        for name, bands in modalities.items()
    }
    coarse = torch.randint(
        0, NUM_CLASSES, (batch_size, 1, SIZE // 8, SIZE // 8), generator=generator
    )
    batch[MASK] = torch.nn.functional.interpolate(coarse.float(), size=(SIZE, SIZE))[
        :, 0
    ].long()
    available = torch.ones(batch_size, len(modalities), dtype=torch.bool)
    available[1, 0] = False
    if batch_size > 2:
        available[2, -1] = False
    batch[AVAILABLE] = available
    return batch


def checkpoint_task() -> STARSSegmentationTask:
    """The tiny task the checkpoint holds, before training."""
    torch.manual_seed(0)
    return STARSSegmentationTask(
        modalities=dict(CHECKPOINT_MODALITIES),
        num_classes=NUM_CLASSES,
        backbone=BACKBONE,
        shared_encoder='projection',
        class_names=['water', 'field', 'forest', 'built'],
        n_per_class=8,
        plot_every_n_epochs=0,
        model_kwargs=dict(TINY_STARS),
    )


def scenario_logits(
    model: torch.nn.Module, batch: dict[str, Tensor], names: list[str]
) -> list[Tensor]:
    """Logits of every non-empty modality subset, through the plain forward."""
    inputs = {name: batch[image_key(name)] for name in names}
    results = []
    for code in range(1, 2 ** len(names)):
        keep = torch.tensor([bool(code >> i & 1) for i in range(len(names))])
        available = batch[AVAILABLE] & keep
        rows = available.any(dim=1)
        sub = {n: x[rows] for n, x in inputs.items()}
        # clone: the logits are a crop of the padded output; save only the crop.
        results.append(model(sub, available[rows]).logits.clone())
    return results


def main() -> None:
    """Write the checkpoint, the expected logits and the state-dict keys."""
    task = checkpoint_task()
    train = [
        {
            key: value[row]
            for key, value in make_batch(CHECKPOINT_MODALITIES, 4, seed).items()
        }
        for seed in range(2)
        for row in range(4)
    ]
    trainer = pl.Trainer(
        max_steps=2,
        accelerator='cpu',
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        deterministic=True,
        default_root_dir='/tmp/torchgeo-stars-checkpoint-data',
    )
    trainer.fit(task, DataLoader(train, batch_size=4))  # type: ignore[arg-type]
    task.data_statistics = {
        'optical': {'mean': [0.1, 0.2, 0.3], 'std': [1.0, 1.1, 1.2]},
        'sar': {'mean': [-0.5, 0.5], 'std': [2.0, 3.0]},
    }
    trainer.save_checkpoint(HERE / 'stars.ckpt', weights_only=True)

    task.eval()
    batch = make_batch(CHECKPOINT_MODALITIES, 3, seed=10)
    with torch.no_grad():
        checkpoint_logits = scenario_logits(
            task.model, batch, list(CHECKPOINT_MODALITIES)
        )
    fresh_batch = make_batch(MODALITIES, 3, seed=11)
    fresh: dict[str, Tensor] = {}
    keys: dict[str, list[str]] = {}
    for name, (model_name, kwargs) in FRESH_MODELS.items():
        torch.manual_seed(0)
        model = build_model(
            model_name,  # type: ignore[arg-type]
            modalities=dict(MODALITIES),
            num_classes=NUM_CLASSES,
            backbone=BACKBONE,
            **kwargs,
        ).eval()
        with torch.no_grad():
            fresh[name] = model(
                {n: fresh_batch[image_key(n)] for n in MODALITIES},
                fresh_batch[AVAILABLE],
            ).logits.clone()
        keys[name] = list(model.state_dict())
    torch.save(
        {
            'batch': batch,
            'checkpoint_logits': checkpoint_logits,
            'fresh_batch': fresh_batch,
            'fresh_logits': fresh,
        },
        HERE / 'expected.pt',
    )
    (HERE / 'state_dict_keys.json').write_text(json.dumps(keys, indent=1) + '\n')


if __name__ == '__main__':
    main()
