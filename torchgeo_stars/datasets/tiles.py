"""Tile datasets: benchmark releases whose modalities are paired by file name.

Releases that do not carry georeferencing one can rely on (WHU-OPT-SAR,
Vaihingen, EarthMiss) keep every modality of a tile on the same pixel grid,
in files named after the tile. A :class:`TileDataset` reads them window by
window: an integer index gives a whole tile, a :class:`TileWindow` a square
window of one tile. :class:`RandomTileSampler` (training) and
:class:`GridTileSampler` (a full cover, for validation and test) yield such
windows, as TorchGeo's patch samplers do for geographic datasets.

.. versionadded:: 0.1
"""

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import rasterio
import rasterio.errors
import torch
from rasterio.windows import Window
from torch.utils.data import Sampler
from torchgeo.datasets import NonGeoDataset
from torchgeo.datasets.utils import Path, Sample

from ..errors import ConfigurationError, DataError
from .benchmark import LABEL, BenchmarkDataset
from .keys import AVAILABLE, MASK, image_key
from .labels import Colour, decode_colours, decode_values
from .normalization import ModalityStatistics


class TileWindow(NamedTuple):
    """A square window of one tile of a :class:`TileDataset`.

    ``tile`` is the index of the tile in the dataset, ``row`` and ``col`` the
    window's first row and column, ``size`` its width and height in pixels.
    """

    tile: int
    row: int
    col: int
    size: int


class TileDataset(BenchmarkDataset, NonGeoDataset):
    """A benchmark release read tile by tile, its modalities paired by name.

    The layout, split lists and label encoding are class attributes (see
    :class:`~torchgeo_stars.datasets.benchmark.BenchmarkDataset`); labels are
    decoded on read with :attr:`label_colours` (RGB colour-coded files) or
    :attr:`label_values` (integer codes), every other value to
    ``ignore_index``.

    Sample keys: ``image_<modality>`` (float32 (C, H, W), the file's values),
    ``mask`` (int64 (H, W) class indices), ``available`` (bool, one entry per
    loaded modality, all True). Index with an int for a whole tile or with a
    :class:`TileWindow` for a window.

    .. versionadded:: 0.1
    """

    #: class index -> colour in the label files (colour-coded releases).
    label_colours: ClassVar[tuple[Colour, ...] | None] = None
    #: code in the label files -> class index (integer-coded releases).
    label_values: ClassVar[Mapping[int, int] | None] = None

    def __init__(
        self,
        root: Path = 'data',
        split: str = 'train',
        modalities: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        ignore_index: int = 255,
    ) -> None:
        """Find the files of a split.

        Args:
            root: folder the release is unpacked in.
            split: ``'train'``, ``'val'`` or ``'test'``.
            modalities: modalities to load (default: all), in any order; the
                samples keep the declared order.
            transforms: a function/transform applied to every sample.
            ignore_index: class index of unlabelled pixels.

        Raises:
            ConfigurationError: if *split* or *modalities* is invalid.
            DataError: if the root or a file of the split is missing.
        """
        self.check_split(split)
        self.root = root
        self.split = split
        self.modalities = self.select_modalities(modalities)
        self.transforms = transforms
        self.ignore_index = ignore_index
        self.tiles = self.tile_names()
        self.files = self._locate(self.tiles, [*self.modalities, LABEL])
        self._shapes: dict[int, tuple[int, int]] = {}

    def tile_names(self) -> list[str]:
        """Tile names of :attr:`split` (:meth:`split_tiles` by default).

        Returns:
            The tile names.
        """
        return self.split_tiles(self.split)

    def __len__(self) -> int:
        """Number of tiles.

        Returns:
            The number of tiles of the split.
        """
        return len(self.files)

    def tile_shape(self, index: int) -> tuple[int, int]:
        """Height and width of a tile (of its first modality's file).

        Args:
            index: tile index.

        Returns:
            ``(height, width)`` in pixels.
        """
        if index not in self._shapes:
            path = self.files[index][self.modalities[0]]
            with self._open(path) as src:
                self._shapes[index] = (src.height, src.width)
        return self._shapes[index]

    def _open(self, path: str) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', rasterio.errors.NotGeoreferencedWarning)
                return rasterio.open(path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(
                f'{type(self).__name__}: cannot read {path} ({err}); the file is '
                'probably truncated or corrupt: unpack it again from the release.'
            ) from err

    def _read(
        self, path: str, window: Window | None, shape: tuple[int, int]
    ) -> np.ndarray[Any, Any]:
        with self._open(path) as src:
            if (src.height, src.width) != shape:
                raise DataError(
                    f'{type(self).__name__}: {path} is {src.height} x {src.width} '
                    f'pixels but the other files of its tile are {shape[0]} x '
                    f'{shape[1]}; the modalities of a tile must share one grid.'
                )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter(
                        'ignore', rasterio.errors.NotGeoreferencedWarning
                    )
                    array: np.ndarray[Any, Any] = src.read(window=window)
            except rasterio.errors.RasterioIOError as err:
                raise DataError(
                    f'{type(self).__name__}: failed to read {path} ({err}); the file '
                    'is probably truncated or corrupt: unpack it again.'
                ) from err
        return array

    def decode_label(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Turn the label file's values into class indices.

        Args:
            array: ``(C, H, W)`` values read from the label file.

        Returns:
            ``(H, W)`` int64 class indices, ``ignore_index`` where no class.
        """
        if self.label_colours is not None:
            return decode_colours(array[:3], self.label_colours, self.ignore_index)
        assert self.label_values is not None
        return decode_values(array[0], self.label_values, self.ignore_index)

    def __getitem__(self, index: int | TileWindow) -> Sample:
        """Read a whole tile, or a window of one.

        Args:
            index: tile index, or a :class:`TileWindow`.

        Returns:
            The sample (see the class docstring).

        Raises:
            IndexError: if the tile index is out of range.
            DataError: if a file cannot be read, the files of the tile differ in
                size, or the window is not inside the tile.
        """
        if isinstance(index, TileWindow):
            tile = index.tile
            window: Window | None = Window(index.col, index.row, index.size, index.size)
        else:
            tile, window = int(index), None
        if not -len(self) <= tile < len(self):
            raise IndexError(f'tile {tile} out of range ({len(self)} tiles)')
        tile %= len(self)
        shape = self.tile_shape(tile)
        if isinstance(index, TileWindow) and (
            index.row < 0
            or index.col < 0
            or index.row + index.size > shape[0]
            or index.col + index.size > shape[1]
        ):
            raise DataError(
                f'{type(self).__name__}: window {tuple(index)} is not inside tile '
                f'{self.tiles[tile]!r} ({shape[0]} x {shape[1]} pixels).'
            )
        files = self.files[tile]
        sample: Sample = {}
        for name in self.modalities:
            array = self._read(files[name], window, shape)
            sample[image_key(name)] = torch.from_numpy(array.astype(np.float32))
        label = self.decode_label(self._read(files[LABEL], window, shape))
        sample[MASK] = torch.from_numpy(label)
        sample[AVAILABLE] = torch.ones(len(self.modalities), dtype=torch.bool)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __str__(self) -> str:
        """Short description.

        Returns:
            Class, root, split, modalities and tile count.
        """
        return (
            f'{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, '
            f'modalities={list(self.modalities)}, tiles={len(self)})'
        )


def _check_size(dataset: TileDataset, size: int) -> list[tuple[int, int]]:
    shapes = [dataset.tile_shape(i) for i in range(len(dataset))]
    small = [
        dataset.tiles[i] for i, (h, w) in enumerate(shapes) if h < size or w < size
    ]
    if small:
        raise ConfigurationError(
            f'patch size {size} is larger than tile(s) {small[:5]} of '
            f'{type(dataset).__name__} (smallest {min(min(s) for s in shapes)} '
            'pixels); use a smaller patch_size.'
        )
    return shapes


class RandomTileSampler(Sampler[TileWindow]):
    """Random square windows of a :class:`TileDataset`.

    Tiles are drawn in proportion to their area, positions uniformly inside
    them. The generator lives across epochs: a seed gives a reproducible run,
    and every epoch new windows.

    .. versionadded:: 0.1
    """

    def __init__(
        self, dataset: TileDataset, size: int, length: int, seed: int | None = None
    ) -> None:
        """Initialise the sampler.

        Args:
            dataset: the tiles.
            size: window size in pixels.
            length: windows per epoch.
            seed: seed of the window positions.

        Raises:
            ConfigurationError: if a tile is smaller than *size*.
        """
        self.shapes = _check_size(dataset, size)
        self.size = size
        self.length = length
        areas = np.array([h * w for h, w in self.shapes], dtype=float)
        self.weights = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[TileWindow]:
        """Draw the windows of one epoch.

        Yields:
            Windows.
        """
        for _ in range(self.length):
            tile = int(self.rng.choice(len(self.shapes), p=self.weights))
            height, width = self.shapes[tile]
            row = int(self.rng.integers(0, height - self.size + 1))
            col = int(self.rng.integers(0, width - self.size + 1))
            yield TileWindow(tile, row, col, self.size)

    def __len__(self) -> int:
        """Windows per epoch.

        Returns:
            The length.
        """
        return self.length


def _starts(extent: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, extent - size + 1, stride))
    if starts[-1] + size < extent:
        starts.append(extent - size)
    return starts


class GridTileSampler(Sampler[TileWindow]):
    """Windows covering every pixel of every tile of a :class:`TileDataset`.

    A grid of windows at *stride*; where a tile is not a whole number of
    strides, the last row and column of windows are moved back to end at the
    tile's edge (they overlap their neighbours), so windows keep their size
    and every pixel is covered.

    .. versionadded:: 0.1
    """

    def __init__(
        self, dataset: TileDataset, size: int, stride: int | None = None
    ) -> None:
        """Initialise the sampler.

        Args:
            dataset: the tiles.
            size: window size in pixels.
            stride: distance between windows (default: *size*).

        Raises:
            ConfigurationError: if a tile is smaller than *size*.
        """
        shapes = _check_size(dataset, size)
        step = stride or size
        self.windows = [
            TileWindow(tile, row, col, size)
            for tile, (height, width) in enumerate(shapes)
            for row in _starts(height, size, step)
            for col in _starts(width, size, step)
        ]

    def __iter__(self) -> Iterator[TileWindow]:
        """Yield every window.

        Yields:
            Windows, tile by tile, row by row.
        """
        return iter(self.windows)

    def __len__(self) -> int:
        """Number of windows.

        Returns:
            The number of windows.
        """
        return len(self.windows)


def tile_statistics(
    dataset: TileDataset, num_samples: int = 32, patch_size: int = 256, seed: int = 0
) -> dict[str, ModalityStatistics]:
    """Per-band mean and std of every modality, from random windows.

    Args:
        dataset: the tiles (the training split).
        num_samples: number of windows.
        patch_size: window size (the smallest tile side when larger).
        seed: seed of the window positions.

    Returns:
        Modality -> statistics (a constant band gets std 1).
    """
    size = min(patch_size, *(min(dataset.tile_shape(i)) for i in range(len(dataset))))
    sampler = RandomTileSampler(dataset, size, num_samples, seed)
    sums: dict[str, np.ndarray[Any, Any]] = {}
    squares: dict[str, np.ndarray[Any, Any]] = {}
    count = 0
    for window in sampler:
        sample = dataset[window]
        count += size * size
        for name in dataset.modalities:
            pixels = sample[image_key(name)].to(torch.float64).flatten(1).numpy()
            sums[name] = sums.get(name, 0) + pixels.sum(axis=1)
            squares[name] = squares.get(name, 0) + (pixels**2).sum(axis=1)
    stats = {}
    for name in dataset.modalities:
        mean = sums[name] / count
        variance = np.maximum(squares[name] / count - mean**2, 0)
        std = np.sqrt(variance)
        std[std <= 1e-12 * np.maximum(1, np.abs(mean))] = 1.0
        bands = dataset.modality_bands[name]
        stats[name] = ModalityStatistics(
            tuple(mean.tolist()),
            tuple(std.tolist()),
            bands if len(bands) == len(mean) else None,
        )
    return stats
