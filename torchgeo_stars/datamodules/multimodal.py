"""A GeoDataModule over per-modality rasters paired by geographic extent."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import shapely
from torch import Tensor
from torchgeo.datamodules import GeoDataModule
from torchgeo.datasets import GeoDataset, roi_split
from torchgeo.samplers import GriddedPatchSampler, RandomPatchSampler

from ..datasets import (
    DSMRaster,
    MaskRaster,
    ModalityRaster,
    ModalityStatistics,
    NormalizeModalities,
    OpticalRaster,
    PairedDataset,
    SARRaster,
    compute_statistics,
    pair_modalities,
)
from ..errors import ConfigurationError, DataError
from .augmentation import JointFlipRotate

#: Dataset class used for each standard modality name; other names use
#: :class:`~torchgeo_stars.datasets.ModalityRaster`.
MODALITY_CLASSES: dict[str, type[ModalityRaster]] = {
    'optical': OpticalRaster,
    'sar': SARRaster,
    'dsm': DSMRaster,
}

Split = Literal['train', 'val', 'test']


def _stripes(
    bounds: tuple[float, float, float, float],
    fractions: Sequence[float],
    axis: Literal['x', 'y'],
) -> list[shapely.Polygon]:
    """Cut a bounding box into consecutive stripes of the given area fractions.

    Args:
        bounds: ``(xmin, ymin, xmax, ymax)``.
        fractions: Fraction of the box per stripe, summing to 1.
        axis: ``'x'`` cuts west to east, ``'y'`` north to south.

    Returns:
        One box per fraction (empty fractions give None-like zero-area boxes).
    """
    xmin, ymin, xmax, ymax = bounds
    boxes = []
    start = 0.0
    for fraction in fractions:
        stop = start + fraction
        if axis == 'x':
            box = shapely.box(
                xmin + start * (xmax - xmin), ymin, xmin + stop * (xmax - xmin), ymax
            )
        else:
            box = shapely.box(
                xmin, ymax - stop * (ymax - ymin), xmax, ymax - start * (ymax - ymin)
            )
        boxes.append(box)
        start = stop
    return boxes


class MultimodalDataModule(GeoDataModule):
    """Optical / SAR / DSM (any modalities) + labels, for STARS training.

    Builds one :class:`~torchgeo_stars.datasets.PairedDataset` from a path (or
    paths) per modality and the label path, reprojected onto the first
    modality's grid (or *crs* / *res*), then splits it by geographic area into
    consecutive stripes, train / val / test from west to east (or north to
    south), so no pixel is shared between splits. Training draws random
    patches (:class:`~torchgeo.samplers.RandomPatchSampler`); validation, test
    and prediction a grid (:class:`~torchgeo.samplers.GriddedPatchSampler`).
    Batches keep ``bounds`` and ``transform`` through to ``predict_step``.

    After a batch reaches the device, each modality is normalised with its own
    per-band statistics (given, or estimated from the training area with
    :func:`~torchgeo_stars.datasets.compute_statistics`); training batches then
    get the same random flips and quarter turns on every modality and the mask.
    :attr:`statistics` is saved in the task's checkpoints for inference.
    """

    def __init__(
        self,
        paths: Mapping[str, str | Sequence[str]],
        mask: str | Sequence[str] | None = None,
        *,
        optional: Sequence[str] = (),
        layouts: Mapping[str, Mapping[str, Any]] | None = None,
        ignore_index: int | None = None,
        crs: str | None = None,
        res: float | None = None,
        statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None = None,
        batch_size: int = 8,
        patch_size: int = 128,
        length: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_axis: Literal['x', 'y'] = 'x',
        augment: bool = True,
        statistics_samples: int = 32,
        seed: int = 0,
    ) -> None:
        """Initialise the datamodule (files are indexed in :meth:`setup`).

        Args:
            paths: Modality name to a folder, a file or a list of them, in the
                order of the ``available`` flags (e.g. ``{'optical': 's2/',
                'sar': 's1/', 'dsm': 'dsm.tif'}``). ``optical``, ``sar`` and
                ``dsm`` use :class:`~torchgeo_stars.datasets.OpticalRaster`,
                :class:`~torchgeo_stars.datasets.SARRaster` and
                :class:`~torchgeo_stars.datasets.DSMRaster`; other names a
                :class:`~torchgeo_stars.datasets.ModalityRaster`.
            mask: Label folder, file or list (needed to fit, validate, test).
            optional: Modalities that may be missing in places; windows are
                drawn where the other modalities and the labels exist.
            layouts: Modality name (or ``'mask'``) to keyword arguments of its
                dataset class: ``filename_glob``, ``filename_regex``,
                ``separate_files``, ``bands``, ``nodata``, ``to_db`` ...
                SAR in linear scale is converted to decibels unless its layout
                says ``to_db: false``.
            ignore_index: Label value for unlabelled pixels (also given to
                pixels the label files do not cover).
            crs: CRS of the common grid (default: the first modality's).
            res: Resolution of the common grid in CRS units.
            statistics: Per-modality normalisation statistics; estimated from
                the training area when None (or for the modalities left out).
            batch_size: Samples per batch.
            patch_size: Patch width and height in pixels.
            length: Training patches per epoch (default: enough to cover the
                training area about once).
            num_workers: DataLoader worker processes.
            val_fraction: Fraction of the area for validation.
            test_fraction: Fraction of the area for testing.
            split_axis: ``'x'``: train, val, test stripes from west to east;
                ``'y'``: from north to south.
            augment: Random flips and quarter turns during training.
            statistics_samples: Windows read per modality to estimate
                statistics.
            seed: Seed of the statistics windows.

        Raises:
            ConfigurationError: If the arguments are inconsistent.
        """
        if not paths:
            raise ConfigurationError('paths: give at least one modality path.')
        unknown = sorted(set(optional) - set(paths))
        if unknown:
            raise ConfigurationError(
                f'optional: {unknown} are not among the modalities {list(paths)}.'
            )
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1):
            raise ConfigurationError(
                'val_fraction and test_fraction must be in [0, 1), got '
                f'{val_fraction} and {test_fraction}.'
            )
        if val_fraction + test_fraction >= 1:
            raise ConfigurationError(
                f'val_fraction + test_fraction = {val_fraction + test_fraction} leaves '
                'no training area; make their sum smaller than 1.'
            )
        if patch_size < 8:
            raise ConfigurationError(f'patch_size must be >= 8, got {patch_size}.')
        super().__init__(
            PairedDataset,
            batch_size=batch_size,
            patch_size=patch_size,
            length=length,
            num_workers=num_workers,
        )
        self.paths = {name: path for name, path in paths.items()}
        self.mask_paths = mask
        self.optional = tuple(optional)
        self.layouts = {name: dict(layout) for name, layout in (layouts or {}).items()}
        self.ignore_index = ignore_index
        self.crs = crs
        self.res = res
        self.given_statistics = dict(statistics or {})
        self.fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        self.split_axis = split_axis
        self.statistics_samples = statistics_samples
        self.seed = seed
        self.statistics: dict[str, ModalityStatistics] = {}
        self.dataset: PairedDataset | None = None
        self.augmentation = JointFlipRotate() if augment else None
        self.normalize: NormalizeModalities | None = None

    @property
    def modalities(self) -> dict[str, int]:
        """Modality name to band count, in order (needs :meth:`setup`).

        Raises:
            RuntimeError: If called before :meth:`setup`.
        """
        if self.dataset is None:
            raise RuntimeError('call setup() before reading modalities')
        return dict(self.dataset.num_bands)

    def _modality_dataset(self, name: str, path: str | Sequence[str]) -> ModalityRaster:
        """Index one modality's files.

        Args:
            name: Modality name.
            path: Folder, file or list of them.

        Returns:
            The modality's dataset.
        """
        kwargs = dict(self.layouts.get(name, {}))
        if name == 'sar' and kwargs.get('input_scale', 'linear') == 'linear':
            # Speckle is multiplicative: decibels make it additive and the
            # values close to normal, which suits normalisation and training.
            kwargs.setdefault('to_db', True)
        cls = MODALITY_CLASSES.get(name)
        if cls is None:
            return ModalityRaster(path, modality=name, **kwargs)
        return cls(path, **kwargs)

    def _build(
        self,
        with_mask: bool,
        statistics: Mapping[str, ModalityStatistics] | None = None,
    ) -> PairedDataset:
        """Index every modality (and the labels) and pair them on one grid.

        Args:
            with_mask: Whether labels are needed.
            statistics: Statistics whose band means fill invalid pixels.

        Returns:
            The paired dataset over the whole area.

        Raises:
            ConfigurationError: If labels are needed but no mask path is given.
        """
        images = {
            name: self._modality_dataset(name, path)
            for name, path in self.paths.items()
        }
        mask = None
        if with_mask:
            if self.mask_paths is None:
                raise ConfigurationError(
                    'mask: training, validation and testing need labels; give the '
                    'label folder or file as data.mask.'
                )
            mask = MaskRaster(
                self.mask_paths,
                ignore_index=self.ignore_index,
                **self.layouts.get('mask', {}),
            )
        return pair_modalities(
            images,
            mask,
            optional=self.optional,
            crs=self.crs,
            res=self.res,
            statistics=statistics,
        )

    def _split(self, dataset: PairedDataset) -> dict[Split, GeoDataset]:
        """Cut the paired dataset into train / val / test areas.

        Args:
            dataset: The paired dataset over the whole area.

        Returns:
            The dataset of each split.

        Raises:
            DataError: If a split's area cannot hold one patch.
        """
        xmin, ymin, xmax, ymax = dataset.index.total_bounds
        boxes = _stripes((xmin, ymin, xmax, ymax), self.fractions, self.split_axis)
        names: list[Split] = ['train', 'val', 'test']
        kept = [
            (n, b, f)
            for n, b, f in zip(names, boxes, self.fractions, strict=True)
            if f > 0
        ]
        parts = roi_split(dataset, [box for _, box, _ in kept])
        splits: dict[Split, GeoDataset] = {}
        patch = (
            self.patch_size
            if isinstance(self.patch_size, int)
            else max(self.patch_size)
        )
        resx, resy = dataset.res
        for (name, box, _), part in zip(kept, parts, strict=True):
            bx0, by0, bx1, by1 = (
                part.index.total_bounds if len(part.index) else (0, 0, 0, 0)
            )
            width, height = (bx1 - bx0) / resx, (by1 - by0) / resy
            if len(part.index) == 0 or min(width, height) < patch:
                raise DataError(
                    f'the {name} area {tuple(round(v, 2) for v in box.bounds)} '
                    f'({width:.0f} x {height:.0f} pixels of {resx:g} units, CRS '
                    f'{dataset.crs.to_string()}) cannot hold one {patch} x {patch} '
                    'patch; use a smaller patch_size, change the split fractions, or '
                    'give a larger area.'
                )
            splits[name] = part
        return splits

    def _statistics(
        self, dataset: PairedDataset, train: GeoDataset
    ) -> dict[str, ModalityStatistics]:
        """Per-modality statistics: given ones, the rest estimated on *train*.

        Args:
            dataset: The paired dataset over the whole area.
            train: Its training split (statistics are read only there).

        Returns:
            Modality name to its statistics.
        """
        stats: dict[str, ModalityStatistics] = {}
        area = shapely.box(*train.index.total_bounds)
        patch = (
            self.patch_size
            if isinstance(self.patch_size, int)
            else max(self.patch_size)
        )
        for name in dataset.modalities:
            given = self.given_statistics.get(name)
            if given is not None:
                stats[name] = ModalityStatistics.coerce(given)
                continue
            source = roi_split(dataset.modality_datasets[name], [area])[0]
            stats[name] = compute_statistics(
                source,
                name,
                num_samples=self.statistics_samples,
                patch_size=patch,
                seed=self.seed,
            )
        return stats

    def setup(self, stage: str) -> None:
        """Index and pair the files, split by area, estimate statistics.

        Statistics are estimated once, on the training area, and reused by
        later stages.

        Args:
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``.

        Raises:
            DataError: If a split needed by *stage* has no area.
        """
        with_mask = stage != 'predict' or self.mask_paths is not None
        if not self.statistics:
            unfilled = self._build(with_mask)
            self.statistics = self._statistics(unfilled, self._split(unfilled)['train'])
        self.dataset = self._build(with_mask, self.statistics)
        self.normalize = NormalizeModalities(
            self.statistics, modalities=self.dataset.modalities
        )
        patch = self.patch_size
        if stage == 'predict':
            self.predict_dataset = self.dataset
            self.predict_sampler = GriddedPatchSampler(
                self.dataset, size=patch, stride=patch
            )
            return
        splits = self._split(self.dataset)
        if stage == 'fit':
            self.train_dataset = splits['train']
            self.train_sampler = RandomPatchSampler(
                self.train_dataset,
                size=patch,
                length=self._epoch_length(splits['train']),
            )
        wanted: list[Split] = {
            'fit': ['val'],
            'validate': ['val'],
            'test': ['test'],
        }.get(stage, [])
        for name in wanted:
            if name not in splits:
                raise DataError(
                    f'{name}_fraction is 0, so there is no {name} area; give a '
                    f'positive {name}_fraction.'
                )
            sampler = GriddedPatchSampler(splits[name], size=patch, stride=patch)
            setattr(self, f'{name}_dataset', splits[name])
            setattr(self, f'{name}_sampler', sampler)

    def _epoch_length(self, train: GeoDataset) -> int:
        """Training patches per epoch: *length*, or about two covers of the area.

        Args:
            train: The training split.

        Returns:
            The number of patches.
        """
        if self.length is not None:
            return self.length
        xmin, ymin, xmax, ymax = train.index.total_bounds
        resx, resy = train.res
        size = (
            self.patch_size
            if isinstance(self.patch_size, int)
            else max(self.patch_size)
        )
        cells = ((xmax - xmin) / resx / size) * ((ymax - ymin) / resy / size)
        return max(self.batch_size, 2 * round(cells))

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
        if self.normalize is not None:
            self.normalize.to(next(iter(batch.values())).device)
            batch = self.normalize(batch)
        trainer = self.trainer
        if self.augmentation is not None and trainer is not None and trainer.training:
            assert self.dataset is not None
            keys = [f'image_{name}' for name in self.dataset.modalities]
            batch = self.augmentation(batch, keys)
        return batch
