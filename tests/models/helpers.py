"""Tiny models and inputs shared by the model tests."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from segmentation_models_pytorch.encoders import get_encoder
from torch import Tensor, nn

from torchgeo_stars.models import STARS, EarlyFusion, ShaSpec, to_channels_last

THREE = {'optical': 4, 'sar': 2, 'dsm': 1}
TWO = {'optical': 3, 'sar': 2}
NUM_CLASSES = 3
SMALL: dict[str, Any] = {
    'decoder_channels': 32,
    'decoder_segmentation_channels': 64,
    'dropout': 0.0,
}
STARS_SMALL: dict[str, Any] = {**SMALL, 'translator_channels': 16, 'embedding_dim': 8}


def make_inputs(
    modalities: dict[str, int], batch: int, height: int, width: int, seed: int = 0
) -> dict[str, Tensor]:
    """Random images for every modality."""
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(batch, bands, height, width, generator=generator)
        for name, bands in modalities.items()
    }


def make_stars(modalities: dict[str, int], **kwargs: Any) -> STARS:
    """A small STARS in eval mode, deterministic weights, as build_model makes it."""
    torch.manual_seed(0)
    model = STARS(modalities, NUM_CLASSES, **{**STARS_SMALL, **kwargs})
    return to_channels_last(model).eval()


def make_shaspec(modalities: dict[str, int], **kwargs: Any) -> ShaSpec:
    """A small ShaSpec in eval mode."""
    torch.manual_seed(0)
    return to_channels_last(
        ShaSpec(modalities, NUM_CLASSES, **{**SMALL, **kwargs})
    ).eval()


def make_early_fusion(modalities: dict[str, int], **kwargs: Any) -> EarlyFusion:
    """A small EarlyFusion in eval mode."""
    torch.manual_seed(0)
    model = EarlyFusion(modalities, NUM_CLASSES, **{**SMALL, **kwargs})
    return to_channels_last(model).eval()


Factory = Callable[[dict[str, int]], nn.Module]
FACTORIES: dict[str, Factory] = {
    'stars': make_stars,
    'stars_backbone': lambda m: make_stars(m, shared_encoder='backbone'),
    'stars_projection': lambda m: make_stars(m, shared_encoder='projection'),
    'stars_lcnet': lambda m: make_stars(m, shared_encoder='tu-lcnet_050'),
    'stars_no_translation': lambda m: make_stars(m, translation=False),
    'shaspec': make_shaspec,
    'early_fusion': make_early_fusion,
}


@contextmanager
def capture_fusion(model: nn.Module) -> Iterator[list[tuple[Any, ...]]]:
    """Capture the (specific, shared) arguments a model's fusion receives."""
    calls: list[tuple[Any, ...]] = []

    def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        calls.append(args)

    fusion = model.fusion
    assert isinstance(fusion, nn.Module)
    handle = fusion.register_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def random_encoder_state(in_channels: int, seed: int) -> dict[str, Tensor]:
    """A resnet18 state dict with distinct random values and a classifier head,
    laid out like TorchGeo's (timm) checkpoints."""
    encoder = get_encoder('resnet18', in_channels=in_channels, weights=None)
    generator = torch.Generator().manual_seed(seed)
    state = {
        key: torch.randn(value.shape, generator=generator)
        if value.is_floating_point()
        else value.clone()
        for key, value in encoder.state_dict().items()
    }
    state['fc.weight'] = torch.randn(10, 512, generator=generator)
    state['fc.bias'] = torch.randn(10, generator=generator)
    return state
