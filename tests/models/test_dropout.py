"""Modality dropout: which modalities a training sample loses."""

import torch

from torchgeo_stars.models import modality_dropout


def test_modality_dropout_keeps_one_and_only_drops_available() -> None:
    generator = torch.Generator().manual_seed(0)
    available = torch.rand(2000, 3, generator=generator) < 0.7
    available[:, 0] |= ~available.any(dim=1)
    dropped = modality_dropout(available, 0.9, generator=generator)
    assert not (dropped & ~available).any()
    kept = available & ~dropped
    assert kept.any(dim=1).all()
    # A high rate drops a lot but not everything.
    rate = dropped.sum() / available.sum()
    assert 0.5 < rate < 0.9


def test_modality_dropout_rate_matches_probability() -> None:
    generator = torch.Generator().manual_seed(1)
    available = torch.ones(20000, 3, dtype=torch.bool)
    dropped = modality_dropout(available, 0.2, generator=generator)
    # P(all three drawn) = 0.008 is rescued, so the rate is just under 0.2.
    rate = float(dropped.float().mean())
    assert abs(rate - (0.2 - 0.008 / 3)) < 0.01


def test_no_dropout_when_probability_zero() -> None:
    available = torch.ones(4, 2, dtype=torch.bool)
    assert not modality_dropout(available, 0.0).any()
