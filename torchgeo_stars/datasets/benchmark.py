"""What the benchmark datasets share: official splits, file layout, checks, plot.

A benchmark release is described by class attributes of a
:class:`BenchmarkDataset` subclass: the modalities and their bands, the file
of each modality and of the label per tile (a format string relative to the
root), the classes, their colours, the official split lists and the training
tiles held out for validation when the release has no validation split. The
tile datasets (:class:`~torchgeo_stars.datasets.tiles.TileDataset`) and the
georeferenced ones (e.g. :class:`~torchgeo_stars.datasets.Potsdam`, a
:class:`~torchgeo_stars.datasets.PairedDataset`) both build on it.

.. versionadded:: 0.1
"""

import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

from matplotlib.figure import Figure
from torchgeo.datasets.utils import Path, Sample

from ..errors import ConfigurationError, DataError
from .plotting import plot_sample, rgb_band_indexes

#: Key of the label file in :attr:`BenchmarkDataset.files`.
LABEL = 'label'

#: Split names every benchmark dataset takes.
SPLITS = ('train', 'val', 'test')

# Missing files listed by name in an error before "and N more"
_LISTED = 5


class BenchmarkDataset:
    """Layout, official splits, file checks and plotting of a benchmark release.

    Subclasses set the class attributes; the ``root``, ``split`` and
    ``modalities`` attributes are set by :meth:`_locate`.

    .. versionadded:: 0.1
    """

    #: Name of the release, for messages.
    release: ClassVar[str] = ''
    #: Where the release comes from (named when files are missing).
    url: ClassVar[str] = ''
    #: Modality -> band names, in the declared modality order.
    modality_bands: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Modalities loaded when none are named (empty: all of
    #: :attr:`modality_bands`); optional products are left out of it.
    default_modalities: ClassVar[tuple[str, ...]] = ()
    #: Modality -> indexes of three bands shown as red, green and blue where
    #: the band names do not say which are (a false-colour composite); the
    #: others are found from :attr:`modality_bands` (:attr:`quicklook_bands`).
    composite_bands: ClassVar[Mapping[str, tuple[int, int, int]]] = {}
    #: Modality (or ``'label'``) -> its file of a tile, relative to the root,
    #: a format string of the fields of :meth:`tile_fields`; alternatives in a
    #: tuple (the first that exists is used).
    file_patterns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}
    #: Class names, in class-index order.
    classes: ClassVar[tuple[str, ...]] = ()
    #: RGB colour (0..255) per class, for plots.
    colors: ClassVar[tuple[tuple[int, int, int], ...]] = ()
    #: The release's official split: split name -> tile names.
    splits: ClassVar[Mapping[str, Sequence[str]]] = {}
    #: Training tiles held out for validation when :attr:`splits` has no
    #: ``'val'``; the ``'train'`` split is the official one without them.
    val_tiles: ClassVar[tuple[str, ...]] = ()

    root: Path
    split: str
    modalities: tuple[str, ...]
    tiles: list[str]
    ignore_index: int

    # Configuration ------------------------------------------------------------

    @classmethod
    def num_bands_of(cls, modalities: Sequence[str] | None = None) -> dict[str, int]:
        """Band count of each modality (the default ones by default).

        Args:
            modalities: modalities to describe, in any order (default: those
                loaded when none are named).

        Returns:
            Modality -> band count, in the declared order.
        """
        chosen = cls.select_modalities(modalities)
        return {m: len(cls.modality_bands[m]) for m in chosen}

    @classmethod
    def select_modalities(cls, modalities: Sequence[str] | None) -> tuple[str, ...]:
        """Check the modalities to load and put them in the declared order.

        Args:
            modalities: modality names, or None for the defaults
                (:attr:`default_modalities`, else all of them).

        Returns:
            The modalities, in the declared order.

        Raises:
            ConfigurationError: if a name is not a modality of the release, or
                none is given.
        """
        declared = tuple(cls.modality_bands)
        if modalities is None:
            return cls.default_modalities or declared
        unknown = [m for m in modalities if m not in declared]
        if unknown or not modalities:
            raise ConfigurationError(
                f'{cls.__name__}: modalities {list(modalities)} must be a non-empty '
                f'subset of {list(declared)}.'
            )
        return tuple(m for m in declared if m in modalities)

    @classmethod
    def check_split(cls, split: str) -> None:
        """Check a split name.

        Args:
            split: the split name.

        Raises:
            ConfigurationError: if it is not ``'train'``, ``'val'`` or ``'test'``.
        """
        if split not in SPLITS:
            raise ConfigurationError(
                f'{cls.__name__}: split must be one of {list(SPLITS)}, got {split!r}.'
            )

    @classmethod
    def split_tiles(cls, split: str) -> list[str]:
        """Tile names of a split: the official lists, validation carved out.

        Args:
            split: ``'train'``, ``'val'`` or ``'test'``.

        Returns:
            The tile names.

        Raises:
            ConfigurationError: if *split* is not one of them.
        """
        cls.check_split(split)
        if split in cls.splits:
            tiles = list(cls.splits[split])
            if split == 'train' and 'val' not in cls.splits:
                tiles = [t for t in tiles if t not in cls.val_tiles]
            return tiles
        return list(cls.val_tiles)

    @classmethod
    def tile_fields(cls, tile: str) -> dict[str, str]:
        """Fields of the :attr:`file_patterns` format strings for one tile.

        Args:
            tile: the tile name.

        Returns:
            ``{'tile': tile}``; subclasses add fields (e.g. zero-padded numbers).
        """
        return {'tile': tile}

    # Files --------------------------------------------------------------------

    def _layout_description(self, keys: Sequence[str]) -> str:
        patterns = []
        for key in keys:
            options = self.file_patterns[key]
            options = (options,) if isinstance(options, str) else options
            patterns.append(' or '.join(options))
        return ', '.join(patterns)

    def _where_from(self) -> str:
        return (
            f'the {self.release} release comes from {self.url}; download=False '
            'only: get it there and unpack it under the root'
        )

    def _check_root(self, keys: Sequence[str]) -> None:
        """Raise if the root is not a folder.

        Args:
            keys: modalities and ``'label'`` that will be read.

        Raises:
            DataError: naming the root, what is expected there and the source.
        """
        if not os.path.isdir(self.root):
            raise DataError(
                f'{type(self).__name__}: root {str(self.root)!r} is not a folder; '
                f'expected there: {self._layout_description(keys)} ({self._where_from()}).'
            )

    def _locate(
        self, tiles: Sequence[str], keys: Sequence[str]
    ) -> list[dict[str, str]]:
        """The files of every tile, or an error naming the missing ones.

        Args:
            tiles: tile names.
            keys: modalities and ``'label'`` to find.

        Returns:
            One dict per tile: key -> path.

        Raises:
            DataError: if the root is not a folder, or a file is missing; the
                message names the root, the missing files (or folders), the
                layout expected and where the release comes from.
        """
        self._check_root(keys)
        found: list[dict[str, str]] = []
        missing: list[str] = []
        for tile in tiles:
            fields = self.tile_fields(tile)
            paths: dict[str, str] = {}
            for key in keys:
                options = self.file_patterns[key]
                options = (options,) if isinstance(options, str) else options
                candidates = [o.format(**fields) for o in options]
                existing = [
                    c for c in candidates if os.path.isfile(os.path.join(self.root, c))
                ]
                if existing:
                    paths[key] = os.path.join(self.root, existing[0])
                else:
                    missing.append(' or '.join(candidates))
            found.append(paths)
        if missing:
            folders = {os.path.dirname(m.split(' or ')[0]) for m in missing}
            absent = sorted(
                f + '/'
                for f in folders
                if f and not os.path.isdir(os.path.join(self.root, f))
            )
            what = f'folder(s) {", ".join(absent)} missing; ' if absent else ''
            listed = ', '.join(missing[:_LISTED])
            more = (
                f' and {len(missing) - _LISTED} more' if len(missing) > _LISTED else ''
            )
            raise DataError(
                f'{type(self).__name__}: {what}{len(missing)} file(s) of the '
                f'{self.split!r} split missing under root {str(self.root)!r}: '
                f'{listed}{more}. Expected layout: '
                f'{self._layout_description(keys)} ({self._where_from()}).'
            )
        return found

    # Plotting -----------------------------------------------------------------

    @property
    def quicklook_bands(self) -> Mapping[str, tuple[int, int, int]]:
        """Indexes of the bands each loaded modality shows as red, green and blue.

        Returns:
            :attr:`composite_bands`, else the bands named red, green and blue
            in :attr:`modality_bands`
            (:func:`~torchgeo_stars.datasets.plotting.rgb_band_indexes`);
            modalities with neither are left out (shown in grey).
        """
        found = {}
        for name in self.modalities:
            rgb = self.composite_bands.get(name) or rgb_band_indexes(
                self.modality_bands[name]
            )
            if rgb is not None:
                found[name] = rgb
        return found

    def plot(
        self, sample: Sample, show_titles: bool = True, suptitle: str | None = None
    ) -> Figure:
        """Plot every modality of a sample, its label and its prediction.

        Args:
            sample: a sample of this dataset (``prediction`` optional).
            show_titles: title each panel.
            suptitle: title of the figure.

        Returns:
            The figure.
        """
        return plot_sample(
            sample,
            self.modalities,
            classes=self.classes,
            colors=self.colors,
            rgb_bands=self.quicklook_bands,
            ignore_index=self.ignore_index,
            show_titles=show_titles,
            suptitle=suptitle,
        )
