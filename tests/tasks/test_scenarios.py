import torch

from torchgeo_stars.tasks import (
    modality_dropout,
    modality_scenarios,
    scenario_availability,
    scenario_names,
)


def test_three_modalities_give_seven_scenarios() -> None:
    scenarios = modality_scenarios(['optical', 'sar', 'dsm'])
    assert len(scenarios) == 7
    assert len(set(scenarios)) == 7
    assert scenarios[0] == ('optical', 'sar', 'dsm')
    assert {len(s) for s in scenarios[1:4]} == {2}
    assert set(scenarios[4:]) == {('optical',), ('sar',), ('dsm',)}


def test_two_modalities_give_three_scenarios() -> None:
    assert scenario_names(['optical', 'dsm']) == ['optical+dsm', 'optical', 'dsm']


def test_scenario_availability_removes_other_modalities() -> None:
    available = torch.tensor([[True, True, True], [True, False, True]])
    keep = scenario_availability(available, ['optical', 'sar', 'dsm'], ('sar', 'dsm'))
    assert keep.tolist() == [[False, True, True], [False, False, True]]


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
