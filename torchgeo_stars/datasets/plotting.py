"""Quicklook figure of one sample: every modality, the label and a prediction.

The ``plot()`` methods of the datasets and datamodules (TorchGeo's convention)
all draw through :func:`plot_sample`.

.. versionadded:: 0.1
"""

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor
from torchgeo.datasets.utils import Sample

from .keys import AVAILABLE, MASK, PREDICTION, image_key, modality_of

#: Band names that say red, green or blue (lower case): plain colour names
#: and Sentinel-2's band numbers.
RGB_NAMES = (('red', 'b04'), ('green', 'b03'), ('blue', 'b02'))


def rgb_band_indexes(bands: Sequence[str | None]) -> tuple[int, int, int] | None:
    """Indexes of the red, green and blue bands, found by their names.

    Args:
        bands: Band names in band order (a raster's ``bands``, or a file's
            band descriptions; None for an unnamed band).

    Returns:
        ``(red, green, blue)`` indexes into *bands*, or None unless all three
        are named (``red``/``green``/``blue`` or ``B04``/``B03``/``B02``, in
        any case).
    """
    names = [(band or '').lower() for band in bands]
    found = [
        [i for i, name in enumerate(names) if name in colour] for colour in RGB_NAMES
    ]
    if not all(found):
        return None
    red, green, blue = (indexes[0] for indexes in found)
    return red, green, blue


def quicklook(image: Tensor, rgb: Sequence[int] | None = None) -> np.ndarray:
    """Turn a ``(C, H, W)`` image into something ``imshow`` shows.

    Three bands (*rgb*, else the first three when there are three or more) show
    as an RGB composite; otherwise the first band shows in grey. Each shown
    band is stretched between its 2nd and 98th percentiles.

    Args:
        image: The modality's bands.
        rgb: Indexes of the red, green and blue bands, if the modality has them.

    Returns:
        ``(H, W, 3)`` or ``(H, W)`` floats in [0, 1].
    """
    array = image.detach().to(torch.float32).cpu().numpy()
    if rgb is not None:
        array = np.moveaxis(array[list(rgb)], 0, -1)
    elif array.shape[0] >= 3:
        array = np.moveaxis(array[:3], 0, -1)
    else:
        array = array[0]
    bands = array.reshape(-1, array.shape[-1]) if array.ndim == 3 else array.ravel()
    low, high = np.nanpercentile(bands, [2, 98], axis=0)
    scaled = (array - low) / np.maximum(high - low, 1e-6)
    return np.asarray(np.clip(np.nan_to_num(scaled), 0, 1))


def plot_sample(
    sample: Sample,
    modalities: Sequence[str] | None = None,
    *,
    classes: Sequence[str] | None = None,
    colors: Sequence[tuple[int, int, int]] | None = None,
    rgb_bands: Mapping[str, Sequence[int]] | None = None,
    ignore_index: int | None = None,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """Plot every modality of a sample, its label and its prediction.

    Args:
        sample: One (unbatched) sample: ``image_<modality>`` (C, H, W), and
            optionally ``mask`` and ``prediction`` (H, W) class indices and
            ``available``.
        modalities: Modalities in panel order, also the order of ``available``
            (default: the sample's ``image_<modality>`` keys).
        classes: Class names for the legend (default: ``class 0`` ...).
        colors: RGB colour (0..255) per class (default: matplotlib's tab10/20).
        rgb_bands: Modality -> indexes of its red, green and blue bands; other
            modalities show their first three bands, or the first band in grey.
        ignore_index: Label of unlabelled pixels (left blank, like any value
            outside the classes).
        show_titles: Title each panel.
        suptitle: Title of the figure.

    Returns:
        The figure (the caller closes it).
    """
    if modalities is None:
        modalities = [m for key in sample if (m := modality_of(key)) is not None]
    shown = [m for m in modalities if image_key(m) in sample]
    labels = [key for key in (MASK, PREDICTION) if key in sample]
    num_classes = len(classes) if classes is not None else 0
    if classes is None:
        for key in labels:
            values = sample[key]
            valid = values[(values >= 0) & (values != ignore_index)]
            if valid.numel():
                num_classes = max(num_classes, int(valid.max().item()) + 1)
    names = list(classes) if classes is not None else []
    names += [f'class {i}' for i in range(len(names), num_classes)]
    if colors is None:
        cmap_name = 'tab10' if num_classes <= 10 else 'tab20'
        palette = plt.get_cmap(cmap_name)(np.arange(max(num_classes, 1)) % 20)[:, :3]
    else:
        palette = np.asarray(colors, dtype=float) / 255
    cmap = ListedColormap(palette)
    available = sample.get(AVAILABLE)

    panels = len(shown) + len(labels)
    figure, axes = plt.subplots(1, panels, figsize=(3 * panels, 3.6), squeeze=False)
    row = list(axes[0])
    for axis, name in zip(row, shown, strict=False):
        present = available is None or bool(available[list(modalities).index(name)])
        if present:
            rgb = (rgb_bands or {}).get(name)
            axis.imshow(quicklook(sample[image_key(name)], rgb), cmap='gray')
        if show_titles:
            axis.set_title(name if present else f'{name} (missing)')
    for axis, key in zip(row[len(shown) :], labels, strict=True):
        classes_map = sample[key].detach().cpu().numpy()
        outside = (classes_map < 0) | (classes_map >= num_classes)
        axis.imshow(
            np.ma.masked_where(outside, classes_map),
            cmap=cmap,
            vmin=0,
            vmax=max(len(palette) - 1, 1),
            interpolation='nearest',
        )
        if show_titles:
            axis.set_title('label' if key == MASK else 'prediction')
    for axis in row:
        axis.set_axis_off()
    if names:
        handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(names)]
        figure.legend(handles=handles, loc='lower center', ncol=min(len(names), 4))
    if suptitle is not None:
        figure.suptitle(suptitle)
    figure.tight_layout(rect=(0, 0.15 if names else 0, 1, 1))
    return figure
