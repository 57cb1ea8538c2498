"""Asymmetric translation alignment loss of STARS."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigurationError

_EPS = 1e-8


def _cosine_distance(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-pixel cosine distance over the channel axis, averaged per sample.

    Zero vectors (rows of samples lacking a modality) give a distance of 1 and
    finite gradients, never NaN. Computed in float32 (at least) with autocast
    off, whatever the features' dtype: in bfloat16 or float16 the norms and the
    channel sum lose the precision the distance needs, and ``_EPS`` is below
    float16's smallest normal number.

    Args:
        prediction: Features ``(B, C, H, W)``.
        target: Features of the same shape.

    Returns:
        ``(B,)`` mean over pixels of ``1 - cos(prediction, target)``, float32
        (float64 for float64 features).
    """
    dtype = torch.promote_types(prediction.dtype, torch.float32)
    with torch.autocast(prediction.device.type, enabled=False):
        prediction = prediction.to(dtype)
        target = target.to(dtype)
        cos = (
            F.normalize(prediction, dim=1, eps=_EPS)
            * F.normalize(target, dim=1, eps=_EPS)
        ).sum(dim=1)
        return (1.0 - cos).flatten(1).mean(dim=1)


class TranslationAlignmentLoss(nn.Module):
    r"""Align translated features with the target modality's specific features.

    For every ordered pair ``(i, j)`` in ``translated`` and every sample where
    both ``i`` and ``j`` are available, the term is

    .. math::

        \ell_{ij}(b) = \frac{1}{L} \sum_l \frac{1}{|\Omega_l|}
        \sum_{p \in \Omega_l}
        \left(1 - \cos\left(T_{ij}(s_i^l)_b(p),\ \mathrm{sg}(s_j^l)_b(p)\right)\right)

    (cosine over channels, each scale's pixels averaged, then the ``L`` scales
    weighted equally). The loss is the mean of :math:`\ell_{ij}(b)` over all
    valid ``(pair, sample)`` terms, so a pair weighs in proportion to the number
    of samples that have both of its modalities; samples lacking either
    modality contribute nothing (neither value nor gradient). When no pair is
    available in any sample the loss is a zero that stays connected to the
    inputs' graph (its gradient is zero), never NaN. Under mixed precision
    (autocast) the distances are still computed in float32.

    With ``stop_gradient=True`` (the default, STARS's asymmetric alignment)
    the target side :math:`s_j` is detached: with both directions trained,
    each encoder learns from this loss only as a source, which prevents the
    collapse of all encoders to one constant. ``stop_gradient=False`` lets the
    gradient reach both sides (the ablation).

    .. versionadded:: 0.1
    """

    def __init__(self, stop_gradient: bool = True) -> None:
        """Initialise the loss.

        Args:
            stop_gradient: Detach the target features :math:`s_j`.
        """
        super().__init__()
        self.stop_gradient = stop_gradient

    def forward(
        self,
        translated: dict[tuple[str, str], list[Tensor]],
        specific: dict[str, list[Tensor]],
        available: Tensor,
    ) -> Tensor:
        """Compute the loss.

        Args:
            translated: Ordered pair ``(source, target)`` to
                :math:`T_{ij}(s_i)` per scale, each ``(B, C_l, H_l, W_l)``.
            specific: Modality name to its specific features per scale; the
                dict's key order is the modality order of ``available``.
            available: Boolean ``(B, M)`` availability, columns in the order
                of ``specific``.

        Returns:
            Scalar loss.

        Raises:
            ConfigurationError: If a pair names a modality absent from
                ``specific``, ``available`` does not have one column per
                modality, or the scales' counts or shapes differ.
        """
        names = list(specific)
        if available.ndim != 2 or available.shape[1] != len(names):
            raise ConfigurationError(
                f'TranslationAlignmentLoss: available has shape {tuple(available.shape)}'
                f' but specific has {len(names)} modalities {names}; pass a (B, M)'
                ' boolean tensor with one column per modality, in the same order.'
            )
        available = available.bool()
        total: Tensor | None = None
        count: Tensor | None = None
        for (source, target), predictions in translated.items():
            for name in (source, target):
                if name not in specific:
                    raise ConfigurationError(
                        f'TranslationAlignmentLoss: pair ({source!r}, {target!r})'
                        f' names modality {name!r} missing from specific'
                        f' ({names}); give its specific features.'
                    )
            targets = specific[target]
            if len(predictions) != len(targets) or not predictions:
                raise ConfigurationError(
                    f'TranslationAlignmentLoss: pair ({source!r}, {target!r}) has'
                    f' {len(predictions)} translated scales but {target!r} has'
                    f' {len(targets)} specific scales; give one per scale.'
                )
            per_sample = torch.zeros(
                available.shape[0],
                device=predictions[0].device,
                dtype=torch.promote_types(predictions[0].dtype, torch.float32),
            )
            for scale, (prediction, feature) in enumerate(
                zip(predictions, targets, strict=True)
            ):
                if prediction.shape != feature.shape:
                    raise ConfigurationError(
                        f'TranslationAlignmentLoss: pair ({source!r}, {target!r})'
                        f' scale {scale}: translated shape {tuple(prediction.shape)}'
                        f' differs from specific shape {tuple(feature.shape)}.'
                    )
                if self.stop_gradient:
                    feature = feature.detach()
                per_sample = per_sample + _cosine_distance(prediction, feature)
            per_sample = per_sample / len(predictions)
            both = available[:, names.index(source)] & available[:, names.index(target)]
            # ``where`` (not a product) keeps rows of missing samples, whose
            # features are zeros or arbitrary, out of both value and gradient.
            pair_sum = torch.where(both, per_sample, 0.0).sum()
            pair_count = both.sum()
            total = pair_sum if total is None else total + pair_sum
            count = pair_count if count is None else count + pair_count
        if total is None or count is None:
            return torch.zeros((), device=available.device)
        return total / count.clamp_min(1)
