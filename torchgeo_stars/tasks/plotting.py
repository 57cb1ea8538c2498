"""Figures of a sample: each modality, the label, and a prediction per scenario."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor

from ..datasets.keys import MASK, image_key
from ..datasets.plotting import quicklook


def default_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct RGB colours for *num_classes* classes (matplotlib's tab20).

    Args:
        num_classes: Number of classes.

    Returns:
        One ``(r, g, b)`` tuple in 0..255 per class.
    """
    cmap = plt.get_cmap('tab20')
    return [
        tuple(int(255 * c) for c in cmap(index % 20)[:3])  # type: ignore[misc]
        for index in range(num_classes)
    ]


def plot_scenarios(
    images: Mapping[str, Tensor],
    mask: Tensor | None,
    predictions: Mapping[str, Tensor],
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]] | None = None,
    available: Mapping[str, bool] | None = None,
    rgb_bands: Mapping[str, Sequence[int]] | None = None,
) -> Figure:
    """Plot one sample's modalities, label and predictions side by side.

    Args:
        images: Modality name to its ``(C, H, W)`` image.
        mask: ``(H, W)`` class indices, or None when there is no label.
        predictions: Scenario name to a ``(H, W)`` predicted class map.
        class_names: Class names, for the legend.
        colors: RGB colour per class (0..255); defaults to :func:`default_colors`.
        available: Modality name to whether the sample has it; a missing one
            is drawn as an empty panel titled "(missing)".
        rgb_bands: Modality to the indexes of its red, green and blue bands;
            the others show as :func:`~torchgeo_stars.datasets.quicklook`
            shows them (first three bands, or the first in grey).

    Returns:
        The figure (the caller closes it).
    """
    colors = list(colors) if colors is not None else default_colors(len(class_names))
    cmap = ListedColormap(np.asarray(colors, dtype=float) / 255)
    panels = len(images) + (mask is not None) + len(predictions)
    figure, axes = plt.subplots(1, panels, figsize=(3 * panels, 3.4), squeeze=False)
    row = list(axes[0])
    for (name, image), axis in zip(images.items(), row, strict=False):
        present = available is None or available.get(name, True)
        if present:
            axis.imshow(quicklook(image, (rgb_bands or {}).get(name)), cmap='gray')
        axis.set_title(name if present else f'{name} (missing)')
    rest = row[len(images) :]
    label_kwargs = {'cmap': cmap, 'vmin': 0, 'vmax': len(class_names) - 1}
    label_kwargs['interpolation'] = 'nearest'
    if mask is not None:
        labels = mask.cpu().numpy()
        # Ignored / nodata labels (outside 0..K-1) are left blank.
        shown = np.ma.masked_where((labels < 0) | (labels >= len(class_names)), labels)
        rest[0].imshow(shown, **label_kwargs)
        rest[0].set_title('label')
        rest = rest[1:]
    for (scenario, prediction), axis in zip(predictions.items(), rest, strict=True):
        axis.imshow(prediction.cpu().numpy(), **label_kwargs)
        axis.set_title(scenario, fontsize=9)
    for axis in row:
        axis.set_axis_off()
    handles = [
        matplotlib.patches.Patch(color=cmap(index), label=name)
        for index, name in enumerate(class_names)
    ]
    figure.legend(handles=handles, loc='lower center', ncol=min(len(handles), 8))
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return figure


def plot_first_sample(
    batch: Mapping[str, Any],
    available: Tensor,
    predictions: Mapping[str, Tensor],
    modalities: Sequence[str],
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]] | None = None,
    rgb_bands: Mapping[str, Sequence[int]] | None = None,
) -> Figure:
    """Plot a batch's first sample with :func:`plot_scenarios`.

    Args:
        batch: A collated batch in the sample format.
        available: Its ``(B, M)`` availability, columns in *modalities* order.
        predictions: Scenario name to the first sample's ``(H, W)`` prediction.
        modalities: Modality names in the model's order.
        class_names: Class names, for the legend.
        colors: RGB colour per class (0..255).
        rgb_bands: Modality to the indexes of its red, green and blue bands.

    Returns:
        The figure (the caller closes it).
    """
    images = {
        name: batch[image_key(name)][0]
        for name in modalities
        if image_key(name) in batch
    }
    flags = {name: bool(available[0, index]) for index, name in enumerate(modalities)}
    mask = batch[MASK][0] if MASK in batch else None
    return plot_scenarios(
        images, mask, predictions, class_names, colors, flags, rgb_bands
    )


def plot_scenario_maps(
    image: Tensor,
    mask: Tensor | None,
    predictions: Mapping[str, Tensor],
    miou: Mapping[str, float],
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]] | None = None,
    columns: int = 5,
    quicklook_title: str = 'image',
    rgb: Sequence[int] | None = None,
) -> Figure:
    """Plot a scene's maps under every scenario and the mIoU of each scenario.

    Panels, row by row: the image, the label, one predicted map
    per scenario, then the legend; below them, one bar per scenario with its
    mIoU.

    Args:
        image: ``(C, H, W)`` image, shown with
            :func:`~torchgeo_stars.datasets.quicklook`.
        mask: ``(H, W)`` class indices, or None when there is no label.
        predictions: Scenario name to its ``(H, W)`` predicted class map;
            values outside ``0..K-1`` (nodata) are left blank.
        miou: Scenario name to its mIoU in ``[0, 1]`` (NaN: not evaluated).
        class_names: Class names, for the legend.
        colors: RGB colour per class (0..255); defaults to :func:`default_colors`.
        columns: Map panels per row.
        quicklook_title: Title of the image panel.
        rgb: Indexes of the image's red, green and blue bands, if it has
            them.

    Returns:
        The figure (the caller closes it). Each map panel's title is its
        scenario name (*quicklook_title* and ``label`` for the first two).
    """
    colors = list(colors) if colors is not None else default_colors(len(class_names))
    cmap = ListedColormap(np.asarray(colors, dtype=float) / 255)
    maps: list[tuple[str, Tensor, bool]] = [(quicklook_title, image, False)]
    if mask is not None:
        maps.append(('label', mask, True))
    maps += [(name, prediction, True) for name, prediction in predictions.items()]
    columns = max(1, min(columns, len(maps) + 1))
    rows = math.ceil((len(maps) + 1) / columns)
    figure = plt.figure(figsize=(2.8 * columns, 2.9 * rows + 2.6))
    grid = figure.add_gridspec(rows + 1, columns, height_ratios=[2.9] * rows + [2.6])
    for index, (title, data, is_classes) in enumerate(maps):
        axis = figure.add_subplot(grid[index // columns, index % columns])
        if is_classes:
            labels = data.cpu().numpy()
            invalid = (labels < 0) | (labels >= len(class_names))
            axis.imshow(
                np.ma.masked_where(invalid, labels),
                cmap=cmap,
                vmin=0,
                vmax=len(class_names) - 1,
                interpolation='nearest',
            )
        else:
            axis.imshow(quicklook(data, rgb), cmap='gray')
        axis.set_title(title, fontsize=9)
        axis.set_axis_off()
    legend_axis = figure.add_subplot(grid[len(maps) // columns, len(maps) % columns])
    legend_axis.set_axis_off()
    # Outlined swatches: a white class stays visible.
    handles = [
        matplotlib.patches.Patch(facecolor=cmap(index), edgecolor='0.4', label=name)
        for index, name in enumerate(class_names)
    ]
    legend_axis.legend(handles=handles, loc='center', fontsize=8, frameon=False)
    bars = figure.add_subplot(grid[rows, :])
    names = list(miou)
    values = [100 * miou[name] for name in names]
    bars.bar(range(len(names)), values, color='tab:blue')
    bars.set_xticks(range(len(names)), names, rotation=20, ha='right', fontsize=8)
    bars.set_ylabel('mIoU (%)')
    bars.set_ylim(0, 100)
    for position, value in enumerate(values):
        if math.isfinite(value):
            bars.annotate(
                f'{value:.1f}', (position, value), ha='center', va='bottom', fontsize=8
            )
    bars.set_title('mIoU per missing-modality scenario', fontsize=9)
    figure.tight_layout()
    return figure
