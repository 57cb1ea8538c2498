"""The training objective: segmentation, translation and PSA losses combined."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..losses import PSALoss, SegmentationLoss, TranslationAlignmentLoss
from ..models import SegmentationOutput
from .class_weights import pending_class_weights


@dataclass(frozen=True)
class LossTerms:
    """The loss of one training step and its terms.

    .. versionadded:: 0.1

    Attributes:
        total: ``L_seg + lambda_tr * L_tr + lambda_psa * L_psa``, the terms
            that were computed.
        segmentation: ``L_seg``.
        translation: ``L_tr``, or None when not computed (no translated
            features or ``lambda_tr = 0``).
        psa: ``L_psa``, or None when not computed (no embeddings or
            ``lambda_psa = 0``).
        alignment: ``lambda_tr * L_tr + lambda_psa * L_psa``, or None when
            neither was computed.
    """

    total: Tensor
    segmentation: Tensor
    translation: Tensor | None
    psa: Tensor | None
    alignment: Tensor | None


def compose_losses(
    output: SegmentationOutput,
    target: Tensor,
    segmentation_loss: SegmentationLoss,
    translation_loss: TranslationAlignmentLoss,
    psa_loss: PSALoss,
    lambda_tr: float,
    lambda_psa: float,
) -> LossTerms:
    """Compute the loss of a model output, as :meth:`STARSSegmentationTask.compute_losses`.

    Each alignment term runs only when the output carries what it reads and
    its weight is positive.

    Args:
        output: The model's output (with alignment fields in training).
        target: ``(B, H, W)`` labels.
        segmentation_loss: ``L_seg``.
        translation_loss: ``L_tr``.
        psa_loss: ``L_psa``.
        lambda_tr: Weight of ``L_tr``.
        lambda_psa: Weight of ``L_psa``.

    Returns:
        The total and its terms.
    """
    segmentation = segmentation_loss(output.logits, target)
    total = segmentation
    translation = psa = alignment = None
    if output.translated and lambda_tr > 0:
        translation = translation_loss(
            output.translated, output.specific, output.available
        )
        total = total + lambda_tr * translation
        alignment = lambda_tr * translation
    if output.embeddings and lambda_psa > 0:
        psa = psa_loss(
            output.embeddings,
            target,
            output.available,
            stride=output.embedding_stride,
            single_view=output.fused_embeddings,
        )
        total = total + lambda_psa * psa
        weighted = lambda_psa * psa
        alignment = weighted if alignment is None else alignment + weighted
    return LossTerms(total, segmentation, translation, psa, alignment)


def build_losses(
    hparams: Mapping[str, Any],
) -> tuple[SegmentationLoss, TranslationAlignmentLoss, PSALoss]:
    """The three losses of the objective, from the task's hyper-parameters.

    Args:
        hparams: The task's hyper-parameters (``ignore_index``,
            ``class_weights``, ``dice_weight``, ``stop_gradient``,
            ``n_per_class``, ``temperature``, ``psa_sampling``,
            ``psa_positions``, ``psa_memory``, ``num_classes``).

    Returns:
        The segmentation, translation alignment and PSA losses; with
        ``class_weights`` a name (``'median_frequency'``...), the segmentation
        loss's weights are pending until
        :func:`~torchgeo_stars.tasks.class_weights.install_counted_weights`.
    """
    weights = hparams['class_weights']
    listed = weights is not None and not isinstance(weights, str)
    segmentation = SegmentationLoss(
        ignore_index=hparams['ignore_index'],
        class_weights=torch.tensor(weights) if listed else None,
        dice_weight=hparams['dice_weight'],
    )
    if isinstance(weights, str):  # counted when training starts
        pending_class_weights(segmentation, hparams['num_classes'])
    translation = TranslationAlignmentLoss(stop_gradient=hparams['stop_gradient'])
    psa = PSALoss(
        n_per_class=hparams['n_per_class'],
        temperature=hparams['temperature'],
        sampling=hparams['psa_sampling'],
        ignore_index=hparams['ignore_index'],
        positions=hparams['psa_positions'],
        memory_size=hparams['psa_memory'],
        num_classes=hparams['num_classes'],
    )
    return segmentation, translation, psa
