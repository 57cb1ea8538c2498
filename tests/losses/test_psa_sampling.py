import pytest
import torch
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import class_balanced_sample, random_sample

IGNORE = 255


def imbalanced_mask(seed: int = 0) -> Tensor:
    """(2, 50, 50): class 0 on 98%, class 1 on 1.5% (75 px), class 2 on 0.5% (25 px)."""
    flat = torch.zeros(5000, dtype=torch.long)
    flat[:75] = 1
    flat[75:100] = 2
    permutation = torch.randperm(5000, generator=torch.Generator().manual_seed(seed))
    return flat[permutation].reshape(2, 50, 50)


def counts(mask: Tensor, index: Tensor, classes: int = 3) -> list[int]:
    return torch.bincount(mask.reshape(-1)[index], minlength=classes).tolist()


def test_equal_counts_when_every_class_has_enough() -> None:
    mask = imbalanced_mask()
    index = class_balanced_sample(mask, 20, generator=torch.Generator().manual_seed(1))
    assert counts(mask, index) == [20, 20, 20]
    assert torch.unique(index).numel() == index.numel()  # without replacement
    assert index.dtype == torch.long


def test_small_class_gives_all_its_pixels() -> None:
    mask = imbalanced_mask()
    index = class_balanced_sample(mask, 50, generator=torch.Generator().manual_seed(1))
    assert counts(mask, index) == [50, 50, 25]
    rare = (mask.reshape(-1) == 2).nonzero().squeeze(1)
    sampled = index[mask.reshape(-1)[index] == 2]
    assert torch.equal(sampled.sort().values, rare)


def test_absent_classes_and_empty_inputs() -> None:
    mask = torch.tensor([[0, 0, 4, 4, 4]])
    index = class_balanced_sample(mask, 2, generator=torch.Generator().manual_seed(0))
    assert counts(mask, index, 5) == [2, 0, 0, 0, 2]
    ignored = torch.full((2, 3, 3), IGNORE)
    for sampler in (class_balanced_sample, random_sample):
        assert sampler(ignored, 5, ignore_index=IGNORE).numel() == 0
        assert sampler(mask, 0).numel() == 0


def test_ignore_index_and_invalid_pixels_never_sampled() -> None:
    mask = imbalanced_mask()
    mask[:, :10] = IGNORE
    valid = torch.ones_like(mask, dtype=torch.bool)
    valid[1] = False  # e.g. a sample without any modality
    allowed = (mask != IGNORE) & valid
    for sampler in (class_balanced_sample, random_sample):
        for seed in range(20):
            generator = torch.Generator().manual_seed(seed)
            index = sampler(mask, 30, IGNORE, generator, valid)
            assert allowed.reshape(-1)[index].all()
        # Asking for more than there is takes every allowed pixel exactly once.
        index = sampler(mask, 10_000, IGNORE, None, valid)
        assert torch.equal(
            index.sort().values, allowed.reshape(-1).nonzero().squeeze(1)
        )


def test_rare_class_always_sampled() -> None:
    mask = torch.zeros(2, 50, 50, dtype=torch.long)
    mask[1, 17, 33] = 3  # a single pixel of class 3 in the batch
    missed_by_random = 0
    for seed in range(100):
        index = class_balanced_sample(
            mask, 5, generator=torch.Generator().manual_seed(seed)
        )
        assert counts(mask, index, 4) == [5, 0, 0, 1]
        index = random_sample(mask, 5, generator=torch.Generator().manual_seed(seed))
        missed_by_random += int(counts(mask, index, 4)[3] == 0)
    # Uniform sampling (6 draws out of 5000 pixels) almost always misses it.
    assert missed_by_random > 90


def test_reproducible_with_generator_seed() -> None:
    mask = imbalanced_mask()
    for sampler in (class_balanced_sample, random_sample):
        first = sampler(mask, 20, generator=torch.Generator().manual_seed(7))
        again = sampler(mask, 20, generator=torch.Generator().manual_seed(7))
        other = sampler(mask, 20, generator=torch.Generator().manual_seed(8))
        assert torch.equal(first, again)
        assert not torch.equal(first, other)


def test_uniform_within_class() -> None:
    # Class 0 has 10 pixels, 2 drawn per call: each pixel is drawn 1/5 of the
    # time; class 1 has 2 pixels, both always drawn.
    mask = torch.tensor([[0] * 10 + [1] * 2])
    hits = torch.zeros(12)
    draws = 500
    for seed in range(draws):
        index = class_balanced_sample(
            mask, 2, generator=torch.Generator().manual_seed(seed)
        )
        hits[index] += 1
    assert torch.equal(hits[10:], torch.full((2,), float(draws)))
    # Binomial(500, 0.2): mean 100, std ~8.9; 40 is 4.5 std.
    assert ((hits[:10] - 100).abs() < 40).all()


def test_random_sampling_total_and_proportions() -> None:
    mask = imbalanced_mask()
    fractions = []
    for seed in range(20):
        generator = torch.Generator().manual_seed(seed)
        balanced = class_balanced_sample(mask, 1000, generator=generator)
        uniform = random_sample(mask, 1000, generator=generator)
        assert uniform.numel() == balanced.numel() == 1000 + 75 + 25
        assert torch.unique(uniform).numel() == uniform.numel()
        fractions.append(torch.tensor(counts(mask, uniform), dtype=torch.float) / 1100)
    mean = torch.stack(fractions).mean(dim=0)
    # Expected 0.98 / 0.015 / 0.005; the std of the mean over 20 draws is < 0.002.
    torch.testing.assert_close(
        mean, torch.tensor([0.98, 0.015, 0.005]), atol=0.006, rtol=0
    )


def test_bad_arguments_raise() -> None:
    mask = imbalanced_mask()
    with pytest.raises(ConfigurationError, match='n_per_class'):
        class_balanced_sample(mask, -1)
    with pytest.raises(ConfigurationError, match='integer'):
        random_sample(mask.float(), 3)
    with pytest.raises(ConfigurationError, match='valid'):
        class_balanced_sample(mask, 3, valid=torch.ones(2, 5, dtype=torch.bool))
