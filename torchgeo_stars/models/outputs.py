"""What every segmentation model of this package returns."""

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class SegmentationOutput:
    """Output of :class:`~torchgeo_stars.models.STARS` and of the baselines.

    Only :attr:`logits` is needed for inference. The other fields carry what the
    alignment losses need during training; models (or modes) that do not compute
    them leave them empty.

    .. versionadded:: 0.1

    Attributes:
        logits: Class scores of shape ``(B, K, H, W)``, the input's size.
        available: Boolean ``(B, M)`` availability actually present in the data,
            columns in the model's modality order (before modality dropout).
        specific: Modality name to its specific features per decoder scale, each
            ``(B, C_l, H_l, W_l)``; rows of samples lacking the modality are
            zeros and must be masked out with :attr:`available`.
        translated: Ordered pair ``(source, target)`` to the source's features
            translated into the target's specific space, per decoder scale, with
            the same shapes as ``specific[target]``; rows are valid where the
            source is available.
        embeddings: Modality name to L2-normalised pixel embeddings
            ``(B, D, H_a, W_a)`` at the alignment scale, for the PSA loss; rows
            are valid where the modality is available. With
            :attr:`fused_embeddings`, one entry instead
            (:data:`~torchgeo_stars.models.FUSED_VIEW`): embeddings
            of the decoder's features, valid on every row.
        embedding_stride: Input pixels per embedding cell (the alignment
            scale's stride), or None when there are no embeddings; a cell
            ``(r, c)`` covers input pixels ``[r * stride, (r + 1) * stride)``.
        fused_embeddings: Whether :attr:`embeddings` is the single fused view
            of the decoder (``psa_features='decoder'``), which the PSA loss
            contrasts within itself, rather than one view per modality.
    """

    logits: Tensor
    available: Tensor
    specific: dict[str, list[Tensor]] = field(default_factory=dict)
    translated: dict[tuple[str, str], list[Tensor]] = field(default_factory=dict)
    embeddings: dict[str, Tensor] = field(default_factory=dict)
    embedding_stride: int | None = None
    fused_embeddings: bool = False
