import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import SegmentationLoss

IGNORE = 255


def inputs(seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 6, 6, generator=generator)
    target = torch.randint(0, 4, (2, 6, 6), generator=generator)
    target[0, :2] = IGNORE
    return logits, target


def test_cross_entropy_matches_torch() -> None:
    logits, target = inputs()
    weights = [0.5, 2.0, 1.0, 3.0]
    loss = SegmentationLoss(ignore_index=IGNORE, class_weights=weights)
    expected = F.cross_entropy(
        logits, target, weight=torch.tensor(weights), ignore_index=IGNORE
    )
    torch.testing.assert_close(loss(logits, target), expected)
    clean = target.clamp_max(3)
    torch.testing.assert_close(
        SegmentationLoss()(logits, clean), F.cross_entropy(logits, clean)
    )


def test_ignored_pixels_contribute_nothing() -> None:
    logits, target = inputs()
    for dice_weight in (0.0, 1.0):
        loss = SegmentationLoss(ignore_index=IGNORE, dice_weight=dice_weight)
        noise = 100 * torch.randn(
            logits.shape, generator=torch.Generator().manual_seed(1)
        )
        changed = torch.where((target == IGNORE)[:, None], noise, logits)
        torch.testing.assert_close(loss(changed, target), loss(logits, target))
        raw = logits.clone().requires_grad_()
        loss(raw, target).backward()
        assert raw.grad is not None
        assert torch.count_nonzero(raw.grad.permute(0, 2, 3, 1)[target == IGNORE]) == 0
        assert torch.count_nonzero(raw.grad.permute(0, 2, 3, 1)[target != IGNORE]) > 0


def test_all_ignored_gives_zero() -> None:
    logits, target = inputs()
    target[:] = IGNORE
    value = SegmentationLoss(
        ignore_index=IGNORE, class_weights=[1.0] * 4, dice_weight=1.0
    )(logits, target)
    assert value.item() == 0.0


def test_dice_term_range() -> None:
    target = torch.arange(4).repeat_interleave(9).reshape(1, 6, 6)  # all 4 classes
    perfect = 50 * F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    wrong = 50 * F.one_hot((target + 1) % 4, 4).permute(0, 3, 1, 2).float()
    logits, _ = inputs()
    with_dice = SegmentationLoss(dice_weight=1.0)
    without = SegmentationLoss()

    def dice(x: Tensor) -> float:
        return float(with_dice(x, target) - without(x, target))

    assert dice(perfect) == pytest.approx(0.0, abs=1e-4)
    assert dice(wrong) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 < dice(logits[:1]) < 1.0
    # The weight scales the term linearly.
    doubled = SegmentationLoss(dice_weight=2.0)(logits[:1], target) - without(
        logits[:1], target
    )
    assert doubled.item() == pytest.approx(2 * dice(logits[:1]), rel=1e-5)


def test_class_weights_move_with_module() -> None:
    loss = SegmentationLoss(class_weights=[1.0, 2.0])
    assert loss.weight is not None
    assert loss.to(torch.float64).weight is not None
    assert 'weight' not in loss.state_dict()


def test_bad_arguments_raise() -> None:
    with pytest.raises(ConfigurationError, match='class_weights'):
        SegmentationLoss(class_weights=[1.0, -1.0])
    with pytest.raises(ConfigurationError, match='class_weights'):
        SegmentationLoss(class_weights=torch.ones(2, 2))
    with pytest.raises(ConfigurationError, match='dice_weight'):
        SegmentationLoss(dice_weight=-0.5)
    logits, target = inputs()
    with pytest.raises(ConfigurationError, match='4 classes'):
        SegmentationLoss(class_weights=[1.0, 1.0, 1.0])(logits, target.clamp_max(3))
