"""The interface every segmentation model of the package offers the task."""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ..datasets.keys import check_modalities
from ..errors import ConfigurationError
from .outputs import SegmentationOutput


def to_channels_last[M: nn.Module](model: M) -> M:
    """Store a model's 4-D weights in channels-last (NHWC) memory format.

    oneDNN and cuDNN run these convolutions fastest in NHWC (the encoders
    also feed their inputs in that format); :func:`build_model` applies this
    to every model it builds, so constructors stay free of it. Values are
    unchanged.

    Args:
        model: The model, modified in place.

    Returns:
        The same model.
    """
    return model.to(memory_format=torch.channels_last)


class SegmentationModel(nn.Module):
    """Base of the package's models: modalities in, logits out, any missing.

    Subclasses build their parts and implement :meth:`forward`;
    :meth:`forward_scenarios` evaluates several missing-modality scenarios of
    one batch, by default one :meth:`forward` per scenario (models that can
    share work between scenarios override it).

    .. versionadded:: 0.1

    Attributes:
        modalities: Modality name to band count, in the model's order.
        num_classes: Number of classes ``K``.
    """

    def __init__(
        self, modalities: Mapping[str, int], num_classes: int, minimum: int, name: str
    ) -> None:
        """Check and keep the modalities and the number of classes.

        Args:
            modalities: Modality name to band count, ordered.
            num_classes: Number of classes.
            minimum: Fewest modalities the model accepts.
            name: Model name, for messages.

        Raises:
            ConfigurationError: If the modalities or *num_classes* are invalid.
        """
        super().__init__()
        check_modalities(modalities, f'{name} modalities', minimum)
        if num_classes < 1:
            raise ConfigurationError(f'num_classes must be >= 1, got {num_classes}.')
        self.modalities: dict[str, int] = dict(modalities)
        self.num_classes = num_classes

    @property
    def modality_names(self) -> list[str]:
        """Modality names in the model's order (the columns of ``available``)."""
        return list(self.modalities)

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        available: Tensor | None = None,
        dropped: Tensor | None = None,
        return_alignment: bool | None = None,
    ) -> SegmentationOutput:
        """Segment a batch in which any modality may be missing per sample.

        Args:
            inputs: Modality name to images ``(B, C_m, H, W)``.
            available: Optional boolean ``(B, M)`` availability.
            dropped: Optional boolean ``(B, M)`` modalities to treat as missing.
            return_alignment: Whether to fill the alignment outputs.

        Returns:
            The :class:`SegmentationOutput`.
        """
        raise NotImplementedError

    def forward_scenarios(
        self,
        inputs: Mapping[str, Tensor],
        available: Tensor | None,
        scenarios: Sequence[Tensor],
    ) -> list[Tensor]:
        """Logits of one batch under several availabilities.

        Args:
            inputs: Modality name to images ``(B, C_m, H, W)``.
            available: Optional boolean ``(B, M)`` availability (unused here:
                each scenario mask says what to use).
            scenarios: Boolean ``(B, M)`` masks of the modalities each
                scenario uses, each within the availability.

        Returns:
            Per scenario, the logits ``(R, K, H, W)`` of the ``R`` rows whose
            mask has a True entry (in batch order): those of
            ``forward(inputs restricted to these rows, mask[rows]).logits``.
        """
        reference = next(iter(inputs.values()))
        results = []
        for keep in scenarios:
            rows = keep.any(dim=1)
            columns = keep.any(dim=0).tolist()
            scenario_inputs = {
                name: inputs[name][rows]
                for name, used in zip(self.modality_names, columns, strict=True)
                if used and name in inputs
            }
            if not scenario_inputs:
                shape = (0, self.num_classes, *reference.shape[-2:])
                results.append(reference.new_zeros(shape))
                continue
            results.append(self(scenario_inputs, keep[rows]).logits)
        return results
