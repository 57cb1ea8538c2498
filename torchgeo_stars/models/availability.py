"""Checking model inputs and resolving which modality each sample can use."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import DataError


@dataclass(frozen=True)
class Availability:
    """Which modality each sample of a batch has, and which the fusion may use.

    .. versionadded:: 0.1

    Attributes:
        available: Boolean ``(B, M)``: the modality is in the data for that
            sample (the model's modality order).
        usable: Boolean ``(B, M)``: available and not dropped, the modalities
            the fusion uses; every row has at least one True.
        batch_size: ``B``.
        height: Input height ``H``.
        width: Input width ``W``.
    """

    available: Tensor
    usable: Tensor
    batch_size: int
    height: int
    width: int


def _rows(mask: Tensor) -> list[int]:
    """Indices of the True entries of a 1-D boolean tensor, for messages."""
    return [int(i) for i in mask.nonzero().flatten()]


def _flags(
    flags: Tensor | None, name: str, batch_size: int, names: Sequence[str]
) -> Tensor | None:
    """Check the shape of an ``available`` / ``dropped`` argument.

    Args:
        flags: The argument, or None.
        name: Its name, for messages.
        batch_size: Expected ``B``.
        names: Modality names (columns).

    Returns:
        The flags as a boolean tensor, or None.

    Raises:
        DataError: If the shape is not ``(B, M)``.
    """
    if flags is None:
        return None
    if tuple(flags.shape) != (batch_size, len(names)):
        raise DataError(
            f'{name} has shape {tuple(flags.shape)} but must be (batch size, number '
            f'of modalities) = ({batch_size}, {len(names)}), columns in the order '
            f'{list(names)}.'
        )
    return flags.to(torch.bool)


def resolve_availability(
    inputs: Mapping[str, Tensor],
    modalities: Mapping[str, int],
    available: Tensor | None = None,
    dropped: Tensor | None = None,
) -> Availability:
    """Validate a model's inputs and work out per-sample availability.

    A modality absent from *inputs* is missing for every sample. A modality in
    *inputs* is available for the samples *available* marks (all of them when
    *available* is None). *dropped* (modality dropout) removes modalities from
    what the fusion may use; entries of *dropped* for unavailable modalities
    are ignored.

    Args:
        inputs: Modality name to its image ``(B, C_m, H, W)``.
        modalities: Modality name to band count, in the model's order.
        available: Optional boolean ``(B, M)`` availability, columns in the
            model's modality order.
        dropped: Optional boolean ``(B, M)`` modalities to treat as missing in
            the fusion.

    Returns:
        The resolved :class:`Availability`, on the inputs' device.

    Raises:
        DataError: If *inputs* is empty, names a modality the model does not
            know, has a wrong band count or rank, disagrees on batch size or
            image size between modalities; if *available* / *dropped* has the
            wrong shape or marks as available a modality absent from *inputs*;
            or if a sample is left with no usable modality.
    """
    names = list(modalities)
    if not inputs:
        raise DataError(
            f'the model got no input image; give at least one of the modalities '
            f'{names}.'
        )
    unknown = [name for name in inputs if name not in modalities]
    if unknown:
        raise DataError(
            f'unknown modality {unknown[0]!r}: this model was built for the '
            f'modalities {names}; rename the input or rebuild the model.'
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for name, image in inputs.items():
        if image.ndim != 4:
            raise DataError(
                f'modality {name!r}: expected an image batch (B, C, H, W), got a '
                f'tensor of shape {tuple(image.shape)}.'
            )
        if image.shape[1] != modalities[name]:
            raise DataError(
                f'modality {name!r} has {image.shape[1]} bands but the model was '
                f"built for {modalities[name]}; check the data or the model's "
                f'modalities argument.'
            )
        shapes[name] = (image.shape[0], image.shape[2], image.shape[3])
    first = next(iter(inputs))
    for name, shape in shapes.items():
        if shape != shapes[first]:
            raise DataError(
                f'modality {name!r} has batch size x height x width {shape} but '
                f'{first!r} has {shapes[first]}; modalities must be co-registered '
                f'on the same grid.'
            )
    batch_size, height, width = shapes[first]
    device = inputs[first].device

    present = torch.tensor([name in inputs for name in names], device=device)
    flags = _flags(available, 'available', batch_size, names)
    if flags is None:
        resolved = present.expand(batch_size, -1).clone()
    else:
        resolved = flags.to(device)
        phantom = resolved & ~present
        if phantom.any():
            column = int(phantom.any(dim=0).nonzero()[0])
            raise DataError(
                f'available marks modality {names[column]!r} as present for '
                f'samples {_rows(phantom[:, column])} but inputs has no '
                f'{names[column]!r} image; give the image or set its flag to False.'
            )
    drop = _flags(dropped, 'dropped', batch_size, names)
    usable = resolved if drop is None else resolved & ~drop.to(device)
    empty = ~usable.any(dim=1)
    if empty.any():
        raise DataError(
            f'samples {_rows(empty)} have no usable modality (all of {names} '
            f'missing or dropped); every sample needs at least one.'
        )
    return Availability(
        available=resolved,
        usable=usable,
        batch_size=batch_size,
        height=height,
        width=width,
    )


def modality_dropout(
    available: Tensor, p_drop: float, generator: torch.Generator | None = None
) -> Tensor:
    """Choose modalities to drop, keeping at least one per sample.

    Each available modality of each sample is dropped with probability
    *p_drop*; a sample that would lose all of them keeps one, chosen uniformly
    among its available modalities. The draw is made on the CPU (so a seeded
    *generator* gives the same choice on any device) and the rest on the
    device of *available*, without waiting for it.

    Args:
        available: Boolean ``(B, M)`` availability.
        p_drop: Probability of dropping each available modality.
        generator: Optional random generator, for reproducibility.

    Returns:
        Boolean ``(B, M)`` mask of dropped modalities, a subset of *available*.
    """
    if p_drop <= 0:
        return torch.zeros_like(available)
    draw = torch.rand(available.shape, generator=generator, device='cpu').to(
        available.device, non_blocking=True
    )
    dropped = (draw < p_drop) & available
    lost_all = available.any(dim=1) & ~(available & ~dropped).any(dim=1)
    # Where a sample lost everything, keep the available modality with the
    # smallest draw (uniform among them); elsewhere nothing changes. Applied
    # to every row rather than after a `lost_all.any()` test: no host sync.
    scores = torch.where(available, draw, torch.inf)
    keep = torch.nn.functional.one_hot(scores.argmin(dim=1), available.shape[1])
    return torch.where(lost_all[:, None], dropped & ~keep.bool(), dropped)
