"""Per-modality pixel embedding heads for the PSA loss."""

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

#: Features the PSA embedding heads read: each modality's specific ``s_m`` or
#: shared ``h_m`` features (one embedding per modality), or the decoder's
#: merged segmentation-block output, the class head's input (one fused view).
PSAFeatures = Literal['specific', 'shared', 'decoder']

#: Name of the single embedding head, and of the single entry of
#: :attr:`~torchgeo_stars.models.SegmentationOutput.embeddings`, with
#: ``psa_features='decoder'``.
FUSED_VIEW = 'fused'


class EmbeddingHeads(nn.Module):
    """One projection head per modality: 1x1 conv - ReLU - 1x1 conv, L2-normalised.

    .. versionadded:: 0.1

    Attributes:
        heads: Modality name to its head.
        dim: Embedding dimension ``D``.
    """

    def __init__(
        self, modalities: Sequence[str], in_channels: int, dim: int = 64
    ) -> None:
        """Build the heads.

        Args:
            modalities: Modality names (or ``[FUSED_VIEW]``: one head on the
                decoder's features).
            in_channels: Channels of the features read (at the alignment
                scale, or the decoder's segmentation width).
            dim: Embedding dimension ``D`` (also the hidden width).

        Raises:
            ValueError: If *dim* is below 1.
        """
        super().__init__()
        if dim < 1:
            raise ValueError(f'embedding_dim must be >= 1, got {dim}.')
        self.dim = dim
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Conv2d(in_channels, dim, 1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(dim, dim, 1),
                )
                for name in modalities
            }
        )

    def forward(self, features: Tensor, modality: str) -> Tensor:
        """Embed one modality's (or the fused view's) features.

        Args:
            features: ``(B, C, h, w)`` at the alignment scale.
            modality: Modality name (or :data:`FUSED_VIEW`).

        Returns:
            Unit-norm (over channels) embeddings ``(B, D, h, w)``.
        """
        return F.normalize(self.heads[modality](features), dim=1)
