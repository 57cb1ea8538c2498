"""One datamodule base for the benchmark datasets (Potsdam, WHU-OPT-SAR, ...)."""

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from matplotlib.figure import Figure
from torch import Tensor
from torch.utils.data import Sampler
from torchgeo.datamodules import GeoDataModule
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import GriddedPatchSampler, RandomPatchSampler

from ..datasets import (
    BenchmarkDataset,
    GridTileSampler,
    ModalityStatistics,
    NormalizeModalities,
    RandomTileSampler,
    TileDataset,
    compute_statistics,
)
from ..datasets.tiles import tile_statistics
from ..errors import ConfigurationError
from .augmentation import JointFlipRotate, normalize_and_augment
from .loading import MachineLoaders, default_num_workers

logger = logging.getLogger(__name__)

#: File, under the dataset's root, where computed statistics are cached.
STATISTICS_FILE = 'torchgeo_stars_statistics.json'


class BenchmarkDataModule(MachineLoaders, GeoDataModule):
    """Official splits of a benchmark dataset, for STARS training and testing.

    Subclasses set :attr:`dataset_type` (a
    :class:`~torchgeo_stars.datasets.benchmark.BenchmarkDataset`). Then:

    * train / val / test are the dataset's splits (the official lists;
      validation held out of the training tiles when the release has none);
    * training draws random ``patch_size`` windows (TorchGeo's
      :class:`~torchgeo.samplers.RandomPatchSampler` for georeferenced
      datasets, :class:`~torchgeo_stars.datasets.RandomTileSampler` for tile
      datasets), validation and test cover every pixel of their tiles with a
      grid of windows (:class:`~torchgeo.samplers.GriddedPatchSampler`,
      :class:`~torchgeo_stars.datasets.GridTileSampler`);
    * each modality is normalised on the device with per-band statistics,
      given or estimated once from the training split and cached as JSON
      beside the data (``<root>/torchgeo_stars_statistics.json``; reused while
      the training tiles and the estimation settings are the same);
    * training batches get the augmentation of
      :class:`~torchgeo_stars.datamodules.MultimodalDataModule`: the same
      random flips and quarter turns on every modality and the mask
      (:class:`~torchgeo_stars.datamodules.JointFlipRotate`).

    :attr:`statistics` is saved in the task's checkpoints for inference.

    .. versionadded:: 0.1
    """

    #: The dataset class of the release.
    dataset_type: ClassVar[type[BenchmarkDataset]]

    def __init__(
        self,
        root: str = 'data',
        modalities: Sequence[str] | None = None,
        batch_size: int = 8,
        patch_size: int = 512,
        length: int | None = None,
        num_workers: int | None = None,
        ignore_index: int = 255,
        statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None = None,
        statistics_samples: int = 32,
        cache_statistics: bool = True,
        augment: bool = True,
        seed: int = 0,
        **dataset_kwargs: Any,
    ) -> None:
        """Initialise the datamodule (files are found in :meth:`setup`).

        Args:
            root: Folder the release is unpacked in.
            modalities: Modalities to load (default: the release's default
                ones, e.g. Potsdam's optical + dsm), in any order; batches keep
                the release's order.
            batch_size: Samples per batch.
            patch_size: Window width and height in pixels.
            length: Training windows per epoch (default: about two covers of
                the training tiles).
            num_workers: DataLoader worker processes; default: one per CPU
                core, at most 8 (:func:`~torchgeo_stars.datamodules.loading.default_num_workers`).
            ignore_index: Class index of unlabelled pixels.
            statistics: Per-modality normalisation statistics, used as given;
                the modalities left out are estimated on the training split.
            statistics_samples: Windows read to estimate statistics.
            cache_statistics: Save estimated statistics beside the data and
                reuse them.
            augment: Random flips and quarter turns during training.
            seed: Seed of the statistics windows and the training windows.
            **dataset_kwargs: Other arguments of the dataset class.

        Raises:
            ConfigurationError: If an argument is invalid.
        """
        if isinstance(patch_size, bool) or not isinstance(patch_size, int):
            raise ConfigurationError(f'patch_size must be an int, got {patch_size!r}.')
        if patch_size < 8:
            raise ConfigurationError(f'patch_size must be >= 8, got {patch_size}.')
        if batch_size < 1:
            raise ConfigurationError(f'batch_size must be >= 1, got {batch_size}.')
        if statistics_samples < 1:
            raise ConfigurationError(
                f'statistics_samples must be >= 1, got {statistics_samples}.'
            )
        super().__init__(
            self.dataset_type,  # type: ignore[arg-type]
            batch_size=batch_size,
            patch_size=patch_size,
            length=length,
            num_workers=default_num_workers() if num_workers is None else num_workers,
        )
        self.patch_size: int = patch_size
        self.root = root
        self.modality_names = self.dataset_type.select_modalities(modalities)
        self.ignore_index = ignore_index
        self.dataset_kwargs = dict(dataset_kwargs)
        self.given_statistics = {
            name: ModalityStatistics.coerce(value)
            for name, value in (statistics or {}).items()
        }
        extra = sorted(set(self.given_statistics) - set(self.modality_names))
        if extra:
            raise ConfigurationError(
                f'statistics: {extra} are not among the modalities '
                f'{list(self.modality_names)}.'
            )
        self.statistics_samples = statistics_samples
        self.cache_statistics = cache_statistics
        self.seed = seed
        self.statistics: dict[str, ModalityStatistics] = {}
        self.augmentation = JointFlipRotate() if augment else None
        self.normalize: NormalizeModalities | None = None

    @property
    def modalities(self) -> dict[str, int]:
        """Modality name to band count, in the release's order.

        Returns:
            The loaded modalities.
        """
        return self.dataset_type.num_bands_of(self.modality_names)

    @property
    def statistics_path(self) -> str:
        """Where estimated statistics are cached.

        Returns:
            ``<root>/torchgeo_stars_statistics.json``.
        """
        return os.path.join(self.root, STATISTICS_FILE)

    # Datasets -----------------------------------------------------------------

    def make_dataset(self, split: str) -> BenchmarkDataset:
        """The dataset of one split.

        Args:
            split: ``'train'``, ``'val'`` or ``'test'``.

        Returns:
            The dataset (georeferenced ones fill invalid pixels with the band
            means of :attr:`statistics`).
        """
        kwargs = dict(self.dataset_kwargs)
        if self.statistics and not issubclass(self.dataset_type, TileDataset):
            kwargs['statistics'] = self.statistics
        dataset: BenchmarkDataset = self.dataset_type(  # type: ignore[call-arg]
            root=self.root,
            split=split,
            modalities=self.modality_names,
            ignore_index=self.ignore_index,
            **kwargs,
        )
        return dataset

    def _random_sampler(self, dataset: BenchmarkDataset) -> Sampler[Any]:
        if isinstance(dataset, TileDataset):
            pixels = sum(h * w for h, w in map(dataset.tile_shape, range(len(dataset))))
            length = self.length or max(
                self.batch_size, 2 * round(pixels / self.patch_size**2)
            )
            return RandomTileSampler(dataset, self.patch_size, length, self.seed)
        assert isinstance(dataset, GeoDataset)
        xres, yres = dataset.res
        area = dataset.index.geometry.union_all().area
        cells = area / (xres * yres) / self.patch_size**2
        length = self.length or max(self.batch_size, 2 * round(cells))
        return RandomPatchSampler(
            dataset, size=self.patch_size, length=length, generator=self.seed
        )

    def _grid_sampler(self, dataset: BenchmarkDataset) -> Sampler[Any]:
        if isinstance(dataset, TileDataset):
            return GridTileSampler(dataset, self.patch_size)
        assert isinstance(dataset, GeoDataset)
        return GriddedPatchSampler(
            dataset, size=self.patch_size, stride=self.patch_size
        )

    # Statistics ---------------------------------------------------------------

    def _cache_key(self, train: BenchmarkDataset) -> dict[str, Any]:
        return {
            'dataset': type(train).__name__,
            'tiles': sorted(getattr(train, 'tiles', [])),
            'patch_size': self.patch_size,
            'samples': self.statistics_samples,
            'seed': self.seed,
        }

    def _read_cache(self) -> list[dict[str, Any]]:
        try:
            with open(self.statistics_path) as file:
                records = json.load(file)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            logger.warning('ignoring unreadable %s (%s)', self.statistics_path, err)
            return []
        return records if isinstance(records, list) else []

    def _estimate_statistics(self) -> dict[str, ModalityStatistics]:
        """Given statistics, then cached ones, then estimates on the train split.

        Returns:
            Modality name to its statistics.
        """
        stats = dict(self.given_statistics)
        needed = [m for m in self.modality_names if m not in stats]
        if not needed:
            return stats
        train = self.make_dataset('train')
        key = self._cache_key(train)
        records = self._read_cache() if self.cache_statistics else []
        for record in records:
            cached = record.get('statistics', {})
            if record.get('key') == key and all(m in cached for m in needed):
                logger.info('statistics read from %s', self.statistics_path)
                stats.update(
                    {m: ModalityStatistics.from_dict(cached[m]) for m in needed}
                )
                return stats
        if isinstance(train, TileDataset):
            estimated = tile_statistics(
                train, self.statistics_samples, self.patch_size, self.seed
            )
        else:
            assert isinstance(train, GeoDataset)
            estimated = {
                m: compute_statistics(
                    train,
                    m,
                    num_samples=self.statistics_samples,
                    patch_size=self.patch_size,
                    seed=self.seed,
                )
                for m in needed
            }
        stats.update({m: estimated[m] for m in needed})
        if self.cache_statistics:
            self._write_cache(records, key, {m: estimated[m] for m in needed})
        return stats

    def _write_cache(
        self,
        records: list[dict[str, Any]],
        key: dict[str, Any],
        stats: Mapping[str, ModalityStatistics],
    ) -> None:
        kept = [r for r in records if r.get('key') != key]
        kept.append(
            {'key': key, 'statistics': {m: s.to_dict() for m, s in stats.items()}}
        )
        temporary = self.statistics_path + '.tmp'
        try:
            with open(temporary, 'w') as file:
                json.dump(kept, file, indent=1)
            os.replace(temporary, self.statistics_path)
        except OSError as err:
            logger.warning(
                'statistics not cached: cannot write %s (%s); they are estimated '
                'again next time, or give them as statistics=',
                self.statistics_path,
                err,
            )

    # Lightning ----------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Find the split files, estimate (or read) statistics, make samplers.

        Args:
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``
                (predicts over the test split).

        Raises:
            DataError: If the root or a file of a split is missing.
        """
        if any(m not in self.statistics for m in self.modality_names):
            self.statistics = self._estimate_statistics()
        self.normalize = NormalizeModalities(
            self.statistics, modalities=self.modality_names
        )
        splits = {
            'fit': ['train', 'val'],
            'validate': ['val'],
            'test': ['test'],
            'predict': ['predict'],
        }[stage]
        for split in splits:
            dataset = self.make_dataset('test' if split == 'predict' else split)
            setattr(self, f'{split}_dataset', dataset)
            if split == 'train':
                self.train_sampler = self._random_sampler(dataset)  # type: ignore[assignment]
            else:
                setattr(self, f'{split}_sampler', self._grid_sampler(dataset))

    def on_after_batch_transfer(
        self, batch: dict[str, Tensor], dataloader_idx: int
    ) -> dict[str, Tensor]:
        """Normalise every modality; augment training batches.

        Args:
            batch: A batch on its device.
            dataloader_idx: Index of the dataloader.

        Returns:
            The transformed batch.
        """
        trainer = self.trainer
        training = trainer is not None and trainer.training
        return normalize_and_augment(
            batch, self.normalize, self.augmentation, self.modality_names, training
        )

    def plot(self, *args: Any, **kwargs: Any) -> Figure | None:
        """Plot a sample with the ``plot()`` of a split's dataset.

        Args:
            *args: ``sample`` (unbatched, ``prediction`` optional), then
                ``show_titles`` and ``suptitle``.
            **kwargs: the same by name.

        Returns:
            The figure, or None before :meth:`setup`.
        """
        dataset = self._benchmark_dataset()
        return None if dataset is None else dataset.plot(*args, **kwargs)

    @property
    def quicklook_bands(self) -> Mapping[str, tuple[int, int, int]]:
        """Modality to the indexes of its red, green and blue bands, for figures.

        Returns:
            The dataset's ``quicklook_bands``, empty before :meth:`setup`.
        """
        dataset = self._benchmark_dataset()
        return {} if dataset is None else dataset.quicklook_bands

    def _benchmark_dataset(self) -> BenchmarkDataset | None:
        """The first split's dataset that :meth:`setup` made, if any."""
        for split in ('val', 'test', 'train', 'predict'):
            dataset = getattr(self, f'{split}_dataset', None)
            if isinstance(dataset, BenchmarkDataset):
                return dataset
        return None
