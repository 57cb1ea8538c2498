"""Pair modality datasets by geographic extent, with optional modalities.

:func:`pair_modalities` is the general constructor (the ``&`` operator of the
modality rasters gives :class:`~torchgeo_stars.datasets.ModalityIntersection`,
where every modality is required):

.. code-block:: python

   dataset = pair_modalities(
       {'optical': OpticalRaster('s2/'), 'sar': SARRaster('s1/', to_db=True),
        'dsm': DSMRaster('dsm/')},
       mask=MaskRaster('labels/'),
       optional=['sar', 'dsm'],
       statistics=stats,   # invalid pixels filled with the band mean
   )
   sampler = RandomGeoSampler(dataset, size=256, length=1000)
   loader = DataLoader(dataset, sampler=sampler, collate_fn=stack_samples)
"""

import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import rasterio
import torch
from geopandas import GeoDataFrame
from matplotlib.figure import Figure
from pyproj import CRS
from rasterio.warp import calculate_default_transform
from torch import Tensor
from torchgeo.datasets import GeoDataset, RasterDataset
from torchgeo.datasets.utils import GeoSlice, Sample

from ..errors import ConfigurationError, DataError
from .intersection import (
    ModalityIntersection,
    describe_dataset,
    fill_invalid,
    nodata_of,
    union_geometry,
)
from .keys import AVAILABLE, BOUNDS, MASK, TRANSFORM, check_modalities, image_key
from .normalization import ModalityStatistics, coerce_statistics
from .plotting import plot_sample, rgb_band_indexes
from .torchgeo_adapter import window_grid


def _band_count(name: str, dataset: GeoDataset) -> int:
    count = getattr(dataset, 'num_bands', None)
    if isinstance(count, int):
        return count
    if isinstance(dataset, RasterDataset):
        if dataset.bands:
            return len(dataset.bands)
        with rasterio.open(dataset.index['filepath'].iloc[0]) as src:
            return int(src.count)
    raise ConfigurationError(
        f'pair_modalities: cannot tell the band count of modality {name!r} '
        f'({type(dataset).__name__}); give a RasterDataset or a dataset with a '
        '`num_bands` attribute.'
    )


def _resolution_in(
    dataset: GeoDataset, source_crs: CRS, target_crs: CRS
) -> tuple[float, float]:
    """The resolution a dataset's pixels have once warped to another CRS."""
    xres, yres = dataset.res
    xmin, ymin, xmax, ymax = dataset.index.total_bounds
    width = max(1, round((xmax - xmin) / xres))
    height = max(1, round((ymax - ymin) / yres))
    transform, _, _ = calculate_default_transform(
        source_crs, target_crs, width, height, xmin, ymin, xmax, ymax
    )
    return (float(transform.a), float(-transform.e))


class PairedDataset(GeoDataset):
    """Modality datasets paired on one grid, with per-sample availability.

    Built by :func:`pair_modalities` (see there for the arguments). The index is
    TorchGeo's intersection of the required modalities and the mask, so samplers
    draw windows only where all of them have files; optional modalities are
    read where they exist.

    Sample keys:

    * ``image_<modality>`` for every modality, float32 (C_m, H, W), NaN-free:
      invalid pixels (NaN / non-finite, and for plain TorchGeo datasets pixels
      equal to their ``nodata`` or their first file's nodata) are filled with the band mean when statistics for that
      modality are given (so they normalise to 0), else with 0. A modality with
      no valid pixel in the window, or (optional ones) no file there, is all
      zeros.
    * ``mask`` (int64 (H, W)) when a mask dataset is given.
    * ``bounds``, ``transform``: TorchGeo's, once.
    * ``available``: bool (M,), in the order of the modalities; False where the
      modality is all zeros as above (also for required modalities).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        images: Mapping[str, GeoDataset],
        mask: GeoDataset | None = None,
        *,
        optional: Collection[str] = (),
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None = None,
        spatial_only: bool = False,
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        """Pair the datasets; see :func:`pair_modalities`.

        Args:
            images: modality name -> dataset, in the order of ``available``.
            mask: optional label dataset (sample key ``mask``).
            optional: modalities that may be missing.
            crs: CRS of the common grid (default: the first modality's).
            res: resolution of the common grid (default: the first modality's).
            statistics: modality -> statistics, for mean filling.
            spatial_only: if True, ignore file dates.
            transforms: a function/transform applied to every sample.

        Raises:
            ConfigurationError: on invalid names / optional / statistics.
            DataError: if required datasets do not overlap, or an optional one
                does not overlap them at all.
        """
        check_modalities(list(images), 'pair_modalities')
        names = tuple(images)
        unknown = sorted(set(optional) - set(names))
        if unknown:
            raise ConfigurationError(
                f'pair_modalities: optional modalities {unknown} are not among the '
                f'modalities {list(names)}.'
            )
        required = tuple(n for n in names if n not in optional)
        if not required:
            raise ConfigurationError(
                f'pair_modalities: every modality {list(names)} is optional; at '
                'least one must be required (remove it from optional=).'
            )
        stats = coerce_statistics(statistics)
        extra = sorted(set(stats) - set(names))
        if extra:
            raise ConfigurationError(
                f'pair_modalities: statistics for {extra}, which are not among the '
                f'modalities {list(names)}.'
            )

        self.modality_datasets: dict[str, GeoDataset] = dict(images)
        self.mask_dataset = mask
        self.datasets: list[GeoDataset] = list(images.values())
        if mask is not None:
            self.datasets.append(mask)
        self.modalities = names
        self.required = required
        self.optional = tuple(n for n in names if n in optional)
        self.statistics = stats
        self.spatial_only = spatial_only
        self.transforms = transforms

        # One grid: the reference modality's CRS/resolution, or the given ones
        reference = images[names[0]]
        source_crs = CRS.from_user_input(reference.crs)
        target_crs = CRS.from_user_input(crs) if crs is not None else source_crs
        if res is not None:
            grid_res = (float(res), float(res)) if isinstance(res, int | float) else res
        elif target_crs != source_crs:
            grid_res = _resolution_in(reference, source_crs, target_crs)
        else:
            grid_res = reference.res
        for ds in self.datasets:
            ds.crs = target_crs
            ds.res = grid_res
        self._res = (float(grid_res[0]), float(grid_res[1]))

        # Index: TorchGeo's intersection of the required datasets (and mask)
        core = [images[n] for n in required] + ([mask] if mask is not None else [])
        joined = functools.reduce(
            lambda a, b: ModalityIntersection(a, b, spatial_only=spatial_only),
            core[1:],
            core[0],
        )
        self.index = GeoDataFrame(
            index=joined.index.index,
            geometry=joined.index.geometry.values,
            crs=joined.index.crs,
        )
        area = self.index.geometry.union_all()
        for name in self.optional:
            if not union_geometry([images[name]]).intersects(area):
                raise DataError(
                    f'Optional modality {name!r} {describe_dataset(images[name])} '
                    'does not overlap the required modalities '
                    f'{list(required)} anywhere (bounds {tuple(images[name].index.total_bounds)} '
                    f'vs {tuple(self.index.total_bounds)} in {target_crs.to_string()}). '
                    'Check its path and CRS.'
                )

        self.num_bands = {n: _band_count(n, images[n]) for n in names}
        self._nodata = {n: nodata_of(images[n]) for n in names}
        self._fill: dict[str, Tensor] = {}
        for name, s in stats.items():
            if s.num_bands != self.num_bands[name]:
                raise ConfigurationError(
                    f'pair_modalities: statistics of {name!r} have {s.num_bands} '
                    f'bands but the dataset has {self.num_bands[name]}.'
                )
            self._fill[name] = torch.tensor(s.mean, dtype=torch.float32)

    # Grid ---------------------------------------------------------------------

    @property
    def crs(self) -> CRS:
        """CRS of the common grid.

        Returns:
            The CRS.
        """
        return CRS.from_user_input(self.index.crs)

    @crs.setter
    def crs(self, new_crs: CRS) -> None:
        """Reproject the common grid (and every member dataset).

        Args:
            new_crs: the new CRS.
        """
        if new_crs == self.crs:
            return
        self.index.to_crs(new_crs, inplace=True)
        for ds in self.datasets:
            ds.crs = new_crs

    @property
    def res(self) -> tuple[float, float]:
        """Resolution of the common grid.

        Returns:
            (xres, yres) in CRS units.
        """
        return self._res

    @res.setter
    def res(self, new_res: float | tuple[float, float]) -> None:
        """Change the resolution of the common grid (and every member dataset).

        Args:
            new_res: the new resolution.
        """
        if isinstance(new_res, int | float):
            new_res = (float(new_res), float(new_res))
        self._res = new_res
        for ds in self.datasets:
            ds.res = new_res

    # Reading ------------------------------------------------------------------

    def _image(self, name: str, sample: Sample) -> Tensor:
        dataset = self.modality_datasets[name]
        keys = [image_key(name), 'image']
        own = getattr(dataset, 'modality', None)
        if isinstance(own, str):
            keys.insert(1, image_key(own))
        for key in keys:
            if key in sample:
                image = sample[key].to(torch.float32)
                break
        else:
            raise ConfigurationError(
                f'pair_modalities: the dataset of modality {name!r} returns keys '
                f'{sorted(sample)}, none of {keys}.'
            )
        nodata = self._nodata[name]
        if nodata is not None:
            image = torch.where(image == nodata, torch.nan, image)
        return image

    def __getitem__(self, index: GeoSlice) -> Sample:
        """Read every modality (and the mask) over one window.

        Args:
            index: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            The sample (see the class docstring).

        Raises:
            IndexError: if a required modality or the mask has no file there.
            DataError: if a modality's window does not have the window's shape.
        """
        grid = window_grid(self, index)
        x, y, t = grid.x, grid.y, grid.t
        query: GeoSlice = (x, y) if self.spatial_only else (x, y, t)

        raw: dict[str, Tensor | None] = {}
        for name in self.required:
            raw[name] = self._image(name, self.modality_datasets[name][query])
        out: Sample = {}
        if self.mask_dataset is not None:
            sample = self.mask_dataset[query]
            if MASK not in sample:
                raise ConfigurationError(
                    'pair_modalities: the mask dataset returns keys '
                    f'{sorted(sample)}, without "mask"; use MaskRaster (or a '
                    'RasterDataset with is_image=False).'
                )
            mask = sample[MASK].to(torch.long)
        for name in self.optional:
            try:
                raw[name] = self._image(name, self.modality_datasets[name][query])
            except IndexError:
                raw[name] = None

        first = raw[self.required[0]]
        assert first is not None
        height, width = first.shape[-2:]
        available = []
        for name in self.modalities:
            image = raw[name]
            shape = (self.num_bands[name], height, width)
            if image is None:
                image, ok = torch.zeros(shape), False
            else:
                if tuple(image.shape) != shape:
                    raise DataError(
                        f'Modality {name!r} gave an image of shape '
                        f'{tuple(image.shape)} for a window of shape {shape}; '
                        'check its band layout (bands=, separate_files=).'
                    )
                image, ok = fill_invalid(image, self._fill.get(name))
            out[image_key(name)] = image
            available.append(ok)
        if self.mask_dataset is not None:
            out[MASK] = mask
        out[BOUNDS] = grid.bounds_tensor()
        out[TRANSFORM] = torch.tensor(grid.transform)
        out[AVAILABLE] = torch.tensor(available, dtype=torch.bool)
        if self.transforms is not None:
            out = self.transforms(out)
        return out

    def plot(
        self, sample: Sample, show_titles: bool = True, suptitle: str | None = None
    ) -> Figure:
        """Plot every modality of a sample, its label and its prediction.

        Args:
            sample: a sample of this dataset (``prediction`` optional).
            show_titles: title each panel.
            suptitle: title of the figure.

        Returns:
            The figure (see :func:`~torchgeo_stars.datasets.plot_sample`).
        """
        return plot_sample(
            sample,
            self.modalities,
            rgb_bands=self.quicklook_bands,
            show_titles=show_titles,
            suptitle=suptitle,
        )

    @property
    def quicklook_bands(self) -> Mapping[str, tuple[int, int, int]]:
        """Modality to the indexes of its red, green and blue bands.

        Returns:
            The modalities whose dataset names all three bands
            (:func:`~torchgeo_stars.datasets.rgb_band_indexes` of its
            ``bands``); the others show their first bands.
        """
        found = {
            name: rgb_band_indexes(getattr(dataset, 'bands', ()))
            for name, dataset in self.modality_datasets.items()
        }
        return {name: rgb for name, rgb in found.items() if rgb is not None}

    def __and__(self, other: GeoDataset) -> ModalityIntersection:
        """Intersect with another dataset, keeping one key per modality.

        Args:
            other: another GeoDataset.

        Returns:
            A :class:`~torchgeo_stars.datasets.ModalityIntersection`.
        """
        return ModalityIntersection(self, other, spatial_only=self.spatial_only)

    def __str__(self) -> str:
        """Short description.

        Returns:
            Modalities, grid and size.
        """
        return (
            f'PairedDataset(modalities={list(self.modalities)}, '
            f'optional={list(self.optional)}, mask={self.mask_dataset is not None}, '
            f'crs={self.crs.to_string()}, res={self.res}, size={len(self)})'
        )


def pair_modalities(
    images: Mapping[str, GeoDataset],
    mask: GeoDataset | None = None,
    *,
    optional: Collection[str] = (),
    crs: CRS | str | int | None = None,
    res: float | tuple[float, float] | None = None,
    statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None = None,
    spatial_only: bool = False,
    transforms: Callable[[Sample], Sample] | None = None,
) -> PairedDataset:
    """Pair modality datasets (and a mask) by geographic extent on one grid.

    All datasets are reprojected onto one grid: the first modality's CRS and
    resolution, or *crs* / *res* (with only *crs*, the first modality's pixel
    size carried over to it). Windows are drawn where every required modality
    and the mask have files (TorchGeo's intersection); an optional modality
    without a file in a window, or with no valid pixel there, gets
    ``available`` False and zeros. Date-less files (no ``date`` group) are
    valid at every date, so they pair with dated ones. Samples never hold NaN;
    see :class:`PairedDataset` for the keys and the filling rule.

    Args:
        images: modality name -> dataset (e.g. :class:`OpticalRaster`, or any
            TorchGeo RasterDataset), in the order of ``available``.
        mask: optional label dataset (:class:`MaskRaster`).
        optional: modalities that may be missing; at least one modality must
            not be optional.
        crs: CRS of the common grid (anything pyproj accepts).
        res: resolution of the common grid in CRS units.
        statistics: modality -> :class:`ModalityStatistics` (or dict form);
            invalid pixels of those modalities are filled with the band mean.
        spatial_only: if True, ignore file dates when pairing.
        transforms: a function/transform applied to every sample.

    Returns:
        The paired dataset.

    Raises:
        ConfigurationError: if names, *optional* or *statistics* are invalid.
        DataError: if the required datasets do not overlap (the message names
            the modalities, files and bounds), or an optional one does not
            overlap them anywhere.
    """
    return PairedDataset(
        images,
        mask,
        optional=optional,
        crs=crs,
        res=res,
        statistics=statistics,
        spatial_only=spatial_only,
        transforms=transforms,
    )
