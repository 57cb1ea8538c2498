"""Cross-modal translators ``T_ij`` between specific feature spaces."""

from collections.abc import Sequence
from typing import cast

from torch import Tensor, nn

from ..errors import ConfigurationError


def _translator_scale(
    channels: int, targets: int, hidden: int, blocks: int
) -> nn.Sequential:
    """Translators from one source to *targets* targets at one scale.

    One translator is a light inverted bottleneck: 1x1 conv to *hidden*
    channels - BN - ReLU, then *blocks* times a depthwise 3x3 conv - BN - ReLU
    (consecutive blocks joined by a 1x1 conv - BN - ReLU), then a 1x1 conv
    back to *channels*. The translators of the different targets are
    independent (no weight is shared between them) but run as one module: the
    first conv produces ``targets * hidden`` channels, the later convs are
    depthwise or grouped by target.

    Args:
        channels: Source (and target) channels at this scale.
        targets: Number of target modalities.
        hidden: Hidden width of one translator.
        blocks: Number of depthwise 3x3 blocks.

    Returns:
        A module mapping ``(B, channels, h, w)`` to
        ``(B, targets * channels, h, w)``, target after target.
    """
    width = targets * hidden
    layers: list[nn.Module] = [
        nn.Conv2d(channels, width, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    for block in range(blocks):
        if block > 0:
            layers += [
                nn.Conv2d(width, width, 1, groups=targets, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.Conv2d(width, targets * channels, 1, groups=targets))
    return nn.Sequential(*layers)


class TranslatorBank(nn.Module):
    """The translators ``T_ij`` from one source modality ``i`` to all others.

    At each decoder scale ``l``, each ``T_ij`` is a light inverted bottleneck
    of width ``min(C_l, hidden)``: 1x1 conv, ``blocks`` depthwise 3x3 convs,
    1x1 conv back to the ``C_l`` channels of ``j``'s specific features, with
    BN - ReLU between (see :func:`_translator_scale`). The translators of one
    source are evaluated together (grouped convolutions) to save kernel
    launches; their weights are independent.

    .. versionadded:: 0.1

    Attributes:
        targets: Target modality names, in output order.
        scales: One module per decoder scale.
    """

    def __init__(
        self,
        channels: Sequence[int],
        targets: Sequence[str],
        hidden: int = 64,
        blocks: int = 1,
    ) -> None:
        """Build the translators of one source.

        Args:
            channels: Specific channels per decoder scale.
            targets: Target modality names.
            hidden: Maximum hidden width of one translator.
            blocks: Number of depthwise 3x3 blocks per translator and scale.

        Raises:
            ConfigurationError: If *hidden* or *blocks* is below 1.
        """
        super().__init__()
        if hidden < 1 or blocks < 1:
            raise ConfigurationError(
                f'translator_channels and translator_blocks must be >= 1, got '
                f'{hidden} and {blocks}.'
            )
        self.targets = list(targets)
        self.scales = nn.ModuleList(
            _translator_scale(c, len(self.targets), min(c, hidden), blocks)
            for c in channels
        )

    def forward(self, features: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        """Translate one source's specific features to every target.

        Args:
            features: The source's specific features per decoder scale.

        Returns:
            Target name to the translated features per scale, each with the
            source feature's shape.
        """
        out: dict[str, list[Tensor]] = {name: [] for name in self.targets}
        for feature, layer in zip(features, self.scales, strict=True):
            for name, chunk in zip(
                self.targets,
                layer(feature).chunk(len(self.targets), dim=1),
                strict=True,
            ):
                out[name].append(chunk)
        return out


class CrossModalTranslation(nn.Module):
    """All translators ``T_ij`` for every ordered pair of distinct modalities.

    .. versionadded:: 0.1

    Attributes:
        banks: Source modality name to its :class:`TranslatorBank`.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        channels: Sequence[int],
        hidden: int = 64,
        blocks: int = 1,
    ) -> None:
        """Build ``M (M - 1)`` translators.

        Args:
            modalities: Modality names.
            channels: Specific channels per decoder scale.
            hidden: Maximum hidden width of one translator.
            blocks: Number of depthwise 3x3 blocks per translator and scale.
        """
        super().__init__()
        self.banks = nn.ModuleDict(
            {
                source: TranslatorBank(
                    channels, [t for t in modalities if t != source], hidden, blocks
                )
                for source in modalities
            }
        )

    def forward(
        self, features: Sequence[Tensor], source: str
    ) -> dict[str, list[Tensor]]:
        """Translate *source*'s specific features to every other modality.

        Args:
            features: *source*'s specific features per decoder scale.
            source: Source modality name.

        Returns:
            Target name to ``T_source,target`` per scale.
        """
        return cast(dict[str, list[Tensor]], self.banks[source](features))
