"""Running modules on the sub-batch of samples that have a modality."""

from collections.abc import Sequence

import torch
from torch import Tensor


def cat_batch(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate along the batch, without a copy for a single tensor.

    Args:
        tensors: Tensors with equal trailing shapes.

    Returns:
        Their concatenation along dimension 0.
    """
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors))


def split_batch(features: Sequence[Tensor], sizes: Sequence[int]) -> list[list[Tensor]]:
    """Undo :func:`cat_batch` for a pyramid: split every scale along the batch.

    Args:
        features: Per scale, the stacked ``(sum(sizes), ...)`` features.
        sizes: Rows of each stacked part, in stacking order.

    Returns:
        Per part, its features per scale.
    """
    per_scale = [torch.split(f, list(sizes)) for f in features]
    return [[scale[k] for scale in per_scale] for k in range(len(sizes))]


def row_index(rows: Tensor) -> Tensor | None:
    """Indices of the selected rows, or None when every row is selected.

    Args:
        rows: Boolean ``(B,)`` selection.

    Returns:
        The int64 indices of the True entries, or None if all are True (the
        caller then uses the whole batch without gathering).
    """
    if bool(rows.all()):
        return None
    return rows.nonzero().flatten()


def take_rows(x: Tensor, index: Tensor | None) -> Tensor:
    """Gather the rows *index* selects (all when None).

    Args:
        x: ``(B, ...)``.
        index: Row indices from :func:`row_index`, or None.

    Returns:
        ``(len(index), ...)``, or *x* itself.
    """
    return x if index is None else x.index_select(0, index)


def scatter_rows(values: Tensor, index: Tensor | None, batch_size: int) -> Tensor:
    """Place a sub-batch back into a zero-filled full batch.

    Differentiable with respect to *values*.

    Args:
        values: ``(len(index), ...)`` sub-batch.
        index: Its row indices in the full batch, or None if it is the full
            batch.
        batch_size: ``B``.

    Returns:
        ``(B, ...)``: *values* at *index*, zeros elsewhere.
    """
    if index is None:
        return values
    full = values.new_zeros((batch_size, *values.shape[1:]))
    return full.index_copy(0, index, values)
