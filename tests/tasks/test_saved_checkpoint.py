"""Checkpoints of an earlier version load and predict as that version did.

The files in ``tests/data/checkpoints`` were written by the package before
its models and task were reorganised (see the ``data.py`` there): a tiny
trained task's checkpoint, the logits it gave on a fixed batch, and the
logits and state-dict keys of fixed-seed tiny models.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datasets.keys import AVAILABLE, image_key
from torchgeo_stars.inference.checkpoint import (
    predictor_from_checkpoint,
    read_checkpoint,
)
from torchgeo_stars.models import build_model

DATA = Path(__file__).resolve().parents[1] / 'data' / 'checkpoints'
CHECKPOINT = DATA / 'stars.ckpt'
BACKBONE = 'tu-test_efficientnet'
NUM_CLASSES = 4
MODALITIES = {'optical': 4, 'sar': 2, 'dsm': 1}
TINY: dict[str, Any] = {
    'decoder_channels': 8,
    'decoder_segmentation_channels': 32,
    'dropout': 0.0,
    'stem_channels': 4,
}
TINY_STARS: dict[str, Any] = {**TINY, 'translator_channels': 4, 'embedding_dim': 4}
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


@pytest.fixture(scope='module')
def expected() -> dict[str, Any]:
    """The batches and logits recorded by the earlier version."""
    loaded: dict[str, Any] = torch.load(DATA / 'expected.pt', weights_only=True)
    return loaded


def scenario_logits(
    model: nn.Module, batch: dict[str, Tensor], names: list[str]
) -> list[Tensor]:
    """Logits of every non-empty modality subset (the order data.py used)."""
    inputs = {name: batch[image_key(name)] for name in names}
    results = []
    for code in range(1, 2 ** len(names)):
        keep = torch.tensor([bool(code >> i & 1) for i in range(len(names))])
        available = batch[AVAILABLE] & keep
        rows = available.any(dim=1)
        sub = {n: x[rows] for n, x in inputs.items()}
        results.append(model(sub, available[rows]).logits)
    return results


def assert_same_logits(actual: list[Tensor], recorded: list[Tensor]) -> None:
    """Same logits (float32 round-off at most) and the very same predictions."""
    assert len(actual) == len(recorded)
    for got, want in zip(actual, recorded, strict=True):
        torch.testing.assert_close(got, want)
        assert torch.equal(got.argmax(dim=1), want.argmax(dim=1))


def test_saved_checkpoint_predicts_as_recorded(expected: dict[str, Any]) -> None:
    task = STARSSegmentationTask.load_from_checkpoint(CHECKPOINT, map_location='cpu')
    task.eval()
    names = list(task.hparams['modalities'])
    with torch.no_grad():
        logits = scenario_logits(task.model, expected['batch'], names)
    assert_same_logits(logits, expected['checkpoint_logits'])
    assert task.data_statistics is not None
    assert task.data_statistics['sar'] == {'mean': [-0.5, 0.5], 'std': [2.0, 3.0]}


def test_saved_checkpoint_scenarios_match_forward(expected: dict[str, Any]) -> None:
    # The batched scenario evaluation gives each scenario's recorded logits.
    task = STARSSegmentationTask.load_from_checkpoint(CHECKPOINT, map_location='cpu')
    model = task.model.eval()
    names = list(task.hparams['modalities'])
    batch = expected['batch']
    masks = []
    for code in range(1, 2 ** len(names)):
        keep = torch.tensor([bool(code >> i & 1) for i in range(len(names))])
        masks.append(batch[AVAILABLE] & keep)
    with torch.no_grad():
        logits = model.forward_scenarios(
            {name: batch[image_key(name)] for name in names}, batch[AVAILABLE], masks
        )
    assert_same_logits(logits, expected['checkpoint_logits'])


def test_saved_checkpoint_loads_for_inference(expected: dict[str, Any]) -> None:
    predictor = predictor_from_checkpoint(read_checkpoint(CHECKPOINT), CHECKPOINT)
    assert predictor.class_names == ['water', 'field', 'forest', 'built']
    assert predictor.statistics is not None
    assert set(predictor.statistics) == {'optical', 'sar'}
    model = predictor.model.eval()
    with torch.no_grad():
        logits = scenario_logits(model, expected['batch'], list(predictor.modalities))
    assert_same_logits(logits, expected['checkpoint_logits'])


@pytest.mark.parametrize('name', list(FRESH_MODELS))
def test_fixed_seed_models_are_unchanged(name: str, expected: dict[str, Any]) -> None:
    # Same parts built in the same order: same initial weights, same keys.
    model_name, kwargs = FRESH_MODELS[name]
    torch.manual_seed(0)
    model = build_model(
        model_name,  # type: ignore[arg-type]
        modalities=dict(MODALITIES),
        num_classes=NUM_CLASSES,
        backbone=BACKBONE,
        **kwargs,
    ).eval()
    keys = json.loads((DATA / 'state_dict_keys.json').read_text())
    assert list(model.state_dict()) == keys[name]
    batch = expected['fresh_batch']
    with torch.no_grad():
        logits = model(
            {n: batch[image_key(n)] for n in MODALITIES}, batch[AVAILABLE]
        ).logits
    assert_same_logits([logits], [expected['fresh_logits'][name]])
