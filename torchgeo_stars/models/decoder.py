"""FPN decoder and segmentation head, plus padding inputs to the encoder stride."""

from collections.abc import Sequence
from typing import Literal, cast

import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base import initialization as smp_init
from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder
from torch import Tensor, nn

from .encoders import NUM_DECODER_SCALES

PaddingMode = Literal['reflect', 'replicate', 'constant']


def pad_to_multiple(x: Tensor, multiple: int, mode: PaddingMode = 'reflect') -> Tensor:
    """Pad the bottom and right of an image batch to a multiple of *multiple*.

    ``'reflect'`` needs the padding to be smaller than the image; when it is
    not (tiny images), ``'replicate'`` is used instead.

    Args:
        x: ``(B, C, H, W)``.
        multiple: The encoder's output stride.
        mode: ``'reflect'``, ``'replicate'`` or ``'constant'`` (zeros).

    Returns:
        ``(B, C, H', W')`` with ``H'`` and ``W'`` the next multiples; *x* itself
        when already aligned.
    """
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    if mode == 'reflect' and (pad_h >= height or pad_w >= width):
        mode = 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def crop_to(x: Tensor, height: int, width: int) -> Tensor:
    """Keep the top-left ``height x width`` of a batch.

    Args:
        x: ``(..., H', W')`` with ``H' >= height`` and ``W' >= width``.
        height: Output height.
        width: Output width.

    Returns:
        A view ``(..., height, width)``.
    """
    return x[..., :height, :width]


class FPNSegmentationDecoder(nn.Module):
    """smp's FPN decoder and segmentation head, upsampled to the input size.

    .. versionadded:: 0.1

    Attributes:
        decoder: smp's ``FPNDecoder``.
        head: smp's ``SegmentationHead`` (1x1 conv to class scores).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        num_classes: int,
        pyramid_channels: int = 256,
        segmentation_channels: int = 128,
        dropout: float = 0.2,
    ) -> None:
        """Build the decoder and head, initialised as smp initialises its FPN.

        Args:
            encoder_channels: Channels of the four decoder scales, finest first.
            num_classes: Number of classes ``K``.
            pyramid_channels: FPN pyramid width.
            segmentation_channels: Width of FPN's segmentation blocks.
            dropout: Spatial dropout on the merged pyramid.
        """
        super().__init__()
        if len(encoder_channels) != NUM_DECODER_SCALES:
            raise ValueError(
                f'encoder_channels must list {NUM_DECODER_SCALES} scales, got '
                f'{list(encoder_channels)}.'
            )
        self.decoder = cast(
            nn.Module,
            FPNDecoder(
                encoder_channels=list(encoder_channels),
                encoder_depth=NUM_DECODER_SCALES - 1,
                pyramid_channels=pyramid_channels,
                segmentation_channels=segmentation_channels,
                dropout=dropout,
            ),
        )
        self.head = cast(
            nn.Module,
            SegmentationHead(
                in_channels=segmentation_channels,
                out_channels=num_classes,
                kernel_size=1,
            ),
        )
        smp_init.initialize_decoder(self.decoder)
        smp_init.initialize_head(self.head)

    def forward(
        self,
        features: Sequence[Tensor],
        padded_size: tuple[int, int],
        output_size: tuple[int, int],
    ) -> Tensor:
        """Decode fused features into class scores.

        Args:
            features: The four decoder scales, finest first.
            padded_size: ``(H', W')`` of the padded input the features come from.
            output_size: ``(H, W)`` of the unpadded input.

        Returns:
            Logits ``(B, K, H, W)``: upsampled (bilinear) to the padded size,
            then cropped.
        """
        return self.decode(features, padded_size, output_size)[0]

    def decode(
        self,
        features: Sequence[Tensor],
        padded_size: tuple[int, int],
        output_size: tuple[int, int],
    ) -> tuple[Tensor, Tensor]:
        """Class scores and the features the segmentation head reads.

        One decoder pass gives both, so a loss on the head's input (PSA with
        ``psa_features='decoder'``) costs no second decoding.

        Args:
            features: The four decoder scales, finest first.
            padded_size: ``(H', W')`` of the padded input the features come from.
            output_size: ``(H, W)`` of the unpadded input.

        Returns:
            The logits of :meth:`forward`, and the merged segmentation-block
            output ``(B, segmentation_channels, h, w)`` at the finest decoder
            scale of the padded input (after the decoder's dropout, as the
            head reads it), not cropped.
        """
        merged = cast(Tensor, self.decoder(list(features)))
        logits = cast(Tensor, self.head(merged))
        logits = F.interpolate(
            logits, size=padded_size, mode='bilinear', align_corners=False
        )
        return crop_to(logits, *output_size), merged
