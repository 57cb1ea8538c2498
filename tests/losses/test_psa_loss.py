import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import PSALoss, class_balanced_sample, random_sample

IGNORE = 255


def reference(
    embeddings: dict[str, Tensor],
    labels: Tensor,
    available: Tensor,
    positions: list[int],
    temperature: float,
) -> float:
    """Slow cross-modality SupCon on the given flat positions of ``labels``.

    ``labels`` is already at the embeddings' size; loops over anchors and
    candidates in float64 Python arithmetic.
    """
    names = list(embeddings)
    _, dim, height, width = embeddings[names[0]].shape
    vectors: dict[str, list[list[float]]] = {}
    for m in names:
        flat = embeddings[m].double().permute(0, 2, 3, 1).reshape(-1, dim)
        vectors[m] = F.normalize(flat, dim=1).tolist()
    label: list[int] = labels.reshape(-1).tolist()

    def has(m: str, p: int) -> bool:
        return bool(available[p // (height * width), names.index(m)])

    terms = []
    for i in names:
        for j in names:
            if i == j:
                continue
            for p in positions:
                if not has(i, p):
                    continue
                candidates = [q for q in positions if has(j, q)]
                positives = [q for q in candidates if label[q] == label[p]]
                if not positives:
                    continue

                def logit(q: int, m: str = j, p: int = p, i: str = i) -> float:
                    dot = sum(
                        a * b for a, b in zip(vectors[i][p], vectors[m][q], strict=True)
                    )
                    return dot / temperature

                denominator = sum(math.exp(logit(q)) for q in candidates)
                log_probs = [
                    math.log(math.exp(logit(q)) / denominator) for q in positives
                ]
                terms.append(-sum(log_probs) / len(positives))
    return sum(terms) / len(terms) if terms else 0.0


def random_inputs(seed: int, names: list[str]) -> tuple[dict[str, Tensor], Tensor]:
    generator = torch.Generator().manual_seed(seed)
    embeddings = {
        m: F.normalize(torch.randn(3, 4, 4, 4, generator=generator), dim=1)
        for m in names
    }
    # Full-resolution mask (8x8), two times the embeddings' size.
    mask = torch.randint(0, 3, (3, 8, 8), generator=generator)
    mask[0, :4] = IGNORE
    return embeddings, mask


AVAILABILITY = {
    'all': [[True, True, True]] * 3,
    'some missing': [[True, True, False], [False, True, True], [True, False, False]],
    'one per sample': [
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ],
}


@pytest.mark.parametrize('pattern', list(AVAILABILITY))
@pytest.mark.parametrize('temperature', [0.1, 0.5])
def test_matches_reference_on_all_pixels(pattern: str, temperature: float) -> None:
    names = ['optical', 'sar', 'dsm']
    embeddings, mask = random_inputs(0, names)
    available = torch.tensor(AVAILABILITY[pattern])
    # n_per_class above any class count: every valid pixel is used.
    loss = PSALoss(n_per_class=1000, temperature=temperature, ignore_index=IGNORE)
    value = loss(embeddings, mask, available)
    labels = mask[:, ::2, ::2]  # nearest downsampling by 2 keeps even rows/cols
    positions = [p for p in range(labels.numel()) if labels.reshape(-1)[p] != IGNORE]
    expected = reference(embeddings, labels, available, positions, temperature)
    assert expected > 0
    assert value.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize('sampling', ['balanced', 'random'])
def test_matches_reference_on_sampled_pixels(sampling: str) -> None:
    names = ['optical', 'sar']
    embeddings, mask = random_inputs(1, names)
    available = torch.tensor([[True, True], [True, False], [False, True]])
    loss = PSALoss(n_per_class=3, temperature=0.2, sampling=sampling)  # type: ignore[arg-type]
    value = loss(
        embeddings, mask, available, generator=torch.Generator().manual_seed(5)
    )
    labels = mask[:, ::2, ::2]
    # Redraw the same positions with the same generator seed.
    sampler = class_balanced_sample if sampling == 'balanced' else random_sample
    positions = sampler(labels, 3, generator=torch.Generator().manual_seed(5)).tolist()
    assert 0 < len(positions) < labels.numel()
    expected = reference(embeddings, labels, available, positions, 0.2)
    assert value.item() == pytest.approx(expected, abs=1e-5)


def test_gradient_is_finite_and_reaches_every_available_modality() -> None:
    names = ['optical', 'sar', 'dsm']
    embeddings, mask = random_inputs(2, names)
    raw = {m: e.clone().requires_grad_() for m, e in embeddings.items()}
    available = torch.tensor(
        [[True, True, False], [True, True, False], [True, True, False]]
    )
    value = PSALoss(n_per_class=4, ignore_index=IGNORE)(raw, mask, available)
    value.backward()
    for m in names:
        grad = raw[m].grad
        assert grad is not None
        assert torch.isfinite(grad).all()
        # dsm is available nowhere: no gradient; the others get some.
        assert (grad.abs().sum() > 0) == (m != 'dsm')


def test_lower_when_modalities_agree_on_classes() -> None:
    # Embeddings that encode the class identically in both modalities score
    # lower than random ones.
    mask = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(0))
    one_hot = F.one_hot(mask, 4).permute(0, 3, 1, 2).float()
    noise = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(1))
    available = torch.ones(2, 2, dtype=torch.bool)
    loss = PSALoss(n_per_class=10, temperature=0.1)
    aligned = loss({'a': one_hot, 'b': one_hot}, mask, available)
    unaligned = loss({'a': one_hot, 'b': noise}, mask, available)
    assert aligned.item() < unaligned.item()


@pytest.mark.parametrize(
    'case', ['one modality in dict', 'one available anywhere', 'all ignored']
)
def test_zero_with_graph(case: str) -> None:
    embeddings, mask = random_inputs(3, ['a', 'b'])
    available = torch.ones(3, 2, dtype=torch.bool)
    if case == 'one modality in dict':
        embeddings = {'a': embeddings['a']}
        available = available[:, :1]
    elif case == 'one available anywhere':
        available[:, 1] = False
    else:
        mask[:] = IGNORE
    raw = {m: e.clone().requires_grad_() for m, e in embeddings.items()}
    value = PSALoss(n_per_class=4, ignore_index=IGNORE)(raw, mask, available)
    assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    for tensor in raw.values():
        assert tensor.grad is not None
        assert torch.count_nonzero(tensor.grad) == 0


def test_bad_inputs_raise() -> None:
    embeddings, mask = random_inputs(4, ['a', 'b'])
    available = torch.ones(3, 2, dtype=torch.bool)
    loss = PSALoss()
    with pytest.raises(ConfigurationError, match='available'):
        loss(embeddings, mask, available[:, :1])
    with pytest.raises(ConfigurationError, match="embeddings\\['b'\\]"):
        loss({'a': embeddings['a'], 'b': embeddings['b'][:, :2]}, mask, available)
    with pytest.raises(ConfigurationError, match='mask'):
        loss(embeddings, mask[:2], available)
    with pytest.raises(ConfigurationError, match='temperature'):
        PSALoss(temperature=0.0)
    with pytest.raises(ConfigurationError, match='sampling'):
        PSALoss(sampling='uniform')  # type: ignore[arg-type]
