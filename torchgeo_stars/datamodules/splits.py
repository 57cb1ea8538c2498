"""Geographic train / val / test stripes on a dataset's pixel grid.

The stripes are cut on whole pixels of the grid that TorchGeo's samplers snap
to, so every patch is read on that grid (without resampling when it is the
reference modality's own grid), and the validation and test stripes are a
whole number of patches wide, so the grid of patches over one stripe never
reaches into its neighbours.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import shapely
from torchgeo.datasets import GeoDataset

from ..errors import DataError

#: Split names, in their order along the split axis.
SPLITS = ('train', 'val', 'test')

Box = tuple[float, float, float, float]

# Tolerance, in pixels, when snapping coordinates to the grid
_SNAP = 1e-6


@dataclass(frozen=True)
class Stripe:
    """One split's area.

    .. versionadded:: 0.1

    Attributes:
        name: ``'train'``, ``'val'`` or ``'test'``.
        box: ``(xmin, ymin, xmax, ymax)`` in the dataset's CRS.
        pixels: Width (``split_axis='x'``) or height (``'y'``) in pixels.
    """

    name: str
    box: Box
    pixels: int

    @property
    def polygon(self) -> shapely.Polygon:
        """The box as a polygon.

        Returns:
            A shapely box.
        """
        return shapely.box(*self.box)


def grid_area(dataset: GeoDataset, anchor: tuple[float, float]) -> Box:
    """Bounding box of a dataset's footprint, shrunk to whole grid pixels.

    Args:
        dataset: Any GeoDataset; its ``res`` is the pixel size.
        anchor: ``(x, y)`` of a pixel corner of the grid (e.g. the top-left
            corner of the reference modality's files).

    Returns:
        ``(xmin, ymin, xmax, ymax)``: the largest box of whole grid pixels
        inside the footprint's bounding box.
    """
    xres, yres = dataset.res
    ax, ay = anchor
    xmin, ymin, xmax, ymax = dataset.index.total_bounds
    x0 = ax + math.ceil((xmin - ax) / xres - _SNAP) * xres
    x1 = ax + math.floor((xmax - ax) / xres + _SNAP) * xres
    y0 = ay + math.ceil((ymin - ay) / yres - _SNAP) * yres
    y1 = ay + math.floor((ymax - ay) / yres + _SNAP) * yres
    return (x0, y0, max(x0, x1), max(y0, y1))


def _whole_patches(fraction: float, total: int, patch: int) -> int:
    """Pixels of a stripe of *fraction* of *total*, rounded to whole patches."""
    if fraction <= 0:
        return 0
    return max(1, round(fraction * total / patch)) * patch


def cut_stripes(
    area: Box,
    res: tuple[float, float],
    fractions: Sequence[float],
    axis: Literal['x', 'y'],
    patch: int,
) -> list[Stripe]:
    """Cut an area into train, val and test stripes of whole pixels.

    The stripes follow each other west to east (``axis='x'``) or north to
    south (``'y'``). Validation and test stripes get their fraction of the
    area rounded to a whole number of patches (at least one when the fraction
    is positive); training gets the rest. Splits with fraction 0 are left out.

    Args:
        area: ``(xmin, ymin, xmax, ymax)`` on the pixel grid.
        res: ``(xres, yres)``.
        fractions: Train, val and test fractions (the train one is not used).
        axis: Split axis.
        patch: Patch size in pixels.

    Returns:
        The stripes of the splits with a positive fraction, in order.

    Raises:
        DataError: If validation and test leave no training area.
    """
    xmin, ymin, xmax, ymax = area
    xres, yres = res
    extent = (xmax - xmin) / xres if axis == 'x' else (ymax - ymin) / yres
    total = round(extent)
    val = _whole_patches(fractions[1], total, patch)
    test = _whole_patches(fractions[2], total, patch)
    train = total - val - test
    if train <= 0:
        span = 'columns' if axis == 'x' else 'rows'
        raise DataError(
            f'the train area is empty: the area {tuple(round(v, 2) for v in area)} '
            f'has {total} pixel {span}, and the val and test stripes, rounded to '
            f'whole {patch}-pixel patches, take {val} and {test} of them. Use a '
            'smaller patch_size or smaller val_fraction / test_fraction, or give '
            'a larger area.'
        )
    stripes = []
    start = 0
    for name, pixels in zip(SPLITS, (train, val, test), strict=True):
        if pixels == 0:
            continue
        stop = start + pixels
        if axis == 'x':
            box = (xmin + start * xres, ymin, xmin + stop * xres, ymax)
        else:
            box = (xmin, ymax - stop * yres, xmax, ymax - start * yres)
        stripes.append(Stripe(name, box, pixels))
        start = stop
    return stripes


def inner_box(box: Box, res: tuple[float, float], margin: float = 1e-3) -> Box:
    """Shrink a box by a fraction of a pixel on every side.

    A stripe exactly k patches wide can count as a little more than k patches
    after floating-point rounding, which would make TorchGeo's
    :class:`~torchgeo.samplers.GriddedPatchSampler` add a column and shift the
    grid by half a patch; sampling the slightly smaller box avoids that.

    Args:
        box: ``(xmin, ymin, xmax, ymax)``.
        res: ``(xres, yres)``.
        margin: Shrink distance in pixels.

    Returns:
        The smaller box.
    """
    dx, dy = margin * res[0], margin * res[1]
    return (box[0] + dx, box[1] + dy, box[2] - dx, box[3] - dy)


def random_patch_margin(patch: int, res: tuple[float, float]) -> float:
    """Distance TorchGeo's RandomPatchSampler keeps patch centres from edges.

    Args:
        patch: Patch size in pixels.
        res: ``(xres, yres)``.

    Returns:
        Half the patch diagonal, in CRS units.
    """
    return math.hypot(patch * res[0] / 2, patch * res[1] / 2)
