"""Pixel sampling for the PSA loss: class-balanced and uniform.

Both samplers work on a label tensor of any shape (typically ``(B, h, w)``) and
return flat indices into ``mask.reshape(-1)``. They are vectorised: a random
permutation of the candidate pixels, a stable sort by class and a rank within
each class replace any loop over pixels or classes.
"""

import torch
from torch import Tensor

from ..errors import ConfigurationError


def _candidates(
    mask: Tensor, n_per_class: int, ignore_index: int | None, valid: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Flat indices and labels of the pixels that may be sampled.

    Args:
        mask: Integer labels of any shape.
        n_per_class: Pixels asked per class (checked here).
        ignore_index: Label never sampled, if any.
        valid: Optional boolean tensor of ``mask``'s shape; ``False`` pixels
            are never sampled.

    Returns:
        Flat indices (ascending) and their labels.

    Raises:
        ConfigurationError: If ``n_per_class`` is negative, ``mask`` is not an
            integer tensor or ``valid`` has another shape.
    """
    if n_per_class < 0:
        raise ConfigurationError(
            f'PSA sampling: n_per_class is {n_per_class}; give a number >= 0.'
        )
    if mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
        raise ConfigurationError(
            f'PSA sampling: mask has dtype {mask.dtype}; give integer class labels.'
        )
    keep = torch.ones_like(mask, dtype=torch.bool)
    if ignore_index is not None:
        keep &= mask != ignore_index
    if valid is not None:
        if valid.shape != mask.shape:
            raise ConfigurationError(
                f'PSA sampling: valid has shape {tuple(valid.shape)} but mask has'
                f' {tuple(mask.shape)}; give one flag per pixel.'
            )
        keep &= valid.bool()
    index = keep.reshape(-1).nonzero().squeeze(1)
    return index, mask.reshape(-1)[index]


def _permutation(
    n: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """A random permutation of ``range(n)`` drawn from ``generator``.

    Args:
        n: Length.
        generator: Random source; the global one when ``None``.
        device: Device of the result.

    Returns:
        A permutation, on ``device``.
    """
    where = generator.device if generator is not None else device
    return torch.randperm(n, generator=generator, device=where).to(device)


def _class_ranks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Group positions by label and rank them within their label.

    Args:
        labels: 1-D labels.

    Returns:
        ``order`` (positions sorted by label, stable) and the rank of each
        sorted position within its label (0, 1, ...).
    """
    sorted_labels, order = torch.sort(labels, stable=True)
    _, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    ranks = torch.arange(labels.numel(), device=labels.device)
    ranks = ranks - torch.repeat_interleave(starts, counts)
    return order, ranks


def class_balanced_sample(
    mask: Tensor,
    n_per_class: int,
    ignore_index: int | None = None,
    generator: torch.Generator | None = None,
    valid: Tensor | None = None,
) -> Tensor:
    """Draw up to ``n_per_class`` pixels of every class present in ``mask``.

    Within each class the pixels are drawn uniformly without replacement; a
    class with fewer pixels than asked gives all of them. Classes absent from
    ``mask`` give nothing. ``ignore_index`` pixels and pixels where ``valid`` is
    ``False`` are never drawn.

    Args:
        mask: Integer labels of any shape, e.g. ``(B, h, w)``.
        n_per_class: Most pixels drawn per class.
        ignore_index: Label never drawn, if any.
        generator: Random source (reproducible draws); the global one when
            ``None``. It may live on another device than ``mask``.
        valid: Optional boolean tensor of ``mask``'s shape; only ``True``
            pixels may be drawn.

    Returns:
        1-D ``long`` flat indices into ``mask.reshape(-1)``, on ``mask``'s
        device, grouped by ascending class and in random order within a class.

    Raises:
        ConfigurationError: If ``n_per_class`` is negative, ``mask`` is not
            integer or ``valid`` has another shape.
    """
    index, labels = _candidates(mask, n_per_class, ignore_index, valid)
    permutation = _permutation(index.numel(), generator, mask.device)
    order, ranks = _class_ranks(labels[permutation])
    chosen = permutation[order][ranks < n_per_class]
    return index[chosen]


def random_sample(
    mask: Tensor,
    n_per_class: int,
    ignore_index: int | None = None,
    generator: torch.Generator | None = None,
    valid: Tensor | None = None,
) -> Tensor:
    r"""Draw pixels uniformly, as many as :func:`class_balanced_sample` would.

    The ablation of class-balanced sampling: the total count is
    :math:`\sum_c \min(n_c, n_{per\,class})` over the classes present, but
    the pixels are drawn uniformly without replacement among all drawable
    pixels, so classes appear in proportion to their frequency.

    Args:
        mask: Integer labels of any shape, e.g. ``(B, h, w)``.
        n_per_class: Sets the total count as described above.
        ignore_index: Label never drawn, if any.
        generator: Random source; the global one when ``None``.
        valid: Optional boolean tensor of ``mask``'s shape; only ``True``
            pixels may be drawn.

    Returns:
        1-D ``long`` flat indices into ``mask.reshape(-1)``, in random order.

    Raises:
        ConfigurationError: If ``n_per_class`` is negative, ``mask`` is not
            integer or ``valid`` has another shape.
    """
    index, labels = _candidates(mask, n_per_class, ignore_index, valid)
    _, counts = torch.unique(labels, return_counts=True)
    total = int(counts.clamp_max(n_per_class).sum())
    permutation = _permutation(index.numel(), generator, mask.device)
    return index[permutation[:total]]
