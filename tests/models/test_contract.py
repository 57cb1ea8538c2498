"""The forward contract every model obeys: shapes, availability, independence."""

import itertools
from typing import cast

import pytest
import torch
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError, DataError
from torchgeo_stars.models import SegmentationModel, SegmentationOutput
from torchgeo_stars.models.shared_specific import SharedSpecificSegmenter

from .helpers import FACTORIES, NUM_CLASSES, THREE, TWO, make_inputs


def subsets(names: list[str]) -> list[tuple[bool, ...]]:
    """Every non-empty availability pattern over *names*."""
    patterns = itertools.product([True, False], repeat=len(names))
    return [p for p in patterns if any(p)]


@pytest.mark.parametrize(
    ('kind', 'modalities'),
    [pytest.param(kind, TWO, id=f'{kind}-two') for kind in sorted(FACTORIES)]
    + [
        pytest.param(kind, THREE, id=f'{kind}-three')
        for kind in ['stars', 'shaspec', 'early_fusion']
    ],
)
def test_mixed_batch_matches_samples_alone(
    kind: str, modalities: dict[str, int]
) -> None:
    # One batch holding every availability pattern, odd image size, and NaN in
    # every unavailable image: each row must equal the sample run alone with
    # only its modalities in the inputs. In float64, so that batch-size
    # dependent float32 rounding of the kernels cannot blur the comparison.
    model = FACTORIES[kind](modalities).double()
    names = list(modalities)
    patterns = subsets(names)
    available = torch.tensor(patterns)
    height, width = 19, 45
    inputs = {
        name: image.double()
        for name, image in make_inputs(modalities, len(patterns), height, width).items()
    }
    poisoned = {
        name: torch.where(available[:, k, None, None, None], image, torch.nan)
        for k, (name, image) in enumerate(inputs.items())
    }
    with torch.no_grad():
        mixed = model(poisoned, available)
        assert isinstance(mixed, SegmentationOutput)
        assert mixed.logits.shape == (len(patterns), NUM_CLASSES, height, width)
        assert torch.isfinite(mixed.logits).all()
        assert torch.equal(mixed.available, available)
        for row, pattern in enumerate(patterns):
            alone_inputs = {
                name: inputs[name][row : row + 1]
                for name, keep in zip(names, pattern, strict=True)
                if keep
            }
            alone = model(alone_inputs)
            assert alone.logits.shape == (1, NUM_CLASSES, height, width)
            assert torch.equal(alone.available[0], available[row])
            torch.testing.assert_close(
                mixed.logits[row : row + 1], alone.logits, atol=1e-5, rtol=0
            )


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (7, 100)])
def test_any_input_size(size: tuple[int, int]) -> None:
    model = FACTORIES['stars'](TWO)
    with torch.no_grad():
        out = model(make_inputs(TWO, 2, *size))
    assert out.logits.shape == (2, NUM_CLASSES, *size)


@pytest.mark.parametrize('kind', ['stars', 'shaspec', 'early_fusion'])
def test_invalid_inputs_raise(kind: str) -> None:
    model = FACTORIES[kind](TWO)
    good = make_inputs(TWO, 2, 32, 32)

    def check(
        inputs: dict[str, Tensor],
        match: str,
        available: Tensor | None = None,
        dropped: Tensor | None = None,
    ) -> None:
        with pytest.raises(DataError, match=match):
            model(inputs, available, dropped)

    check({}, 'no input image')
    check({**good, 'lidar': good['sar']}, "unknown modality 'lidar'")
    check({**good, 'sar': torch.zeros(2, 3, 32, 32)}, "'sar' has 3 bands")
    check({**good, 'sar': torch.zeros(2, 2, 32, 30)}, 'co-registered')
    check({**good, 'sar': torch.zeros(2, 32, 32)}, "'sar'.*(B, C, H, W)")
    check(good, 'available has shape', available=torch.ones(2, 3, dtype=torch.bool))
    check(
        {'optical': good['optical']},
        "'sar' as present for samples \\[1\\]",
        available=torch.tensor([[True, False], [True, True]]),
    )
    check(
        good,
        'samples \\[1\\] have no usable',
        available=torch.tensor([[True, False], [False, False]]),
    )
    check(
        good,
        'samples \\[0\\] have no usable',
        available=torch.tensor([[True, False], [True, True]]),
        dropped=torch.tensor([[True, False], [False, True]]),
    )
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize('kind', ['stars', 'shaspec', 'early_fusion'])
def test_dropped_is_missing_for_the_logits(kind: str) -> None:
    model = FACTORIES[kind](THREE)
    inputs = make_inputs(THREE, 3, 32, 32)
    available = torch.tensor([[True, True, True], [True, False, True], [True] * 3])
    dropped = torch.tensor([[False, True, False], [False, False, True], [False] * 3])
    with torch.no_grad():
        with_dropout = model(inputs, available, dropped)
        as_missing = model(inputs, available & ~dropped)
    torch.testing.assert_close(
        with_dropout.logits, as_missing.logits, atol=1e-5, rtol=0
    )
    # The output reports the real availability, before dropout.
    assert torch.equal(with_dropout.available, available)


@pytest.mark.parametrize('kind', ['stars', 'shaspec'])
def test_forward_scenarios_equals_one_forward_per_scenario(kind: str) -> None:
    # A batch with a sample missing optical and one missing DSM; every
    # scenario's logits must equal a plain forward on that scenario's rows and
    # modalities, while each encoder runs once in all.
    model = cast(SharedSpecificSegmenter, FACTORIES[kind](THREE)).double()
    names = list(THREE)
    available = torch.tensor(
        [[True, True, True], [False, True, True], [True, True, False]]
    )
    inputs = {
        name: image.double() for name, image in make_inputs(THREE, 3, 21, 37).items()
    }
    masks = [available & torch.tensor(pattern) for pattern in subsets(names)]
    calls: list[str] = []
    hooks = [
        encoder.register_forward_pre_hook(lambda *_, n=name: calls.append(n))
        for name, encoder in model.specific_encoders.encoders.items()
    ]
    with torch.no_grad():
        shared = model.forward_scenarios(inputs, available, masks)
        assert sorted(calls) == sorted(names)
        for hook in hooks:
            hook.remove()
        for mask, logits in zip(masks, shared, strict=True):
            rows = mask.any(dim=1)
            scenario_inputs = {
                name: inputs[name][rows]
                for column, name in enumerate(names)
                if bool(mask[:, column].any())
            }
            assert logits.shape == (int(rows.sum()), NUM_CLASSES, 21, 37)
            if not bool(rows.any()):
                continue
            expected = model(scenario_inputs, mask[rows]).logits
            torch.testing.assert_close(logits, expected, atol=1e-6, rtol=0)


def test_forward_scenarios_rejects_training_and_bad_masks() -> None:
    model = cast(SharedSpecificSegmenter, FACTORIES['stars'](TWO))
    inputs = make_inputs(TWO, 2, 32, 32)
    available = torch.tensor([[True, False], [True, True]])
    with pytest.raises(DataError, match='within the availability'):
        model.forward_scenarios(inputs, available, [torch.ones(2, 2, dtype=torch.bool)])
    model.train()
    with pytest.raises(ConfigurationError, match='eval'):
        model.forward_scenarios(inputs, available, [available])


def test_default_forward_scenarios_is_one_forward_per_scenario() -> None:
    # Early fusion has no shared work between scenarios: the base class's loop
    # runs forward on each scenario's rows and modalities; a scenario no row
    # keeps gives an empty batch of logits.
    model = FACTORIES['early_fusion'](THREE)
    assert isinstance(model, SegmentationModel)
    names = list(THREE)
    available = torch.tensor([[True, True, False], [False, True, False]])
    inputs = make_inputs(THREE, 2, 32, 32)
    masks = [available & torch.tensor(pattern) for pattern in subsets(names)]
    with torch.no_grad():
        logits = model.forward_scenarios(inputs, available, masks)
        for mask, scenario in zip(masks, logits, strict=True):
            rows = mask.any(dim=1)
            assert scenario.shape == (int(rows.sum()), NUM_CLASSES, 32, 32)
            if not bool(rows.any()):
                continue
            used = mask.any(dim=0).tolist()
            expected = model(
                {n: inputs[n][rows] for n, u in zip(names, used, strict=True) if u},
                mask[rows],
            ).logits
            torch.testing.assert_close(scenario, expected, atol=0, rtol=0)
