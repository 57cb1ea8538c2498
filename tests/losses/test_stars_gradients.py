"""Stop-gradient on the real STARS network, not only on stand-in encoders."""

from typing import Any

import pytest
import torch

from torchgeo_stars.losses import PSALoss, TranslationAlignmentLoss
from torchgeo_stars.models import STARS

MODALITIES = {'optical': 4, 'sar': 2}


def encoder_gradient(model: STARS, modality: str) -> float:
    """Sum of absolute gradients over a modality's specific encoder."""
    encoder = model.specific_encoders.encoders[modality]
    total = 0.0
    for parameter in encoder.parameters():
        if parameter.grad is not None:
            total += float(parameter.grad.abs().sum())
    return total


def tiny_stars(**options: Any) -> STARS:
    """A tiny STARS in training mode, deterministic weights.

    Args:
        options: STARS arguments that replace the tiny defaults.
    """
    torch.manual_seed(0)
    arguments: dict[str, Any] = {
        'num_classes': 3,
        'decoder_channels': 16,
        'decoder_segmentation_channels': 32,
        'translator_channels': 8,
        'embedding_dim': 8,
    }
    return STARS(MODALITIES, **(arguments | options)).train()


def translation_backward(stop_gradient: bool) -> STARS:
    """Back-propagate the optical -> sar translation loss alone through STARS."""
    model = tiny_stars()
    inputs = {name: torch.randn(2, bands, 32, 32) for name, bands in MODALITIES.items()}
    output = model(inputs)
    one_pair = {('optical', 'sar'): output.translated[('optical', 'sar')]}
    loss = TranslationAlignmentLoss(stop_gradient=stop_gradient)(
        one_pair, output.specific, output.available
    )
    loss.backward()
    return model


def test_stop_gradient_spares_the_target_encoder() -> None:
    model = translation_backward(stop_gradient=True)
    assert encoder_gradient(model, 'optical') > 0
    assert encoder_gradient(model, 'sar') == 0


def test_without_stop_gradient_the_target_encoder_learns_too() -> None:
    model = translation_backward(stop_gradient=False)
    assert encoder_gradient(model, 'optical') > 0
    assert encoder_gradient(model, 'sar') > 0


def test_psa_gradient_reaches_every_available_encoder() -> None:
    model = tiny_stars()
    inputs = {name: torch.randn(4, bands, 32, 32) for name, bands in MODALITIES.items()}
    mask = torch.randint(0, 3, (4, 32, 32))
    available = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    output = model(inputs, available)
    loss = PSALoss(n_per_class=16)(output.embeddings, mask, output.available)
    assert loss.item() > 0
    loss.backward()
    assert encoder_gradient(model, 'optical') > 0
    assert encoder_gradient(model, 'sar') > 0


@pytest.mark.parametrize('stop_gradient', [True, False])
def test_translation_loss_is_finite(stop_gradient: bool) -> None:
    model = translation_backward(stop_gradient)
    for parameter in model.parameters():
        if parameter.grad is not None:
            assert torch.isfinite(parameter.grad).all()
