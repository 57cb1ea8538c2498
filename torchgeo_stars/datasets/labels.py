"""Label encodings of the benchmark releases, decoded to class indices on read.

Releases store labels either as RGB colours (ISPRS Potsdam and Vaihingen) or
as integer codes that are not the class indices (WHU-OPT-SAR's 0, 10, ... 70;
EarthMiss's 1..8). The functions here turn either into ``0..K-1`` class
indices, every pixel that is not a class (boundaries, background, values
outside the encoding) set to ``ignore_index``, so no conversion step is
needed before training.

TorchGeo's :func:`~torchgeo.datasets.utils.rgb_to_mask` maps colours outside
the colour map to class 0, which would train on boundary pixels of the
eroded ISPRS labels; :func:`decode_colours` sends them to ``ignore_index``.

.. versionadded:: 0.1
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from torchgeo.datasets.utils import Path

from ..errors import DataError
from .rasters import ConfigurableRaster

Colour = tuple[int, int, int]


def decode_colours(
    rgb: np.ndarray[Any, Any], colours: Sequence[Colour], ignore_index: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Turn an RGB colour-coded label into class indices.

    Args:
        rgb: ``(3, H, W)`` colours (any numeric dtype; non-finite values, e.g.
            NaN outside the files, match no colour).
        colours: class index -> its ``(r, g, b)`` colour.
        ignore_index: index of every pixel whose colour is not in *colours*.

    Returns:
        ``(H, W)`` int64 class indices.

    Raises:
        ValueError: if *rgb* does not have three bands.
    """
    if rgb.ndim != 3 or rgb.shape[0] != 3:
        raise ValueError(f'decode_colours: expected (3, H, W) colours, got {rgb.shape}')
    out = np.full(rgb.shape[1:], ignore_index, dtype=np.int64)
    for index, colour in enumerate(colours):
        match = np.all(rgb == np.asarray(colour).reshape(3, 1, 1), axis=0)
        out[match] = index
    return out


def decode_values(
    values: np.ndarray[Any, Any], mapping: Mapping[int, int], ignore_index: int
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Turn integer label codes into class indices.

    Args:
        values: ``(H, W)`` (or ``(1, H, W)``) label codes.
        mapping: code in the files -> class index.
        ignore_index: index of every pixel whose code is not in *mapping*.

    Returns:
        ``(H, W)`` int64 class indices.
    """
    if values.ndim == 3:
        values = values[0]
    out = np.full(values.shape, ignore_index, dtype=np.int64)
    for code, index in mapping.items():
        out[values == code] = index
    return out


class ColourMaskRaster(ConfigurableRaster):
    """Georeferenced RGB colour-coded labels; sample key ``mask`` (class indices).

    Reads the three colour bands with nearest-neighbour resampling (so colours
    stay exact) and decodes them with :func:`decode_colours`; pixels of other
    colours and pixels outside every file get ``ignore_index``. Sample keys:
    ``mask`` (int64 (H, W)), ``bounds``, ``transform``.

    .. versionadded:: 0.1
    """

    is_image = False

    def __init__(
        self,
        paths: Path | Iterable[Path],
        colours: Sequence[Colour],
        ignore_index: int = 255,
        **kwargs: Any,
    ) -> None:
        """Index colour-coded label files.

        Args:
            paths: directories to search (recursively) or files.
            colours: class index -> its (r, g, b) colour in the files.
            ignore_index: index of pixels of no class, or outside every file.
            **kwargs: other arguments of :class:`ConfigurableRaster`.

        Raises:
            DataError: if the files do not have three bands, or see
                :class:`ConfigurableRaster`.
        """
        self.colours = tuple(colours)
        self.ignore_index = ignore_index
        super().__init__(paths, **kwargs)
        if len(self.bands) != 3:
            raise DataError(
                f'ColourMaskRaster: the label files under {self.paths} have bands '
                f'{list(self.bands)}; colour-coded labels have three (R, G, B).'
            )

    def _fill_mosaic(
        self, mosaic: np.ndarray[Any, Any], filepaths: Sequence[str]
    ) -> np.ndarray[Any, Any]:
        decoded = decode_colours(mosaic, self.colours, self.ignore_index)
        return decoded[np.newaxis].astype(np.float64)
