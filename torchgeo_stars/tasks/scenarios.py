"""Missing-modality scenarios: every non-empty subset of the modalities."""

from collections.abc import Sequence
from itertools import combinations

import torch
from torch import Tensor


def modality_scenarios(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """List every non-empty subset of *modalities*, largest first.

    With optical, SAR and DSM this gives the seven scenarios: all three, the
    three pairs (one modality missing) and the three single modalities.

    Args:
        modalities: Modality names in the model's order.

    Returns:
        Subsets as tuples keeping the order of *modalities*.
    """
    return [
        subset
        for size in range(len(modalities), 0, -1)
        for subset in combinations(modalities, size)
    ]


def scenario_name(subset: Sequence[str]) -> str:
    """Name a scenario by the modalities it keeps, e.g. ``optical+sar``.

    Args:
        subset: The modalities present in the scenario.

    Returns:
        The names joined with ``+``.
    """
    return '+'.join(subset)


def scenario_availability(
    available: Tensor, modalities: Sequence[str], subset: Sequence[str]
) -> Tensor:
    """Restrict a batch's availability to the modalities of one scenario.

    Args:
        available: Boolean ``(B, M)`` availability found in the data.
        modalities: Modality names, in the column order of *available*.
        subset: Modalities the scenario keeps; the others are removed.

    Returns:
        Boolean ``(B, M)``: available in the data and kept by the scenario.
    """
    keep = torch.tensor(
        [name in subset for name in modalities],
        dtype=torch.bool,
        device=available.device,
    )
    return available & keep


def scenario_names(modalities: Sequence[str]) -> list[str]:
    """Names of every missing-modality scenario, largest first.

    Args:
        modalities: Modality names.

    Returns:
        Scenario names such as ``optical+sar+dsm`` ... ``dsm``.
    """
    return [scenario_name(subset) for subset in modality_scenarios(modalities)]
