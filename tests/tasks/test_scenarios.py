import torch

from torchgeo_stars.tasks import (
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
