"""Baselines: early fusion (zero-fill, ModDrop) and ShaSpec."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.models import (
    MODELS,
    STARS,
    EarlyFusion,
    SegmentationOutput,
    ShaSpec,
    build_model,
)

from .helpers import (
    NUM_CLASSES,
    THREE,
    TWO,
    capture_fusion,
    make_early_fusion,
    make_inputs,
    make_shaspec,
)


def test_early_fusion_zero_fills_missing() -> None:
    model = make_early_fusion(THREE)
    inputs = make_inputs(THREE, 2, 40, 40)
    zeros = {**inputs, 'sar': torch.zeros_like(inputs['sar'])}
    absent = {'optical': inputs['optical'], 'dsm': inputs['dsm']}
    no_sar = torch.tensor([[True, False, True]] * 2)
    with torch.no_grad():
        missing = model(inputs, no_sar).logits
        given_zeros = model(zeros).logits
        not_given = model(absent).logits
        dropped = model(inputs, None, ~no_sar).logits
        real = model(inputs).logits
    torch.testing.assert_close(missing, given_zeros, atol=0, rtol=0)
    torch.testing.assert_close(not_given, given_zeros, atol=0, rtol=0)
    torch.testing.assert_close(dropped, given_zeros, atol=0, rtol=0)
    assert (real - missing).abs().max() > 1e-3


def test_early_fusion_single_encoder_and_training_output() -> None:
    model = make_early_fusion(THREE).train()
    first_conv = next(m for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == sum(THREE.values())
    out = model(
        make_inputs(THREE, 2, 64, 64), None, torch.tensor([[True, False, False]] * 2)
    )
    assert out.logits.shape == (2, NUM_CLASSES, 64, 64)
    assert out.specific == {}
    assert out.translated == {}
    assert out.embeddings == {}
    single = EarlyFusion({'optical': 3}, 2, decoder_channels=32)
    assert single.modality_names == ['optical']


@pytest.mark.parametrize('shared_encoder', ['backbone', 'projection'])
def test_shaspec_mean_fills_shared_and_zero_fills_specific(shared_encoder: str) -> None:
    model = make_shaspec(THREE, shared_encoder=shared_encoder)
    assert model.translation is None
    inputs = make_inputs(THREE, 2, 32, 32)
    available = torch.tensor([[True, False, True], [True, True, True]])
    with torch.no_grad(), capture_fusion(model) as calls:
        model(inputs, available)
    ((specific, shared),) = calls
    for scale in range(4):
        assert specific[1][scale][0].abs().sum() == 0
        assert specific[1][scale][1].abs().sum() > 0
        mean = (shared[0][scale][0] + shared[2][scale][0]) / 2
        torch.testing.assert_close(shared[1][scale][0], mean)


def test_shaspec_training_output_and_gradients() -> None:
    model = make_shaspec(TWO).train()
    dropped = torch.tensor([[True, False], [False, True], [False, False]])
    out: SegmentationOutput = model(make_inputs(TWO, 3, 64, 64), None, dropped)
    assert out.specific == {}
    assert out.translated == {}
    assert out.embeddings == {}
    target = torch.randint(0, NUM_CLASSES, (3, 64, 64))
    torch.autograd.backward(F.cross_entropy(out.logits, target))
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_early_fusion_gradients() -> None:
    model = make_early_fusion(TWO).train()
    out: SegmentationOutput = model(make_inputs(TWO, 2, 64, 64))
    torch.autograd.backward(out.logits.square().mean())
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ('name', 'cls'),
    [('stars', STARS), ('early_fusion', EarlyFusion), ('shaspec', ShaSpec)],
)
def test_build_model(name: Any, cls: type[nn.Module]) -> None:
    model = build_model(
        name, modalities=TWO, num_classes=4, backbone='resnet18', decoder_channels=32
    )
    assert type(model) is cls
    assert MODELS[name] is cls
    with torch.no_grad():
        out = model.eval()(make_inputs(TWO, 1, 32, 32))
    assert out.logits.shape == (1, 4, 32, 32)


def test_build_model_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown model 'unet'"):
        build_model('unet', modalities=TWO, num_classes=2)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"model 'early_fusion'.*translation"):
        build_model('early_fusion', modalities=TWO, num_classes=2, translation=False)


def test_training_with_one_undropped_row_does_not_break_batch_norm() -> None:
    # SAR is dropped on two of three rows: encoding only the third row would
    # give batch norm one sample at 1 x 1 in the deepest stage (32 px input).
    model = make_shaspec(TWO).train()
    inputs = make_inputs(TWO, batch=3, height=32, width=32)
    dropped = torch.tensor([[False, True], [False, True], [True, False]])
    output = model(inputs, dropped=dropped)
    assert output.logits.shape == (3, NUM_CLASSES, 32, 32)
    assert torch.isfinite(output.logits).all()
