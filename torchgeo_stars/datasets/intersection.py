"""Intersection of modality datasets that keeps every modality under its own key.

TorchGeo's :class:`~torchgeo.datasets.IntersectionDataset` joins samples with
:func:`~torchgeo.datasets.concat_samples`, which concatenates equal keys (two
``image`` tensors become one channel stack, ``bounds`` is repeated).
:class:`ModalityIntersection` reuses TorchGeo's intersection (same index, same
sampling) but joins samples with :func:`collate_modalities`, which keeps each
``image_<modality>`` apart, keeps ``bounds`` / ``transform`` once, replaces
invalid pixels and adds the ``available`` flags.
"""

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

import rasterio
import shapely
import torch
from pyproj import CRS
from torch import Tensor
from torchgeo.datasets import GeoDataset, IntersectionDataset, RasterDataset
from torchgeo.datasets.utils import GeoSlice, Sample

from ..errors import ConfigurationError, DataError
from .keys import AVAILABLE, IMAGE_PREFIX, SHARED_KEYS
from .plotting import rgb_band_indexes
from .torchgeo_adapter import window_grid

logger = logging.getLogger(__name__)


def fill_invalid(image: Tensor, fill: Tensor | None = None) -> tuple[Tensor, bool]:
    """Replace the invalid (non-finite) pixels of an image.

    Args:
        image: image of shape (C, H, W) where invalid pixels are NaN or infinite.
        fill: per-band fill values of shape (C,); zeros when None.

    Returns:
        The image without non-finite values (a new tensor when any pixel was
        replaced), and whether at least one pixel was valid. When no pixel is
        valid the returned image is all zeros.
    """
    # A sum is finite only if every pixel is (NaN and infinities propagate):
    # one cheap reduction decides the common case; an overflowing sum of
    # finite pixels merely takes the exact path below.
    if bool(torch.isfinite(image.sum())):
        return image, True
    valid = torch.isfinite(image)
    if bool(valid.all()):
        return image, True
    if not bool(valid.any()):
        return torch.zeros_like(image), False
    if fill is None:
        values = torch.zeros((), dtype=image.dtype)
    else:
        values = fill.to(image.dtype).view(-1, *([1] * (image.dim() - 1)))
    return torch.where(valid, image, values), True


def nodata_of(dataset: GeoDataset) -> float | None:
    """Nodata value that marks invalid pixels in a dataset's images.

    Args:
        dataset: any GeoDataset.

    Returns:
        None for the rasters of this package (their invalid pixels are NaN);
        for a plain TorchGeo RasterDataset its ``nodata``, else its first
        file's nodata (TorchGeo keeps it as a pixel value).
    """
    if getattr(dataset, 'invalid_as_nan', False):
        return None
    nodata = getattr(dataset, 'nodata', None)
    if nodata is None and isinstance(dataset, RasterDataset):
        with rasterio.open(dataset.index['filepath'].iloc[0]) as src:
            nodata = src.nodata
    return None if nodata is None else float(nodata)


def modality_names(dataset: GeoDataset) -> tuple[str, ...]:
    """Modalities a dataset provides, in the order of its samples.

    Args:
        dataset: a modality raster, an intersection or a paired dataset.

    Returns:
        The names declared by ``modalities`` or ``modality``; empty for a plain
        TorchGeo dataset.
    """
    names = getattr(dataset, 'modalities', None)
    if names is not None:
        return tuple(names)
    name = getattr(dataset, 'modality', None)
    return (name,) if isinstance(name, str) else ()


def dataset_files(dataset: GeoDataset) -> list[str]:
    """Files a dataset (or every dataset inside an intersection) reads.

    Args:
        dataset: any GeoDataset.

    Returns:
        The sorted file paths found in its index (or its members' indexes).
    """
    children = getattr(dataset, 'datasets', None)
    if isinstance(children, dict):
        children = list(children.values())
    if isinstance(children, list):
        return sorted({f for child in children for f in dataset_files(child)})
    if 'filepath' in dataset.index.columns:
        return sorted({str(f) for f in dataset.index['filepath']})
    return []


def describe_dataset(dataset: GeoDataset, max_files: int = 3) -> str:
    """One-line description of a dataset for error messages.

    Args:
        dataset: any GeoDataset.
        max_files: number of file names to show.

    Returns:
        Its modality names (or class name) and its first files.
    """
    names = modality_names(dataset)
    label = ' & '.join(repr(n) for n in names) if names else type(dataset).__name__
    files = dataset_files(dataset)
    shown = ', '.join(os.path.basename(f) for f in files[:max_files])
    if len(files) > max_files:
        shown += f', ... ({len(files)} files)'
    return f'{label} [{shown}]' if shown else label


def _format_bounds(dataset: GeoDataset, temporal: bool = False) -> str:
    xmin, ymin, xmax, ymax = dataset.index.total_bounds
    text = f'({xmin:.2f}, {ymin:.2f}, {xmax:.2f}, {ymax:.2f})'
    if temporal:
        times = dataset.index.index
        text += f' and dates {times.left.min()} to {times.right.max()}'
    return text


def no_overlap_error(
    first: GeoDataset, second: GeoDataset, temporal: bool = False
) -> DataError:
    """Build the error raised when two datasets do not overlap.

    Both datasets must already be in the same CRS (as TorchGeo's intersection
    makes them).

    Args:
        first: the first dataset.
        second: the second dataset.
        temporal: True when they overlap in space but not in time.

    Returns:
        A :class:`~torchgeo_stars.errors.DataError` naming both datasets, their
        files and their bounds in the common CRS.
    """
    crs = CRS.from_user_input(first.crs)
    crs_name = crs.to_string() if crs.to_epsg() is None else f'EPSG:{crs.to_epsg()}'
    where = (
        f'{describe_dataset(first)} with bounds {_format_bounds(first, temporal)} '
        f'and {describe_dataset(second)} with bounds '
        f'{_format_bounds(second, temporal)} '
        f'(xmin, ymin, xmax, ymax in {crs_name})'
    )
    if temporal:
        return DataError(
            f'No temporal overlap between {where}: their file dates do not '
            'intersect. Pass spatial_only=True to pair by extent only, or fix '
            'filename_regex / date_format so that the dates are read correctly.'
        )
    return DataError(
        f'No spatial overlap between {where}. Check that the paths point to '
        'the same area and that every file carries the right CRS.'
    )


def collate_modalities(samples: Sequence[Sample]) -> Sample:
    """Join the samples of the datasets of an intersection, one key per modality.

    * ``bounds`` and ``transform`` are taken once (from the first sample).
    * Each ``image_<modality>`` coming straight from a modality raster (a sample
      without ``available``) has its invalid pixels (NaN, see
      :class:`~torchgeo_stars.datasets.ModalityRaster`) replaced by 0, and gets
      an ``available`` entry: False when no pixel of the window is valid (the
      image is then all zeros). Samples that already carry ``available`` (from
      a nested intersection or a paired dataset) are taken as they are.
    * ``available`` is a bool tensor with one entry per modality, in the order
      the modalities appear in *samples*.
    * Any other key (``mask``, a plain TorchGeo ``image``) is copied.

    Args:
        samples: one sample per dataset, all for the same window.

    Returns:
        The joined sample.

    Raises:
        ConfigurationError: if two datasets produce the same key (two datasets
            of the same modality, or two masks).
    """
    out: Sample = {}
    available: list[Tensor] = []
    for sample in samples:
        ready = AVAILABLE in sample
        for key, value in sample.items():
            if key in SHARED_KEYS:
                out.setdefault(key, value)
            elif key == AVAILABLE:
                available.append(value.to(torch.bool).reshape(-1))
            elif key in out:
                raise ConfigurationError(
                    f'Two datasets of the intersection both produce the key {key!r}. '
                    'Give each dataset its own modality name (e.g. '
                    "ModalityRaster(..., modality='sar_asc')), combine files of one "
                    'modality in a single dataset (paths=[...]), and use one mask.'
                )
            elif key.startswith(IMAGE_PREFIX) and not ready:
                image, ok = fill_invalid(value)
                out[key] = image
                available.append(torch.tensor([ok]))
            else:
                out[key] = value
    if available:
        out[AVAILABLE] = torch.cat(available)
    return out


class ModalityIntersection(IntersectionDataset):
    """TorchGeo intersection whose samples keep one key per modality.

    Built by ``&`` on the modality rasters (``optical & sar & dsm & mask``);
    chains of any length keep :func:`collate_modalities`, because ``&`` on this
    class returns another :class:`ModalityIntersection`. The index, CRS and
    resolution handling are TorchGeo's (the second dataset is reprojected onto
    the first one's CRS and resolution). Every modality is required: the index
    covers only the area (and dates) where all datasets have files. A window
    where a modality is all nodata still gets ``available`` False and zeros, and
    invalid pixels are replaced by 0 (use
    :func:`~torchgeo_stars.datasets.pair_modalities` for optional modalities and
    mean filling).

    Sample keys: ``image_<modality>`` per modality, ``mask`` if a mask is part of
    the intersection, ``bounds``, ``transform`` and ``available``.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        dataset1: GeoDataset,
        dataset2: GeoDataset,
        spatial_only: bool = False,
        collate_fn: Callable[[Sequence[Sample]], Sample] = collate_modalities,
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        """Initialise a new ModalityIntersection.

        Args:
            dataset1: the first dataset; its CRS and resolution are used.
            dataset2: the second dataset.
            spatial_only: if True, ignore dates: pair by extent only (each dataset
                is then read over its own time range).
            collate_fn: function joining the two samples.
            transforms: a function/transform applied to every joined sample.

        Raises:
            DataError: if the datasets do not overlap in space (or in time when
                *spatial_only* is False).
            TypeError: if either dataset is not a GeoDataset.
        """
        self.spatial_only = spatial_only
        # TorchGeo prints a line (with the whole WKT) for every CRS or
        # resolution it converts; they go to the debug log instead
        messages = io.StringIO()
        try:
            with contextlib.redirect_stdout(messages):
                super().__init__(
                    dataset1,
                    dataset2,
                    spatial_only=spatial_only,
                    collate_fn=collate_fn,
                    transforms=transforms,
                )
        except RuntimeError as err:
            temporal = 'temporal' in str(err)
            raise no_overlap_error(dataset1, dataset2, temporal) from err
        finally:
            for line in messages.getvalue().splitlines():
                logger.debug('%s', line)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in the order of ``available``.

        Returns:
            The modalities of both datasets, first dataset first.
        """
        return modality_names(self.datasets[0]) + modality_names(self.datasets[1])

    @property
    def quicklook_bands(self) -> Mapping[str, tuple[int, int, int]]:
        """Modality to the indexes of its red, green and blue bands, for figures.

        Returns:
            The modality rasters whose band names include all three
            (:func:`~torchgeo_stars.datasets.rgb_band_indexes`).
        """
        found: dict[str, tuple[int, int, int]] = {}
        for dataset in self.datasets:
            if isinstance(dataset, ModalityIntersection):
                found.update(dataset.quicklook_bands)
                continue
            name = getattr(dataset, 'modality', None)
            rgb = rgb_band_indexes(getattr(dataset, 'bands', ()))
            if isinstance(name, str) and rgb is not None:
                found[name] = rgb
        return found

    def __getitem__(self, index: GeoSlice) -> Sample:
        """Read every dataset over one window and join the samples.

        Args:
            index: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            The joined sample (see :func:`collate_modalities`).

        Raises:
            IndexError: if *index* is not covered by every dataset.
        """
        query: GeoSlice = index
        if self.spatial_only:
            grid = window_grid(self, index)
            query = (grid.x, grid.y)
        sample = self.collate_fn([ds[query] for ds in self.datasets])
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def __and__(self, other: GeoDataset) -> 'ModalityIntersection':
        """Intersect with one more dataset, keeping one key per modality.

        Args:
            other: another GeoDataset (modality raster, mask, intersection).

        Returns:
            A new :class:`ModalityIntersection`.
        """
        return ModalityIntersection(
            self, other, spatial_only=self.spatial_only, collate_fn=self.collate_fn
        )


def union_geometry(datasets: Iterable[GeoDataset]) -> shapely.Geometry:
    """Union of the footprints of several datasets (already in one CRS).

    Args:
        datasets: the datasets.

    Returns:
        The union of all their index geometries.
    """
    return shapely.union_all([ds.index.geometry.union_all() for ds in datasets])
