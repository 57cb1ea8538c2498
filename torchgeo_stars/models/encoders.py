"""Encoders: specific (one backbone per modality) and shared ones.

Every encoder here returns the *decoder pyramid*: the last
:data:`NUM_DECODER_SCALES` feature maps of a segmentation-models-pytorch
encoder (strides 4, 8, 16 and 32 for ``encoder_depth=5``), finest first, the
scales an FPN decoder reads.
"""

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from segmentation_models_pytorch.base.modules import Conv2dReLU
from segmentation_models_pytorch.encoders import get_encoder
from torch import Tensor, nn

from ..errors import ConfigurationError
from .batching import cat_batch, split_batch

#: Number of encoder scales the FPN decoder uses (smp's FPN reads the last four).
NUM_DECODER_SCALES = 4


class EncoderPyramid(nn.Module):
    """An smp / timm encoder returning only the scales the decoder uses.

    .. versionadded:: 0.1

    Attributes:
        out_channels: Channels of each returned scale, finest first.
        output_stride: Stride of the coarsest scale; inputs are padded to a
            multiple of it.
    """

    def __init__(
        self, name: str, in_channels: int, depth: int = 5, weights: str | None = None
    ) -> None:
        """Build the encoder with :func:`segmentation_models_pytorch.encoders.get_encoder`.

        Args:
            name: Encoder name as segmentation-models-pytorch spells it
                (``'resnet18'``, ``'efficientnet-b0'``, ``'tu-<timm name>'`` ...).
            in_channels: Input bands.
            depth: Number of encoder stages (4 or 5).
            weights: Pretrained weights name (``'imagenet'`` ...), or None for
                random initialisation (no download).

        Raises:
            ConfigurationError: If the name, weights or depth are not supported.
        """
        super().__init__()
        if depth not in (4, 5):
            raise ConfigurationError(
                f'encoder_depth must be 4 or 5 (the FPN decoder reads four '
                f'scales), got {depth}.'
            )
        try:
            encoder = get_encoder(
                name, in_channels=in_channels, depth=depth, weights=weights
            )
        except (KeyError, RuntimeError) as error:
            raise ConfigurationError(
                f'cannot build encoder {name!r} with weights {weights!r}: {error}. '
                f'Use an encoder name of segmentation-models-pytorch (e.g. '
                f"'resnet18', or 'tu-' followed by a timm model name)."
            ) from error
        self.encoder = cast(nn.Module, encoder)
        channels = [int(c) for c in encoder.out_channels][-NUM_DECODER_SCALES:]
        if min(channels) < 1:
            raise ConfigurationError(
                f'encoder {name!r} with encoder_depth={depth} has an empty scale '
                f'among the last {NUM_DECODER_SCALES} ({channels}); use '
                f'encoder_depth=5.'
            )
        self.out_channels: list[int] = channels
        self.output_stride: int = int(encoder.output_stride)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode an image batch.

        Args:
            x: ``(B, C, H, W)`` with ``H`` and ``W`` multiples of
                :attr:`output_stride`.

        Returns:
            The decoder scales, finest first, in channels-last memory format.
        """
        # Channels-last (NHWC) is the layout oneDNN and cuDNN convolve fastest;
        # the features keep it through translation, fusion and the decoder.
        x = x.contiguous(memory_format=torch.channels_last)
        features = cast(list[Tensor], self.encoder(x))
        return features[-NUM_DECODER_SCALES:]


class SpecificEncoders(nn.Module):
    """One encoder per modality, each with that modality's band count.

    .. versionadded:: 0.1

    Attributes:
        encoders: Modality name to its :class:`EncoderPyramid`.
        out_channels: Channels of each decoder scale (the same for all
            modalities: one architecture).
        output_stride: Stride of the coarsest scale.
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        backbone: str = 'resnet18',
        depth: int = 5,
        weights: str | None = None,
    ) -> None:
        """Build one encoder per modality.

        Args:
            modalities: Modality name to band count.
            backbone: Encoder name (see :class:`EncoderPyramid`).
            depth: Encoder depth.
            weights: Pretrained weights, or None.
        """
        super().__init__()
        self.encoders = nn.ModuleDict(
            {
                name: EncoderPyramid(backbone, bands, depth, weights)
                for name, bands in modalities.items()
            }
        )
        first = cast(EncoderPyramid, next(iter(self.encoders.values())))
        self.out_channels: list[int] = list(first.out_channels)
        self.output_stride: int = first.output_stride

    def forward(self, x: Tensor, modality: str) -> list[Tensor]:
        """Encode one modality.

        Args:
            x: Its images ``(B, C_m, H, W)``.
            modality: Its name.

        Returns:
            Its specific features per decoder scale.
        """
        return cast(list[Tensor], self.encoders[modality](x))


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """A 3x3 conv - BN - ReLU block (smp's ``Conv2dReLU``)."""
    return cast(
        nn.Module, Conv2dReLU(in_channels, out_channels, 3, padding=1, stride=stride)
    )


class _StemsAndSharedTrunk(nn.Module):
    """Per-modality stems, then one trunk whose weights all modalities share.

    Subclasses set :attr:`stems` and implement :meth:`trunk`. The stems'
    outputs of all modalities are stacked along the batch and go through the
    trunk in a single pass, so its batch-norm statistics mix modalities the
    same way in training and in evaluation.

    Attributes:
        stems: Modality name to its stem.
    """

    stems: nn.ModuleDict

    def trunk(self, x: Tensor) -> list[Tensor]:
        """The shared part: stacked stem outputs to the decoder scales.

        Args:
            x: Stem outputs of every modality, stacked along the batch.

        Returns:
            The stacked features per decoder scale, finest first.
        """
        raise NotImplementedError

    def forward(
        self,
        images: Sequence[Tensor],
        specific: Sequence[Sequence[Tensor]],
        modalities: Sequence[str],
    ) -> list[list[Tensor]]:
        """Compute shared features of several modalities in one trunk pass.

        Args:
            images: Per modality, its (padded) images ``(B_m, C_m, H, W)``.
            specific: Per modality, its specific features (unused here).
            modalities: The modality names, aligned with *images*.

        Returns:
            Per modality, its shared features per decoder scale ``(B_m, ...)``.
        """
        stems: list[Tensor] = [
            self.stems[name](x.contiguous(memory_format=torch.channels_last))
            for name, x in zip(modalities, images, strict=True)
        ]
        features = self.trunk(cat_batch(stems))
        return split_batch(features, [int(s.shape[0]) for s in stems])


class SharedBackbone(_StemsAndSharedTrunk):
    """Shared encoder: one backbone for all modalities behind per-modality stems.

    Each modality enters through its own stem (3x3 conv - BN - ReLU mapping its
    ``C_m`` bands to ``stem_channels``); the stems' outputs of all modalities
    are stacked along the batch and go through the one backbone in a single
    pass, so its batch-norm statistics mix modalities the same way in training
    and in evaluation.

    .. versionadded:: 0.1

    Attributes:
        stems: Modality name to its stem.
        backbone: The shared :class:`EncoderPyramid`.
        out_channels: Channels of each decoder scale.
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        backbone: str = 'resnet18',
        depth: int = 5,
        weights: str | None = None,
        stem_channels: int = 16,
    ) -> None:
        """Build the stems and the shared backbone.

        Args:
            modalities: Modality name to band count.
            backbone: Encoder name (see :class:`EncoderPyramid`).
            depth: Encoder depth.
            weights: Pretrained weights, or None.
            stem_channels: Common width the stems map every modality to.
        """
        super().__init__()
        self.stems = nn.ModuleDict(
            {
                name: _conv_bn_relu(bands, stem_channels, stride=1)
                for name, bands in modalities.items()
            }
        )
        self.backbone = EncoderPyramid(backbone, stem_channels, depth, weights)
        self.out_channels: list[int] = list(self.backbone.out_channels)

    def trunk(self, x: Tensor) -> list[Tensor]:
        """Run the shared backbone (see :meth:`_StemsAndSharedTrunk.trunk`)."""
        return cast(list[Tensor], self.backbone(x))


class SharedConvPyramid(_StemsAndSharedTrunk):
    """Shared encoder, light variant: a small plain-conv pyramid on the images.

    Each modality enters through its own stride-2 stem (3x3 conv - BN - ReLU
    mapping its ``C_m`` bands to ``stem_channels``); one stack of stride-2
    3x3 conv - BN - ReLU stages, whose weights every modality shares, then
    halves the resolution at every stage, and its last four outputs are the
    decoder scales (the specific encoders' strides). All modalities go
    through the shared stages in one pass (stacked along the batch). It
    costs a small fraction of a resnet18 per image, which keeps the STARS
    training step close to its specific encoders' cost (measured in
    :doc:`/benchmarks`).

    .. versionadded:: 0.1

    Attributes:
        stems: Modality name to its stride-2 stem.
        stages: The shared stride-2 stages.
        out_channels: Channels of each decoder scale.
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        output_stride: int = 32,
        stem_channels: int = 16,
        widths: Sequence[int] = (32, 64, 128, 256),
    ) -> None:
        """Build the stems and the shared stages.

        Args:
            modalities: Modality name to band count.
            output_stride: Stride of the coarsest decoder scale (16 or 32:
                the specific encoders' ``encoder_depth`` 4 or 5).
            stem_channels: Width the stems map every modality to.
            widths: Widths of the four decoder scales, finest first (with
                output stride 16 the finest scale is the stem's output).

        Raises:
            ConfigurationError: If *output_stride* is not 16 or 32 or
                *widths* does not give four positive widths.
        """
        super().__init__()
        if output_stride not in (16, 32):
            raise ConfigurationError(
                f'the light shared encoder needs an output stride of 16 or 32 '
                f'(encoder_depth 4 or 5), got {output_stride}.'
            )
        if len(widths) != NUM_DECODER_SCALES or min(widths) < 1:
            raise ConfigurationError(
                f'widths must give {NUM_DECODER_SCALES} positive widths, got '
                f'{list(widths)}.'
            )
        self.stems = nn.ModuleDict(
            {
                name: _conv_bn_relu(bands, stem_channels, stride=2)
                for name, bands in modalities.items()
            }
        )
        # Stride 2 after the stem, one more halving per stage up to the output
        # stride: 4 stages for 32, 3 for 16 (then the stem's output is the
        # finest scale and widths[0] is not used).
        stages = output_stride.bit_length() - 2
        channels = [stem_channels, *list(widths)[-stages:]]
        self.stages = nn.ModuleList(
            _conv_bn_relu(channels[i], channels[i + 1], stride=2) for i in range(stages)
        )
        self.out_channels: list[int] = channels[-NUM_DECODER_SCALES:]

    def trunk(self, x: Tensor) -> list[Tensor]:
        """Run the shared stages (see :meth:`_StemsAndSharedTrunk.trunk`)."""
        features = [x]
        for stage in self.stages:
            x = cast(Tensor, stage(x))
            features.append(x)
        return features[-NUM_DECODER_SCALES:]


class SharedProjection(nn.Module):
    """Shared encoder, cheap variant: a shared projection of specific features.

    At each decoder scale one 1x1 conv - BN - ReLU, whose weights every
    modality shares, maps that modality's specific features to its shared
    features. All modalities go through it in one pass (stacked along the
    batch).

    .. versionadded:: 0.1

    Attributes:
        projections: One projection per decoder scale.
        out_channels: Channels of each decoder scale.
    """

    def __init__(self, channels: Sequence[int]) -> None:
        """Build the per-scale projections.

        Args:
            channels: Specific (and shared) channels per decoder scale.
        """
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)
            )
            for c in channels
        )
        self.out_channels: list[int] = list(channels)

    def forward(
        self,
        images: Sequence[Tensor],
        specific: Sequence[Sequence[Tensor]],
        modalities: Sequence[str],
    ) -> list[list[Tensor]]:
        """Project the specific features of several modalities.

        Args:
            images: Per modality, its images (unused here).
            specific: Per modality, its specific features per decoder scale.
            modalities: The modality names, aligned with *specific*.

        Returns:
            Per modality, its shared features per decoder scale.
        """
        projected = [
            projection(cat_batch([feats[scale] for feats in specific]))
            for scale, projection in enumerate(self.projections)
        ]
        return split_batch(projected, [int(feats[0].shape[0]) for feats in specific])


#: Any of the shared encoders (the same ``forward(images, specific, names)``).
SharedEncoder = SharedBackbone | SharedConvPyramid | SharedProjection


def build_shared_encoder(
    kind: str,
    modalities: Mapping[str, int],
    backbone: str,
    depth: int,
    weights: str | None,
    specific_channels: Sequence[int],
    stem_channels: int = 16,
    output_stride: int | None = None,
) -> SharedEncoder:
    """Build the shared encoder named by *kind*.

    Args:
        kind: ``'projection'`` (:class:`SharedProjection`), ``'light'``
            (:class:`SharedConvPyramid`), ``'backbone'``
            (:class:`SharedBackbone` with the specific encoders' architecture
            *backbone*) or an encoder name (:class:`SharedBackbone` with that
            encoder, e.g. a lighter one than the specific encoders').
        modalities: Modality name to band count.
        backbone: Encoder name of the specific encoders.
        depth: Encoder depth.
        weights: Pretrained weights, or None.
        specific_channels: Specific channels per decoder scale.
        stem_channels: Stem width of :class:`SharedBackbone`.
        output_stride: Coarsest stride of the specific encoders; a shared
            backbone must reach the same (None: no check).

    Returns:
        The shared encoder.

    Raises:
        ConfigurationError: If *kind* names no encoder, or the shared
            backbone's strides differ from the specific encoders'.
    """
    if kind == 'projection':
        return SharedProjection(specific_channels)
    if kind == 'light':
        return SharedConvPyramid(modalities, output_stride or 32, stem_channels)
    name = backbone if kind == 'backbone' else kind
    try:
        shared = SharedBackbone(modalities, name, depth, weights, stem_channels)
    except ConfigurationError as error:
        raise ConfigurationError(
            f"shared_encoder must be 'projection', 'light', 'backbone' or an "
            f'encoder name; {error}'
        ) from error
    stride = shared.backbone.output_stride
    if output_stride is not None and stride != output_stride:
        raise ConfigurationError(
            f'shared_encoder {name!r} reaches stride {stride} but the specific '
            f'encoders ({backbone!r}) reach {output_stride}; choose a shared '
            f'encoder with the same strides.'
        )
    return shared
