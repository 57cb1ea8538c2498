"""Fusion of the per-modality specific and shared features, scale by scale."""

from collections.abc import Sequence
from typing import cast

import torch
from segmentation_models_pytorch.base.modules import SCSEModule
from torch import Tensor, nn


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv - BN - ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.

    Returns:
        The block.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SCSEFusionBlock(nn.Module):
    """STARS fusion at one scale: concat, 1x1 conv, SCSE attention.

    ``[s_1, h_1, ..., s_M, h_M]`` is concatenated along channels, reduced by a
    1x1 conv - BN - ReLU, then reweighted by concurrent spatial and channel
    squeeze-excitation (smp's ``SCSEModule``).

    .. versionadded:: 0.1
    """

    def __init__(
        self, in_channels: int, out_channels: int, reduction: int = 16
    ) -> None:
        """Build the block.

        Args:
            in_channels: Channels of the concatenation.
            out_channels: Fused channels.
            reduction: Channel squeeze ratio of the SCSE attention.
        """
        super().__init__()
        self.reduce = _conv_bn_relu(in_channels, out_channels)
        self.attention = cast(
            nn.Module, SCSEModule(out_channels, max(1, min(reduction, out_channels)))
        )

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Fuse the features of one scale.

        Args:
            features: ``[s_1, h_1, ..., s_M, h_M]``, each ``(B, C, h, w)``.

        Returns:
            Fused ``(B, out_channels, h, w)``.
        """
        return cast(Tensor, self.attention(self.reduce(torch.cat(list(features), 1))))


class SCSEFusion(nn.Module):
    """STARS fusion: one :class:`SCSEFusionBlock` per decoder scale.

    .. versionadded:: 0.1

    Attributes:
        blocks: One block per scale.
        out_channels: Fused channels per scale (the specific channels).
    """

    def __init__(
        self,
        num_modalities: int,
        specific_channels: Sequence[int],
        shared_channels: Sequence[int],
        reduction: int = 16,
    ) -> None:
        """Build the per-scale blocks.

        Args:
            num_modalities: ``M``.
            specific_channels: Specific channels per scale.
            shared_channels: Shared channels per scale.
            reduction: Channel squeeze ratio of the SCSE attention.
        """
        super().__init__()
        self.blocks = nn.ModuleList(
            SCSEFusionBlock(num_modalities * (cs + ch), cs, reduction)
            for cs, ch in zip(specific_channels, shared_channels, strict=True)
        )
        self.out_channels: list[int] = list(specific_channels)

    def forward(
        self, specific: Sequence[Sequence[Tensor]], shared: Sequence[Sequence[Tensor]]
    ) -> list[Tensor]:
        """Fuse all modalities at every scale.

        Args:
            specific: Per modality (model order), specific features per scale
                (real or recovered).
            shared: Per modality, shared features per scale.

        Returns:
            Fused features per scale.
        """
        fused = []
        for scale, block in enumerate(self.blocks):
            parts = [
                t
                for s, h in zip(specific, shared, strict=True)
                for t in (s[scale], h[scale])
            ]
            fused.append(block(parts))
        return fused


class ResidualFusion(nn.Module):
    """ShaSpec-style fusion: residual shared-specific projection, then concat.

    Per modality and scale, ``f_m = h_m + P([s_m, h_m])`` with ``P`` a 1x1 conv
    - BN whose weights all modalities share; then ``[f_1, ..., f_M]`` is reduced
    by a 1x1 conv - BN - ReLU. No attention.

    .. versionadded:: 0.1

    Attributes:
        projections: Per scale, the shared projection ``P``.
        reduce: Per scale, the reduction of the concatenation.
        out_channels: Fused channels per scale (the specific channels).
    """

    def __init__(
        self,
        num_modalities: int,
        specific_channels: Sequence[int],
        shared_channels: Sequence[int],
    ) -> None:
        """Build the per-scale layers.

        Args:
            num_modalities: ``M``.
            specific_channels: Specific channels per scale.
            shared_channels: Shared channels per scale.
        """
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cs + ch, ch, 1, bias=False), nn.BatchNorm2d(ch))
            for cs, ch in zip(specific_channels, shared_channels, strict=True)
        )
        self.reduce = nn.ModuleList(
            _conv_bn_relu(num_modalities * ch, cs)
            for cs, ch in zip(specific_channels, shared_channels, strict=True)
        )
        self.out_channels: list[int] = list(specific_channels)

    def forward(
        self, specific: Sequence[Sequence[Tensor]], shared: Sequence[Sequence[Tensor]]
    ) -> list[Tensor]:
        """Fuse all modalities at every scale.

        Args:
            specific: Per modality (model order), specific features per scale.
            shared: Per modality, shared features per scale.

        Returns:
            Fused features per scale.
        """
        batch = specific[0][0].shape[0]
        fused = []
        for scale, (projection, reduce) in enumerate(
            zip(self.projections, self.reduce, strict=True)
        ):
            # All modalities through the shared projection in one pass.
            pairs = torch.cat(
                [
                    torch.cat([s[scale], h[scale]], 1)
                    for s, h in zip(specific, shared, strict=True)
                ]
            )
            hs = torch.cat([h[scale] for h in shared])
            per_modality = (hs + projection(pairs)).split(batch)
            fused.append(reduce(torch.cat(per_modality, 1)))
        return fused
