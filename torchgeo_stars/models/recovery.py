"""Recovering the features of a missing modality from the usable ones."""

from collections.abc import Sequence

import torch
from torch import Tensor


def masked_mean(values: Sequence[Tensor], weights: Sequence[Tensor]) -> Tensor:
    """Per-sample mean of feature maps over the candidates a sample may use.

    Args:
        values: Candidate features, each ``(B, C, h, w)``.
        weights: Per candidate, boolean ``(B,)``: whether the sample uses it.

    Returns:
        ``(B, C, h, w)``: for each sample, the mean of the candidates it uses;
        zeros for a sample that uses none.
    """
    total = torch.zeros_like(values[0])
    count = torch.zeros_like(weights[0], dtype=values[0].dtype)
    for value, weight in zip(values, weights, strict=True):
        w = weight.to(value.dtype)
        total = total + value * w[:, None, None, None]
        count = count + w
    return total / count.clamp(min=1)[:, None, None, None]


def fill_missing(real: Tensor, recovered: Tensor, keep: Tensor) -> Tensor:
    """Take *real* where a sample keeps the modality, *recovered* elsewhere.

    Args:
        real: ``(B, C, h, w)`` real features (any values where not kept).
        recovered: ``(B, C, h, w)`` recovered features.
        keep: Boolean ``(B,)``.

    Returns:
        ``(B, C, h, w)``; gradients flow only to the selected side.
    """
    return torch.where(keep[:, None, None, None], real, recovered)
