"""Where the sliding windows go and how much each of their pixels weighs."""

import math

import numpy as np

from ..errors import ConfigurationError


def check_tiling(patch_size: int, overlap: int) -> int:
    """Validate the sliding-window parameters and return the stride.

    Args:
        patch_size: Side of a square window, in output pixels.
        overlap: Pixels shared by two neighbouring windows.

    Returns:
        The step between window origins, ``patch_size - overlap``.

    Raises:
        ConfigurationError: If *patch_size* is not positive or *overlap* is not
            in ``[0, patch_size)``.
    """
    if patch_size < 1:
        raise ConfigurationError(
            f'patch_size must be a positive number of pixels, got {patch_size}.'
        )
    if not 0 <= overlap < patch_size:
        raise ConfigurationError(
            f'overlap must be at least 0 and smaller than patch_size={patch_size}, '
            f'got {overlap}.'
        )
    return patch_size - overlap


def window_origins(length: int, patch_size: int, stride: int) -> list[int]:
    """Start offsets of the windows that cover ``[0, length)`` along one axis.

    Windows start every *stride* pixels; the last one is moved back so that it
    ends exactly at *length* (so no window reads more than needed), unless the
    whole axis is shorter than one window, in which case a single window starts
    at 0 and runs past the end.

    Args:
        length: Number of pixels along the axis.
        patch_size: Window side.
        stride: Step between window starts.

    Returns:
        Increasing start offsets; together the windows cover every pixel.
    """
    if length <= patch_size:
        return [0]
    starts = list(range(0, length - patch_size, stride))
    starts.append(length - patch_size)
    return starts


def window_weight(patch_size: int) -> np.typing.NDArray[np.float32]:
    """Blending weight of the pixels of one window.

    The weight is the outer product of a raised cosine, ``sin^2(pi (i + 0.5) /
    n)`` along each axis: largest at the centre, falling smoothly towards the
    borders where a model sees the least context, and never exactly zero, so
    every pixel of a window counts (a pixel near the raster's edge that only
    one window reaches is still predicted).

    Args:
        patch_size: Window side ``n``.

    Returns:
        ``(n, n)`` float32 weights in ``(0, 1]``.
    """
    ramp = np.array(
        [math.sin(math.pi * (i + 0.5) / patch_size) ** 2 for i in range(patch_size)],
        dtype=np.float64,
    )
    return np.outer(ramp, ramp).astype(np.float32)
