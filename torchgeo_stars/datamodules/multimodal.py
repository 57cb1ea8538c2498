"""A GeoDataModule over per-modality rasters paired by geographic extent."""

import contextlib
import io
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import shapely
from geopandas import GeoSeries
from matplotlib.figure import Figure
from torch import Tensor
from torchgeo.datamodules import GeoDataModule
from torchgeo.datasets import GeoDataset, roi_split
from torchgeo.samplers import GriddedPatchSampler, RandomPatchSampler

from ..datasets import (
    ConfigurableRaster,
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
from ..datasets.align import IMAGE_OPTIONS, MASK_OPTIONS, AlignedRasters
from ..datasets.keys import MASK
from ..errors import ConfigurationError, DataError
from .augmentation import JointFlipRotate, normalize_and_augment
from .loading import MachineLoaders, default_num_workers
from .splits import Box, Stripe, cut_stripes, grid_area, inner_box, random_patch_margin

logger = logging.getLogger(__name__)

#: Dataset class used for each standard modality name; other names use
#: :class:`~torchgeo_stars.datasets.ModalityRaster`.
MODALITY_CLASSES: dict[str, type[ModalityRaster]] = {
    'optical': OpticalRaster,
    'sar': SARRaster,
    'dsm': DSMRaster,
}

#: Layout arguments that select source files; they do not apply to the one
#: aligned raster per modality written with ``align_dir``.
FILE_PATTERNS = ('filename_glob', 'filename_regex', 'date_format', 'separate_files')


def _take_footprint(aligned: GeoDataset, source: GeoDataset) -> None:
    """Give an aligned raster's index the footprint of its source files.

    Args:
        aligned: The dataset of an aligned raster (modified).
        source: The dataset of the files it was warped from.
    """
    footprint = source.index.to_crs(aligned.index.crs).geometry.union_all()
    aligned.index = aligned.index.set_geometry(
        GeoSeries([footprint] * len(aligned.index), index=aligned.index.index),
        crs=aligned.index.crs,
    )


def _describe(box: Box, dataset: GeoDataset) -> str:
    """A box, its size in pixels and the CRS, for error messages."""
    xres, yres = dataset.res
    width = (box[2] - box[0]) / xres
    height = (box[3] - box[1]) / yres
    return (
        f'{tuple(round(v, 2) for v in box)} ({width:.0f} x {height:.0f} pixels of '
        f'{xres:g} units, CRS {dataset.crs.to_string()})'
    )


class MultimodalDataModule(MachineLoaders, GeoDataModule):
    """Optical / SAR / DSM (any modalities) + labels, for STARS training.

    Builds one :class:`~torchgeo_stars.datasets.PairedDataset` from a path (or
    paths) per modality and the label path, reprojected onto the first
    modality's grid (or *crs* / *res*), then splits it by geographic area into
    consecutive stripes, train / val / test from west to east (or north to
    south), so no pixel is shared between splits:

    * the stripes are cut on whole pixels of the first modality's grid, so
      every patch is read on that grid (files on it are not resampled);
    * the val and test stripes are rounded to a whole number of patches (at
      least one), so their grids of patches stay inside them;
    * training draws random patches inside the train stripe
      (:class:`~torchgeo.samplers.RandomPatchSampler`, seeded with *seed*);
      validation and test a grid
      (:class:`~torchgeo.samplers.GriddedPatchSampler`); prediction a grid
      over the whole area of the images, without labels.

    Batches keep ``bounds`` and ``transform`` (TorchGeo's float32 tensors)
    through to ``predict_step``.

    After a batch reaches the device, each modality is normalised with its own
    per-band statistics (given, or estimated from the training stripe with
    :func:`~torchgeo_stars.datasets.compute_statistics`), unavailable
    modalities are zeros; training batches then get the same random flips and
    quarter turns on every modality and the mask (:class:`JointFlipRotate`).
    :attr:`statistics` is saved in the task's checkpoints for inference.

    .. versionadded:: 0.1
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
        num_workers: int | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_axis: Literal['x', 'y'] = 'x',
        augment: bool = True,
        statistics_samples: int = 32,
        seed: int = 0,
        align_dir: str | None = None,
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
                ``separate_files``, ``bands``, ``nodata``, ``to_db``,
                ``warp_cache_mb`` (memory for warped tiles per process) ...
                SAR in linear scale is converted to decibels unless its layout
                says ``to_db: false``.
            ignore_index: Label value for unlabelled pixels (also given to
                pixels the label files do not cover).
            crs: CRS of the common grid (default: the first modality's).
            res: Resolution of the common grid in CRS units.
            statistics: Per-modality normalisation statistics, used as given;
                estimated from the training stripe when None (or for the
                modalities left out).
            batch_size: Samples per batch.
            patch_size: Patch width and height in pixels.
            length: Training patches per epoch (default: enough to cover the
                training stripe about twice).
            num_workers: DataLoader worker processes; default: one per CPU
                core, at most 8 (:func:`~torchgeo_stars.datamodules.loading.default_num_workers`).
                0 reads in the training process.
            val_fraction: Fraction of the area for validation (rounded to whole
                patches, at least one).
            test_fraction: Fraction of the area for testing (likewise).
            split_axis: ``'x'``: train, val, test stripes from west to east;
                ``'y'``: from north to south.
            augment: Random flips and quarter turns during training.
            statistics_samples: Windows read per modality to estimate
                statistics.
            seed: Seed of the statistics windows and of the training patch
                positions.
            align_dir: Folder to warp every modality and the labels into once
                (:func:`~torchgeo_stars.datasets.align.align_rasters`), onto
                the first modality's grid (or *crs* / *res*); :meth:`setup`
                then reads the aligned rasters, without resampling. Worth it
                when the modalities are on different grids and training runs
                several epochs; it costs about the size of the inputs
                resampled to the common grid on disk. A folder aligned from
                the same files is reused (files that changed are re-done).
                Needs one file per scene (not ``separate_files``); the
                aligned rasters are one mosaic per modality, without dates.

        Raises:
            ConfigurationError: If the arguments are inconsistent.
        """
        if not paths:
            raise ConfigurationError('paths: give at least one modality path.')
        unknown = sorted(set(optional) - set(paths))
        if unknown:
            raise ConfigurationError(
                f'optional: {unknown} are not among the modalities {list(paths)}; '
                'name modalities that are keys of paths.'
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
        if split_axis not in ('x', 'y'):
            raise ConfigurationError(
                f"split_axis must be 'x' (west to east) or 'y' (north to south), "
                f'got {split_axis!r}.'
            )
        if isinstance(patch_size, bool) or not isinstance(patch_size, int):
            raise ConfigurationError(
                f'patch_size must be an int (pixels), got {patch_size!r}.'
            )
        if patch_size < 8:
            raise ConfigurationError(f'patch_size must be >= 8, got {patch_size}.')
        if batch_size < 1:
            raise ConfigurationError(f'batch_size must be >= 1, got {batch_size}.')
        if num_workers is None:
            num_workers = default_num_workers()
        if isinstance(num_workers, bool) or not isinstance(num_workers, int):
            raise ConfigurationError(
                f'num_workers must be an int >= 0, got {num_workers!r}.'
            )
        if num_workers < 0:
            raise ConfigurationError(f'num_workers must be >= 0, got {num_workers}.')
        if statistics_samples < 1:
            raise ConfigurationError(
                f'statistics_samples must be >= 1, got {statistics_samples}.'
            )
        super().__init__(
            PairedDataset,
            batch_size=batch_size,
            patch_size=patch_size,
            length=length,
            num_workers=num_workers,
        )
        self.patch_size: int = patch_size
        self.paths = {name: path for name, path in paths.items()}
        self.mask_paths = mask
        self.optional = tuple(optional)
        self.layouts = {name: dict(layout) for name, layout in (layouts or {}).items()}
        self.ignore_index = ignore_index
        self.crs = crs
        self.res = res
        self.given_statistics = {
            name: ModalityStatistics.coerce(value)
            for name, value in (statistics or {}).items()
        }
        extra = sorted(set(self.given_statistics) - set(paths))
        if extra:
            raise ConfigurationError(
                f'statistics: {extra} are not among the modalities {list(paths)}.'
            )
        self.fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        self.split_axis = split_axis
        self.statistics_samples = statistics_samples
        self.seed = seed
        self.statistics: dict[str, ModalityStatistics] = {}
        self.dataset: PairedDataset | None = None
        self.stripes: dict[str, Stripe] = {}
        self.augmentation = JointFlipRotate() if augment else None
        self.normalize: NormalizeModalities | None = None
        self.align_dir = align_dir
        self.aligned: AlignedRasters | None = None

    @property
    def modalities(self) -> dict[str, int]:
        """Modality name to band count, in order (needs :meth:`setup`).

        Raises:
            RuntimeError: If called before :meth:`setup`.
        """
        if self.dataset is None:
            raise RuntimeError('call setup() before reading modalities')
        return dict(self.dataset.num_bands)

    def layout_of(self, name: str) -> dict[str, Any]:
        """Keyword arguments of a modality's dataset class, defaults included.

        SAR in linear scale is converted to decibels unless its layout says
        ``to_db: false``: speckle is multiplicative, so decibels make it
        additive and the values close to normal, which suits normalisation.

        Args:
            name: Modality name.

        Returns:
            The arguments.
        """
        kwargs = dict(self.layouts.get(name, {}))
        if name == 'sar' and kwargs.get('input_scale', 'linear') == 'linear':
            kwargs.setdefault('to_db', True)
        return kwargs

    @property
    def reader_options(self) -> dict[str, dict[str, Any]]:
        """How each modality's values are read, for inference on new files.

        The value conversions of :meth:`layout_of` (``bands``, ``nodata``,
        ``to_db``, ``input_scale``, ``min_valid``), without the file-name
        patterns, which belong to this data's folders. The task saves them in
        its checkpoints so ``predict-geotiff`` reads rasters as training did.
        """
        value_options = ('bands', 'nodata', 'to_db', 'input_scale', 'min_valid')
        return {
            name: {
                key: value
                for key, value in self.layout_of(name).items()
                if key in value_options
            }
            for name in self.paths
        }

    def _modality_dataset(
        self, name: str, path: str | Sequence[str], aligned: bool = False
    ) -> ModalityRaster:
        """Index one modality's files.

        Args:
            name: Modality name.
            path: Folder, file or list of them.
            aligned: Whether *path* is an aligned raster (its layout's file
                patterns then do not apply).

        Returns:
            The modality's dataset.
        """
        kwargs = self.layout_of(name)
        if aligned:
            kwargs = {k: v for k, v in kwargs.items() if k not in FILE_PATTERNS}
        cls = MODALITY_CLASSES.get(name)
        if cls is None:
            return ModalityRaster(path, modality=name, **kwargs)
        return cls(path, **kwargs)

    def _build(self, with_mask: bool) -> PairedDataset:
        """Index every modality (and the labels) and pair them on one grid.

        TorchGeo prints a line each time it reprojects a dataset; that output
        goes to this module's logger (DEBUG) instead of stdout.

        Args:
            with_mask: Whether to read labels.

        Returns:
            The paired dataset over the whole area (invalid pixels filled with
            zeros; see :meth:`_with_statistics`).

        Raises:
            ConfigurationError: If labels are needed but no mask path is given.
        """
        if with_mask and self.mask_paths is None:
            raise ConfigurationError(
                'mask: training, validation and testing need labels; give the '
                'label folder or file as data.mask (MultimodalDataModule(mask=...)).'
            )
        messages = io.StringIO()
        with contextlib.redirect_stdout(messages):
            images = {
                name: self._modality_dataset(name, path)
                for name, path in self.paths.items()
            }
            mask = None
            if with_mask:
                assert self.mask_paths is not None
                mask = MaskRaster(
                    self.mask_paths,
                    ignore_index=self.ignore_index,
                    **self.layouts.get(MASK, {}),
                )
            if self.aligned is not None:
                images, mask = self._aligned_datasets(images, mask)
            dataset = pair_modalities(
                images, mask, optional=self.optional, crs=self.crs, res=self.res
            )
        for line in messages.getvalue().splitlines():
            logger.debug('%s', line)
        return dataset

    def _aligned_datasets(
        self, images: Mapping[str, ModalityRaster], mask: MaskRaster | None
    ) -> tuple[dict[str, ModalityRaster], MaskRaster | None]:
        """The aligned rasters, each with the footprint of its source files.

        An aligned raster covers the whole grid (nodata where its files do not
        reach); with its sources' footprint the paired area, the splits and the
        windows stay those of the files themselves.

        Args:
            images: The modalities' source datasets.
            mask: The labels' source dataset, if labels are read.

        Returns:
            The aligned modality datasets and label dataset.
        """
        assert self.aligned is not None
        aligned = {
            name: self._modality_dataset(name, str(self.aligned.paths[name]), True)
            for name in images
        }
        for name, dataset in aligned.items():
            _take_footprint(dataset, images[name])
        aligned_mask = None
        if mask is not None:
            layout = self.layouts.get(MASK, {})
            aligned_mask = MaskRaster(
                str(self.aligned.paths[MASK]),
                ignore_index=self.ignore_index,
                **{k: v for k, v in layout.items() if k not in FILE_PATTERNS},
            )
            _take_footprint(aligned_mask, mask)
        return aligned, aligned_mask

    def _align(self) -> AlignedRasters:
        """Warp every modality and the labels into :attr:`align_dir`, or reuse it.

        The files are the ones the datasets select (file patterns applied);
        the reader options that decide stored values go with them.

        Returns:
            The aligned rasters.

        Raises:
            ConfigurationError: If a modality uses one file per band.
        """
        from ..datasets.align import align_rasters

        assert self.align_dir is not None
        messages = io.StringIO()
        sources: dict[str, list[str]] = {}
        options: dict[str, dict[str, Any]] = {}
        with contextlib.redirect_stdout(messages):
            datasets: dict[str, ConfigurableRaster] = {
                name: self._modality_dataset(name, path)
                for name, path in self.paths.items()
            }
            if self.mask_paths is not None:
                datasets[MASK] = MaskRaster(
                    self.mask_paths,
                    ignore_index=self.ignore_index,
                    **self.layouts.get(MASK, {}),
                )
        for name, dataset in datasets.items():
            layout = (
                self.layouts.get(name, {}) if name == MASK else self.layout_of(name)
            )
            if dataset.separate_files:
                raise ConfigurationError(
                    f'align_dir: {name} has one file per band (separate_files); '
                    'stack the bands into one file per scene, or leave align_dir '
                    'unset.'
                )
            sources[name] = sorted({str(f) for f in dataset.index['filepath']})
            allowed = MASK_OPTIONS if name == MASK else IMAGE_OPTIONS
            options[name] = {k: v for k, v in layout.items() if k in allowed}
            if name == MASK and self.ignore_index is not None:
                options[name]['ignore_index'] = self.ignore_index
        mask = sources.pop(MASK, None)
        return align_rasters(
            sources,
            self.align_dir,
            mask=mask,
            crs=self.crs,
            res=self.res,
            options=options,
            progress=False,
        )

    def _with_statistics(self, dataset: PairedDataset) -> PairedDataset:
        """The same pairing, with invalid pixels filled with the band means.

        Args:
            dataset: A paired dataset from :meth:`_build`.

        Returns:
            A paired dataset over the same (already reprojected) member datasets.
        """
        return PairedDataset(
            dataset.modality_datasets,
            dataset.mask_dataset,
            optional=dataset.optional,
            statistics=self.statistics,
            spatial_only=dataset.spatial_only,
        )

    def _area(self, dataset: PairedDataset) -> Box:
        """The paired area on whole pixels of the first modality's grid.

        Args:
            dataset: The paired dataset.

        Returns:
            ``(xmin, ymin, xmax, ymax)``.

        Raises:
            DataError: If the area is less than a pixel wide or high.
        """
        reference = dataset.modality_datasets[dataset.modalities[0]]
        xmin, _, _, ymax = reference.index.total_bounds
        area = grid_area(dataset, (float(xmin), float(ymax)))
        if area[2] <= area[0] or area[3] <= area[1]:
            raise DataError(
                'the modalities (and labels) overlap on less than one pixel '
                f'({tuple(dataset.index.total_bounds)}); check the paths.'
            )
        return area

    def _stripes(self, dataset: PairedDataset) -> dict[str, Stripe]:
        """Cut the paired area into the train / val / test stripes.

        Args:
            dataset: The paired dataset.

        Returns:
            Split name to its stripe (splits with fraction 0 left out).
        """
        stripes = cut_stripes(
            self._area(dataset),
            dataset.res,
            self.fractions,
            self.split_axis,
            self.patch_size,
        )
        return {stripe.name: stripe for stripe in stripes}

    def _statistics(
        self, dataset: PairedDataset, train: Stripe
    ) -> dict[str, ModalityStatistics]:
        """Per-modality statistics: given ones, the rest estimated on *train*.

        Args:
            dataset: The paired dataset.
            train: The training stripe (statistics are read only there).

        Returns:
            Modality name to its statistics.

        Raises:
            DataError: If a modality has no file in the training stripe.
        """
        stats: dict[str, ModalityStatistics] = {}
        for name in dataset.modalities:
            given = self.given_statistics.get(name)
            if given is not None:
                stats[name] = given
                continue
            source = roi_split(dataset.modality_datasets[name], [train.polygon])[0]
            if len(source.index) == 0 or source.index.geometry.union_all().area <= 0:
                raise DataError(
                    f'modality {name!r} has no file in the train area '
                    f'{_describe(train.box, dataset)}, so its statistics cannot be '
                    f'estimated; give them as statistics={{{name!r}: {{"mean": '
                    '[...], "std": [...]}}}, or change split_axis / the fractions.'
                )
            stats[name] = compute_statistics(
                source,
                name,
                num_samples=self.statistics_samples,
                patch_size=self.patch_size,
                seed=self.seed,
            )
        return stats

    def _check_train_area(self, dataset: PairedDataset, stripe: Stripe) -> None:
        """Check that random patches fit in the training stripe.

        Args:
            dataset: The paired dataset.
            stripe: The training stripe.

        Raises:
            DataError: If the stripe cannot hold a random patch.
        """
        margin = random_patch_margin(self.patch_size, dataset.res)
        footprint = dataset.index.geometry.union_all() & stripe.polygon
        if shapely.buffer(footprint, -margin).is_empty:
            resx = dataset.res[0]
            raise DataError(
                f'the train area {_describe(stripe.box, dataset)} cannot hold random '
                f"{self.patch_size} x {self.patch_size} patches: TorchGeo's "
                'RandomPatchSampler keeps patch centres half a patch diagonal '
                f'({margin / resx:.1f} pixels) from the edges, so the area needs more '
                f'than {2 * margin / resx:.0f} pixels across. Use a smaller '
                'patch_size, smaller val_fraction / test_fraction (the val and test '
                'stripes are rounded to whole patches), or a larger area.'
            )

    def _grid_sampler(self, dataset: GeoDataset, box: Box) -> GriddedPatchSampler:
        """A grid of non-overlapping patches over *box*.

        Args:
            dataset: The split (its bounds are on the pixel grid).
            box: The area to cover.

        Returns:
            The sampler.
        """
        return GriddedPatchSampler(
            dataset,
            size=self.patch_size,
            stride=self.patch_size,
            roi=shapely.box(*inner_box(box, dataset.res)),
        )

    def setup(self, stage: str) -> None:
        """Index and pair the files, split by area, estimate statistics.

        Statistics are estimated once, on the training stripe, and reused by
        later stages. Prediction covers the whole area of the images; labels
        are then not read (but still bound the training stripe the statistics
        come from, when a mask path is given).

        Args:
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``.

        Raises:
            ConfigurationError: If *stage* needs labels and no mask is given.
            DataError: If a split needed by *stage* has no area or is too small.
        """
        if self.align_dir is not None and self.aligned is None:
            self.aligned = self._align()
        predict = stage == 'predict'
        labelled = self._build(with_mask=not predict or self.mask_paths is not None)
        stripes: dict[str, Stripe] = {}
        if not predict:
            stripes = self._stripes(labelled)
        elif any(n not in self.statistics for n in labelled.modalities):
            try:
                stripes = self._stripes(labelled)
            except DataError as err:
                raise DataError(
                    f'{err} To predict without a training area, give the '
                    "statistics the model was trained with (the checkpoint's)."
                ) from err
        if stage == 'fit':
            self._check_train_area(labelled, stripes['train'])
        if any(n not in self.statistics for n in labelled.modalities):
            self.statistics = self._statistics(labelled, stripes['train'])
        paired = labelled
        if predict and labelled.mask_dataset is not None:
            paired = self._build(with_mask=False)
        self.dataset = self._with_statistics(paired)
        self.stripes = stripes
        self.normalize = NormalizeModalities(
            self.statistics, modalities=self.dataset.modalities
        )
        if predict:
            area = self._area(self.dataset)
            self.predict_dataset = roi_split(self.dataset, [shapely.box(*area)])[0]
            self.predict_sampler = self._grid_sampler(self.predict_dataset, area)
            return
        names = ['train', 'val'] if stage == 'fit' else []
        if stage in ('validate', 'test'):
            names = ['val' if stage == 'validate' else 'test']
        for name in names:
            if name not in stripes:
                raise DataError(
                    f'{name}_fraction is 0, so there is no {name} area; give a '
                    f'positive {name}_fraction.'
                )
        parts = roi_split(self.dataset, [stripes[n].polygon for n in names])
        for name, part in zip(names, parts, strict=True):
            stripe = stripes[name]
            if len(part.index) == 0:
                raise DataError(
                    f'the {name} area {_describe(stripe.box, part)} holds no data; '
                    'change split_axis or the fractions.'
                )
            setattr(self, f'{name}_dataset', part)
            if name == 'train':
                self.train_sampler = RandomPatchSampler(
                    part,
                    size=self.patch_size,
                    length=self._epoch_length(stripe, part),
                    generator=self.seed,
                )
            else:
                setattr(self, f'{name}_sampler', self._grid_sampler(part, stripe.box))

    def _epoch_length(self, stripe: Stripe, train: GeoDataset) -> int:
        """Training patches per epoch: *length*, or about two covers of the area.

        Args:
            stripe: The training stripe.
            train: The training split.

        Returns:
            The number of patches.
        """
        if self.length is not None:
            return self.length
        xmin, ymin, xmax, ymax = stripe.box
        resx, resy = train.res
        size = self.patch_size
        cells = ((xmax - xmin) / resx / size) * ((ymax - ymin) / resy / size)
        return max(self.batch_size, 2 * round(cells))

    @property
    def quicklook_bands(self) -> Mapping[str, tuple[int, int, int]]:
        """Modality to the indexes of its red, green and blue bands, for figures.

        Returns:
            The paired dataset's (found from the band names), empty before
            :meth:`setup`.
        """
        return {} if self.dataset is None else self.dataset.quicklook_bands

    def plot(self, *args: Any, **kwargs: Any) -> Figure:
        """Plot a sample with :meth:`PairedDataset.plot` of the paired dataset.

        Args:
            *args: ``sample`` (unbatched, ``prediction`` optional), then
                ``show_titles`` and ``suptitle``.
            **kwargs: the same by name.

        Returns:
            The figure.

        Raises:
            RuntimeError: if called before :meth:`setup`.
        """
        if self.dataset is None:
            raise RuntimeError('call setup() before plot()')
        return self.dataset.plot(*args, **kwargs)

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
        modalities = self.dataset.modalities if self.dataset is not None else ()
        return normalize_and_augment(
            batch, self.normalize, self.augmentation, modalities, training
        )
