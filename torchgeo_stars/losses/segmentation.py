"""Segmentation loss: weighted cross-entropy plus an optional Dice term."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses import DiceLoss
from torch import Tensor, nn

from ..errors import ConfigurationError


def median_frequency_weights(
    counts: Sequence[int] | Tensor, power: float = 1.0
) -> list[float]:
    """Class weights that balance the cross-entropy: median frequency over frequency.

    Median frequency balancing (Eigen and Fergus, ICCV 2015): the weight of
    class ``c`` is ``(median(f) / f_c) ** power`` with ``f`` the pixel
    frequencies of the classes present (the lower middle value for an even
    number of classes), so the median class weighs 1, rarer ones more,
    commoner ones less; ``power < 1`` softens the balance (0.5: inverse square
    root). A class absent from *counts* gets 1 (its weight never enters the
    loss of data without it).

    Args:
        counts: Labelled pixel count per class (e.g. of the training labels).
        power: Exponent on the ratio (>= 0; 1 is plain median frequency
            balancing, 0 gives equal weights).

    Returns:
        One weight per class, for :class:`SegmentationLoss` (or the task's
        ``class_weights``).

    Raises:
        ConfigurationError: If *counts* is not a 1-D list of non-negative
            numbers with at least one positive, or *power* is negative.

    .. versionadded:: 0.1
    """
    if not power >= 0:
        raise ConfigurationError(
            f'median_frequency_weights: power is {power}; give a number >= 0.'
        )
    count = torch.as_tensor(counts, dtype=torch.float64)
    if count.ndim != 1 or not torch.isfinite(count).all() or (count < 0).any():
        raise ConfigurationError(
            f'median_frequency_weights: counts {counts} must be one non-negative'
            ' number per class.'
        )
    present = count > 0
    if not present.any():
        raise ConfigurationError(
            'median_frequency_weights: every count is 0; give the labelled pixel'
            ' count of each class.'
        )
    frequency = count / count.sum()
    median = frequency[present].median()
    weights = torch.ones_like(frequency)
    weights[present] = (median / frequency[present]) ** power
    return [float(w) for w in weights]


class SegmentationLoss(nn.Module):
    """Cross-entropy with ``ignore_index`` and class weights, plus ``w * Dice``.

    The cross-entropy is the weighted mean of torch's
    :func:`~torch.nn.functional.cross_entropy` (sum of ``weight[y] * nll`` over
    non-ignored pixels divided by the sum of ``weight[y]``), except that a
    batch whose pixels are all ignored gives 0 instead of NaN. The Dice term
    is segmentation-models-pytorch's multiclass
    :class:`~segmentation_models_pytorch.losses.DiceLoss` (soft Dice from the
    softmax, per class over the whole batch, classes absent from the target
    count as 0, averaged over classes; in ``[0, 1]``), with ignored pixels
    removed from both prediction and target.

    .. versionadded:: 0.1
    """

    weight: Tensor | None

    def __init__(
        self,
        ignore_index: int | None = None,
        class_weights: Sequence[float] | Tensor | None = None,
        dice_weight: float = 0.0,
    ) -> None:
        """Initialise the loss.

        Args:
            ignore_index: Label whose pixels contribute nothing, if any.
            class_weights: Non-negative weight per class for the
                cross-entropy, or ``None`` for equal weights.
            dice_weight: Weight of the Dice term (>= 0; 0 disables it).

        Raises:
            ConfigurationError: If ``class_weights`` is not a 1-D list of finite
                non-negative numbers with a positive sum, or ``dice_weight`` is
                negative.
        """
        super().__init__()
        if not dice_weight >= 0:
            raise ConfigurationError(
                f'SegmentationLoss: dice_weight is {dice_weight}; give a number >= 0.'
            )
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight
        if class_weights is None:
            self.register_buffer('weight', None, persistent=False)
        else:
            weight = torch.as_tensor(class_weights, dtype=torch.float32)
            if (
                weight.ndim != 1
                or not torch.isfinite(weight).all()
                or (weight < 0).any()
                or weight.sum() <= 0
            ):
                raise ConfigurationError(
                    f'SegmentationLoss: class_weights {class_weights} must be one'
                    ' finite non-negative number per class, not all zero.'
                )
            self.register_buffer('weight', weight, persistent=False)
        self.dice = DiceLoss('multiclass', ignore_index=ignore_index, from_logits=True)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            logits: Class scores ``(B, K, H, W)``.
            target: Labels ``(B, H, W)`` in ``[0, K)`` or ``ignore_index``.

        Returns:
            Scalar loss.

        Raises:
            ConfigurationError: If ``class_weights`` does not have ``K``
                entries.
        """
        if self.weight is not None and self.weight.numel() != logits.shape[1]:
            raise ConfigurationError(
                f'SegmentationLoss: class_weights has {self.weight.numel()} entries'
                f' but the logits have {logits.shape[1]} classes; give one weight'
                ' per class.'
            )
        ignore = -100 if self.ignore_index is None else self.ignore_index
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        summed = F.cross_entropy(
            logits, target, weight=weight, ignore_index=ignore, reduction='sum'
        )
        kept = target != ignore
        if weight is None:
            norm = kept.sum().to(summed.dtype)
        else:
            norm = (weight[target.clamp(0, logits.shape[1] - 1)] * kept).sum()
        loss = summed / norm.clamp_min(torch.finfo(summed.dtype).tiny)
        if self.dice_weight > 0:
            loss = loss + self.dice_weight * self.dice(logits, target)
        return loss
