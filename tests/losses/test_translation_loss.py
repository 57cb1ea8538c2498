import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import TranslationAlignmentLoss


def tiny_example() -> tuple[
    dict[tuple[str, str], list[Tensor]], dict[str, list[Tensor]]
]:
    """Two samples, two channels, two scales (1x2 and 1x1 pixels).

    Per-pixel distances D = 1 - cos, by hand:
      pair (a, b), sample 0: scale 0 pixels (1,0)v(0,1) -> 1, (1,1)v(2,2) -> 0,
        mean 0.5; scale 1 (1,0)v(-3,0) -> 2; mean over scales 1.25.
      pair (a, b), sample 1: scale 0 (0,1)v(0,5) -> 0, (0,1)v(1,0) -> 1, mean 0.5;
        scale 1 (1,0)v(1,0) -> 0; mean over scales 0.25.
      pair (b, a), sample 0: prediction equals the target -> 0.
      pair (b, a), sample 1: prediction is minus the target -> 2.
    """
    a0 = torch.tensor([[[[3.0, 1.0]], [[4.0, 2.0]]], [[[1.0, -2.0]], [[1.0, 5.0]]]])
    a1 = torch.tensor([[[[2.0]], [[1.0]]], [[[0.5]], [[-1.0]]]])
    b0 = torch.tensor([[[[0.0, 2.0]], [[1.0, 2.0]]], [[[0.0, 1.0]], [[5.0, 0.0]]]])
    b1 = torch.tensor([[[[-3.0]], [[0.0]]], [[[1.0]], [[0.0]]]])
    ab0 = torch.tensor([[[[1.0, 1.0]], [[0.0, 1.0]]], [[[0.0, 0.0]], [[1.0, 1.0]]]])
    ab1 = torch.tensor([[[[1.0]], [[0.0]]], [[[1.0]], [[0.0]]]])
    sign = torch.tensor([1.0, -1.0])[:, None, None, None]
    specific = {'a': [a0, a1], 'b': [b0, b1]}
    translated = {('a', 'b'): [ab0, ab1], ('b', 'a'): [a0 * 0.5 * sign, a1 * 3 * sign]}
    return translated, specific


def test_matches_hand_computation() -> None:
    translated, specific = tiny_example()
    loss = TranslationAlignmentLoss()
    everything = torch.ones(2, 2, dtype=torch.bool)
    # Four valid (pair, sample) terms: (1.25 + 0.25 + 0 + 2) / 4.
    assert loss(translated, specific, everything).item() == pytest.approx(0.875)
    # Sample 1 lacks b: only the two terms of sample 0 remain, (1.25 + 0) / 2.
    only_first = torch.tensor([[True, True], [True, False]])
    assert loss(translated, specific, only_first).item() == pytest.approx(0.625)


def test_masked_samples_contribute_nothing() -> None:
    translated, specific = tiny_example()
    available = torch.tensor([[True, True], [True, False]])
    expected = TranslationAlignmentLoss()(translated, specific, available)
    # Whatever sits in the rows of a sample lacking b changes neither the value
    # nor receives gradient; zero rows (the model's contract) give no NaN.
    for garbage in (torch.zeros, lambda *s: 1e3 * torch.randn(*s)):
        specific_g = {k: [f.clone() for f in v] for k, v in specific.items()}
        translated_g = {
            k: [f.clone().requires_grad_() for f in v] for k, v in translated.items()
        }
        for feature in specific_g['b']:
            feature[1] = garbage(*feature.shape[1:])
        for feature in translated_g[('b', 'a')]:
            feature.data[1] = garbage(*feature.shape[1:])
        value = TranslationAlignmentLoss()(translated_g, specific_g, available)
        assert value.item() == pytest.approx(expected.item())
        value.backward()
        for features in translated_g.values():
            for feature in features:
                assert feature.grad is not None
                assert torch.isfinite(feature.grad).all()
                assert torch.count_nonzero(feature.grad[1]) == 0
        # Sample 0 of (a, b) has orthogonal pixels at scale 0: it gets gradient.
        grad = translated_g[('a', 'b')][0].grad
        assert grad is not None
        assert torch.count_nonzero(grad[0]) > 0


def test_no_pair_available_gives_zero_with_graph() -> None:
    translated, specific = tiny_example()
    translated = {k: [f.requires_grad_() for f in v] for k, v in translated.items()}
    specific['b'] = [torch.zeros_like(f) for f in specific['b']]
    for available in (
        torch.tensor([[True, False], [True, False]]),
        torch.zeros(2, 2, dtype=torch.bool),
    ):
        value = TranslationAlignmentLoss()(translated, specific, available)
        assert value.item() == 0.0
        assert value.requires_grad
        value.backward()
        for features in translated.values():
            for feature in features:
                assert feature.grad is not None
                assert torch.count_nonzero(feature.grad) == 0


def reference(
    translated: dict[tuple[str, str], list[Tensor]],
    specific: dict[str, list[Tensor]],
    available: Tensor,
) -> float:
    names = list(specific)
    terms = []
    for (i, j), predictions in translated.items():
        for b in range(available.shape[0]):
            if not (available[b, names.index(i)] and available[b, names.index(j)]):
                continue
            per_scale = [
                (1 - F.cosine_similarity(p[b].double(), t[b].double(), dim=0)).mean()
                for p, t in zip(predictions, specific[j], strict=True)
            ]
            terms.append(float(sum(per_scale)) / len(per_scale))
    return sum(terms) / len(terms)


def test_three_modalities_match_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    names = ['optical', 'sar', 'dsm']
    shapes = [(4, 5, 6, 6), (4, 7, 3, 3)]
    specific = {m: [torch.randn(s, generator=generator) for s in shapes] for m in names}
    translated = {
        pair: [torch.randn(s, generator=generator) for s in shapes]
        for pair in itertools.permutations(names, 2)
    }
    available = torch.tensor(
        [
            [True, True, True],
            [True, False, True],
            [False, True, False],
            [True, True, False],
        ]
    )
    value = TranslationAlignmentLoss()(translated, specific, available)
    assert value.item() == pytest.approx(
        reference(translated, specific, available), abs=1e-6
    )


def test_bad_inputs_raise() -> None:
    translated, specific = tiny_example()
    with pytest.raises(ConfigurationError, match='one column per modality'):
        TranslationAlignmentLoss()(
            translated, specific, torch.ones(2, 3, dtype=torch.bool)
        )
    with pytest.raises(ConfigurationError, match="'c'"):
        TranslationAlignmentLoss()(
            {('a', 'c'): translated[('a', 'b')]},
            specific,
            torch.ones(2, 2, dtype=torch.bool),
        )
    with pytest.raises(ConfigurationError, match='scales'):
        TranslationAlignmentLoss()(
            {('a', 'b'): translated[('a', 'b')][:1]},
            specific,
            torch.ones(2, 2, dtype=torch.bool),
        )


# Gradient flow with stand-in encoders and translators.


class StandIn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.build()

    def build(self) -> None:
        self.encoders = nn.ModuleDict(
            {'a': nn.Conv2d(3, 4, 3, padding=1), 'b': nn.Conv2d(2, 4, 3, padding=1)}
        )
        self.translators = nn.ModuleDict(
            {
                'a_b': nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1)),
                'b_a': nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 1)),
            }
        )
        self.inputs = {'a': torch.randn(2, 3, 8, 8), 'b': torch.randn(2, 2, 8, 8)}

    def features(
        self, pairs: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[Tensor]], dict[str, list[Tensor]]]:
        specific = {m: [enc(self.inputs[m])] for m, enc in self.encoders.items()}
        translated = {
            (i, j): [self.translators[f'{i}_{j}'](specific[i][0])] for i, j in pairs
        }
        return translated, specific

    def gradients(self) -> dict[str, Tensor]:
        grads = {}
        for name, param in self.named_parameters():
            grad = param.grad
            grads[name] = torch.zeros_like(param) if grad is None else grad.clone()
        self.zero_grad(set_to_none=True)
        return grads


def encoder_grad(grads: dict[str, Tensor], modality: str) -> float:
    return sum(
        float(g.abs().sum())
        for k, g in grads.items()
        if k.startswith(f'encoders.{modality}')
    )


@pytest.mark.parametrize('stop_gradient', [True, False])
def test_single_pair_gradient_flow(stop_gradient: bool) -> None:
    model = StandIn()
    available = torch.ones(2, 2, dtype=torch.bool)
    translated, specific = model.features([('a', 'b')])
    TranslationAlignmentLoss(stop_gradient)(translated, specific, available).backward()
    grads = model.gradients()
    assert encoder_grad(grads, 'a') > 0  # the source always learns
    # The target's encoder is reached only through the target side.
    if stop_gradient:
        assert encoder_grad(grads, 'b') == 0.0
    else:
        assert encoder_grad(grads, 'b') > 0
    assert (
        sum(float(g.abs().sum()) for k, g in grads.items() if 'translators.a_b' in k)
        > 0
    )


@pytest.mark.parametrize('stop_gradient', [True, False])
def test_both_directions_gradient_is_source_side_only(stop_gradient: bool) -> None:
    model = StandIn()
    available = torch.ones(2, 2, dtype=torch.bool)
    pairs = [('a', 'b'), ('b', 'a')]
    translated, specific = model.features(pairs)
    TranslationAlignmentLoss(stop_gradient)(translated, specific, available).backward()
    grads = model.gradients()

    # Source-side contributions only: each pair's distance to an explicitly
    # detached target, averaged over the two (equally populated) pairs.
    translated, specific = model.features(pairs)
    source_only: Tensor = sum(  # type: ignore[assignment]
        (
            1
            - F.cosine_similarity(translated[(i, j)][0], specific[j][0].detach(), dim=1)
        ).mean()
        for i, j in pairs
    )
    torch.autograd.backward(source_only / 2)
    expected = model.gradients()

    differences = [
        float((grads[k] - expected[k]).abs().max())
        for k in grads
        if k.startswith('encoders')
    ]
    if stop_gradient:
        assert max(differences) < 1e-6
        for name in grads:
            torch.testing.assert_close(
                grads[name], expected[name], rtol=1e-5, atol=1e-7
            )
    else:
        # The target side adds gradient to both encoders.
        assert min(differences) > 1e-4
