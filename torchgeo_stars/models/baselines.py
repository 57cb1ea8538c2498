"""Baselines in the same harness: early fusion (and ModDrop) and ShaSpec."""

from collections.abc import Mapping

import torch
from torch import Tensor

from .availability import resolve_availability
from .base import SegmentationModel
from .decoder import FPNSegmentationDecoder, PaddingMode, pad_to_multiple
from .encoders import EncoderPyramid, SpecificEncoders, build_shared_encoder
from .fusion import ResidualFusion
from .outputs import SegmentationOutput
from .shared_specific import SharedSpecificSegmenter


class EarlyFusion(SegmentationModel):
    """Early fusion: modalities concatenated along channels, one encoder + FPN.

    What a TorchGeo user does today with ``torchgeo.tasks.SemanticSegmentation`` on the
    intersection of the rasters. A modality missing (or dropped) for a sample
    is zero-filled, so with modality dropout in training (the task passes
    ``dropped``) this is the ModDrop baseline.

    .. versionadded:: 0.1

    Attributes:
        modalities: Modality name to band count, in concatenation order.
        encoder: The encoder, with ``sum(C_m)`` input bands.
        decoder: FPN decoder and segmentation head.
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        num_classes: int,
        backbone: str = 'resnet18',
        weights: str | None = None,
        encoder_depth: int = 5,
        decoder_channels: int = 256,
        decoder_segmentation_channels: int = 128,
        dropout: float = 0.2,
        padding_mode: PaddingMode = 'reflect',
    ) -> None:
        """Build the network.

        Args:
            modalities: Modality name to band count, ordered; at least one.
            num_classes: Number of classes ``K``.
            backbone: Encoder name of segmentation-models-pytorch.
            weights: Pretrained encoder weights, or None.
            encoder_depth: Encoder stages, 4 or 5.
            decoder_channels: FPN pyramid width.
            decoder_segmentation_channels: FPN segmentation-block width.
            dropout: Spatial dropout of the FPN decoder.
            padding_mode: Padding of inputs to the encoder stride.

        Raises:
            ConfigurationError: If an argument is invalid.
        """
        super().__init__(modalities, num_classes, 1, 'EarlyFusion')
        self.padding_mode: PaddingMode = padding_mode
        self.encoder = EncoderPyramid(
            backbone, sum(self.modalities.values()), encoder_depth, weights
        )
        self.decoder = FPNSegmentationDecoder(
            self.encoder.out_channels,
            num_classes,
            decoder_channels,
            decoder_segmentation_channels,
            dropout,
        )

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        available: Tensor | None = None,
        dropped: Tensor | None = None,
        return_alignment: bool | None = None,
    ) -> SegmentationOutput:
        """Segment a batch, zero-filling missing and dropped modalities.

        Args:
            inputs: Modality name to images ``(B, C_m, H, W)``.
            available: Optional boolean ``(B, M)`` availability.
            dropped: Optional boolean ``(B, M)`` modalities to zero-fill too.
            return_alignment: Accepted for a uniform call signature; this
                model has no alignment outputs.

        Returns:
            The output, with :attr:`~SegmentationOutput.logits` and
            :attr:`~SegmentationOutput.available` only.

        Raises:
            DataError: If the inputs or flags are invalid, or a sample has no
                usable modality.
        """
        state = resolve_availability(inputs, self.modalities, available, dropped)
        reference = next(iter(inputs.values()))
        parts = []
        for column, (name, bands) in enumerate(self.modalities.items()):
            if name in inputs:
                keep = state.usable[:, column, None, None, None]
                # where, not a product: NaN no-data in a missing image stays out.
                parts.append(torch.where(keep, inputs[name], 0.0))
            else:
                parts.append(
                    reference.new_zeros(
                        (state.batch_size, bands, state.height, state.width)
                    )
                )
        image = pad_to_multiple(
            torch.cat(parts, 1), self.encoder.output_stride, self.padding_mode
        )
        logits = self.decoder(
            self.encoder(image),
            (image.shape[-2], image.shape[-1]),
            (state.height, state.width),
        )
        return SegmentationOutput(logits=logits, available=state.available)


class ShaSpec(SharedSpecificSegmenter):
    """ShaSpec-style baseline (Wang et al., CVPR 2023), no translation.

    Shared and specific encoders as in STARS; per scale each modality's
    ``[s_m, h_m]`` is fused by a shared residual projection
    ``h_m + P([s_m, h_m])`` and the modalities are concatenated and reduced
    (:class:`ResidualFusion`, no attention). A missing (or dropped) modality's
    shared features are the mean of the usable modalities' shared features and
    its specific features are zeros. The output carries logits and
    availability only.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        num_classes: int,
        backbone: str = 'resnet18',
        weights: str | None = None,
        shared_encoder: str = 'backbone',
        encoder_depth: int = 5,
        decoder_channels: int = 256,
        decoder_segmentation_channels: int = 128,
        dropout: float = 0.2,
        stem_channels: int = 16,
        padding_mode: PaddingMode = 'reflect',
    ) -> None:
        """Build the network.

        Args:
            modalities: Modality name to band count, ordered; at least two.
            num_classes: Number of classes ``K``.
            backbone: Encoder name of segmentation-models-pytorch.
            weights: Pretrained encoder weights, or None.
            shared_encoder: ``'backbone'`` (ShaSpec's shared encoder, a copy
                of the *backbone* architecture; default), another encoder name
                for the shared backbone, or ``'projection'`` (shared 1x1
                projections of the specific features, cheaper).
            encoder_depth: Encoder stages, 4 or 5.
            decoder_channels: FPN pyramid width.
            decoder_segmentation_channels: FPN segmentation-block width.
            dropout: Spatial dropout of the FPN decoder.
            stem_channels: Stem width of the ``'backbone'`` shared encoder.
            padding_mode: Padding of inputs to the encoder stride.

        Raises:
            ConfigurationError: If an argument is invalid.
        """
        super().__init__(modalities, num_classes, padding_mode, 'ShaSpec')
        self.specific_encoders = SpecificEncoders(
            self.modalities, backbone, encoder_depth, weights
        )
        channels = self.specific_encoders.out_channels
        self.shared_encoder = build_shared_encoder(
            shared_encoder,
            self.modalities,
            backbone,
            encoder_depth,
            weights,
            channels,
            stem_channels,
            self.output_stride,
        )
        self.fusion = ResidualFusion(
            len(self.modalities), channels, self.shared_encoder.out_channels
        )
        self.decoder = FPNSegmentationDecoder(
            self.fusion.out_channels,
            num_classes,
            decoder_channels,
            decoder_segmentation_channels,
            dropout,
        )
