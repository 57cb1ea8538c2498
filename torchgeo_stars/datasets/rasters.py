r"""Configurable raster datasets: the base of every modality and mask dataset.

Every class here is a :class:`torchgeo.datasets.RasterDataset` whose file layout
is set by constructor arguments, so any user's files can be read without
writing a subclass:

.. code-block:: python

   from torchgeo_stars.datasets import DSMRaster, MaskRaster, OpticalRaster, SARRaster

   optical = OpticalRaster('s2/', filename_regex=r'.*_(?P<date>\d{8})\.tif')
   sar = SARRaster('s1/', to_db=True)          # date-less files pair with any date
   dsm = DSMRaster('dsm/')
   mask = MaskRaster('labels/', ignore_index=255)
   dataset = optical & sar & dsm & mask       # one key per modality

Samples put a modality's image under ``image_<modality>`` (float32, (C, H, W)),
never under ``image``, and a mask under ``mask`` (int64, (H, W)). Inside these
datasets invalid pixels are NaN: pixels equal to the nodata value, outside every
file, non-finite, plus the modality's own rules (SAR values <= 0 in linear
scale, DSM values below ``min_valid``). The paired datasets
(:class:`~torchgeo_stars.datasets.ModalityIntersection`,
:func:`~torchgeo_stars.datasets.pair_modalities`) replace them before a model
sees them.
"""

import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypedDict, Unpack

import numpy as np
import rasterio
import rasterio.errors
import torch
from pyproj import CRS
from rasterio.crs import CRS as RIO_CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.warp import transform_bounds
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, GeoDataset, RasterDataset
from torchgeo.datasets.utils import GeoSlice, Path, Sample, find_files

from ..errors import ConfigurationError, DataError
from .intersection import ModalityIntersection
from .keys import BOUNDS, MASK, MODALITY_NAME, TRANSFORM, image_key
from .reading import OpenRasters, grid_offset, read_onto_grid
from .torchgeo_adapter import (
    WindowGrid,
    band_file,
    files_in_window,
    georeferencing,
    window_grid,
)
from .warp_cache import DEFAULT_BUDGET_MB, WarpedTiles, tiles_bytes


class RasterLayout(TypedDict, total=False):
    """Keyword arguments describing a file layout (see :class:`ConfigurableRaster`)."""

    filename_glob: str
    filename_regex: str
    date_format: str
    separate_files: bool
    all_bands: Sequence[str]
    nodata: float
    resampling: Resampling | str
    warp_cache_mb: float


class ModalityLayout(RasterLayout, total=False):
    """:class:`RasterLayout` plus the modality name."""

    modality: str


def _as_paths(paths: Path | Iterable[Path]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [paths]
    return list(paths)


#: Instance entries derived from the index and kept between calls, which a
#: copy derives again (see :meth:`ConfigurableRaster.__getstate__`).
_DERIVED = ('_index_crs', '_index_bounds', '_index_query', '_window_crs')


class ConfigurableRaster(RasterDataset):
    """RasterDataset whose file layout is given as constructor arguments.

    Base of :class:`ModalityRaster` and :class:`MaskRaster`. Compared with
    :class:`~torchgeo.datasets.RasterDataset` it

    * takes ``filename_glob``, ``filename_regex``, ``date_format``,
      ``separate_files``, ``all_bands``, ``nodata`` and ``resampling`` as
      arguments (class attributes remain the defaults, so subclassing works too);
    * infers the band names when ``all_bands`` is not given: for one file per
      band, the values of the regex's ``band`` group; otherwise the band
      descriptions of the first file, or ``band_1`` ... ``band_n``;
    * reads invalid pixels (nodata, outside every file) as NaN;
    * reads each file with a single warp straight onto the sample grid, invalid
      pixels left out of the interpolation (TorchGeo warps to the dataset CRS at
      the file's pixel size and resamples again, blending nodata into edges);
      a file already on the window's grid is read with a plain windowed read
      (see :mod:`~torchgeo_stars.datasets.reading`), and file handles stay
      open, once per process (:class:`~torchgeo_stars.datasets.reading.OpenRasters`);
    * raises :class:`~torchgeo_stars.errors.DataError` with the path and the
      fix when no file matches, a file cannot be read (TorchGeo would skip it),
      a band file is missing, or a file fails to read at sample time (truncated);
      and when band names are wrong, listing the valid ones.

    Files of ``filename_regex`` are matched with :data:`re.VERBOSE` (TorchGeo's
    rule): spaces are ignored and ``#`` starts a comment, escape them if needed.

    .. versionadded:: 0.1
    """

    #: Default glob of the files to index (override with ``filename_glob=``).
    filename_glob = '*.tif'

    #: Invalid pixels of images are NaN in this dataset's samples.
    invalid_as_nan: ClassVar[bool] = True

    _resampling: Resampling | None = None

    def __init__(
        self,
        paths: Path | Iterable[Path] = 'data',
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
        *,
        filename_glob: str | None = None,
        filename_regex: str | None = None,
        date_format: str | None = None,
        separate_files: bool | None = None,
        all_bands: Sequence[str] | None = None,
        nodata: float | None = None,
        resampling: Resampling | str | None = None,
        warp_cache_mb: float = DEFAULT_BUDGET_MB,
    ) -> None:
        """Index the raster files.

        Args:
            paths: one or more directories to search (recursively) or files.
            crs: CRS to warp to (defaults to the CRS of the first file); anything
                :meth:`pyproj.CRS.from_user_input` accepts.
            res: resolution in units of the CRS (defaults to the first file's).
            bands: bands to read, in this order (defaults to all bands).
            transforms: a function/transform applied to every sample (after the
                image is put under its modality key).
            cache: if True, cache file handles.
            filename_glob: glob of the files to index (default ``*.tif``).
            filename_regex: regular expression a file name must match; may hold
                the groups ``date`` (or ``start`` and ``stop``) to date files and
                ``band`` for one file per band. Files without a date group are
                valid at every date.
            date_format: :func:`~datetime.datetime.strptime` format of ``date``.
            separate_files: True when each band is in its own file (the
                ``band`` group of *filename_regex* names it).
            all_bands: names of all bands: the bands of each file, or the values
                of the ``band`` group with *separate_files* (inferred if None).
            nodata: value of invalid pixels (defaults to the files' own nodata).
            resampling: resampling used to read (a :class:`Resampling` or its
                name); defaults to bilinear for images, nearest for masks.
            warp_cache_mb: memory, per process, for the warped tiles of files
                not on the window grid (each area is then warped once, not
                every epoch; see :mod:`~torchgeo_stars.datasets.warp_cache`);
                0 warps every window on its own.

        Raises:
            ConfigurationError: if *filename_regex* is invalid or lacks a ``band``
                group while *separate_files* is True, or *resampling* is unknown.
            DataError: if no file matches, a file cannot be read, a band file is
                missing, *bands* are not valid band names, or *all_bands* does
                not match the files' band count.
        """
        if filename_glob is not None:
            self.filename_glob = filename_glob
        if filename_regex is not None:
            self.filename_regex = filename_regex
        if date_format is not None:
            self.date_format = date_format
        if separate_files is not None:
            self.separate_files = separate_files
        if nodata is not None:
            self.nodata = nodata
        if resampling is not None:
            self._resampling = self._parse_resampling(resampling)
        self.paths = paths
        #: Open file handles, once per process (used when ``cache`` is True).
        self.open_files = OpenRasters()
        #: Warped tiles of files off the window grid, once per process.
        self.warped_tiles = WarpedTiles(warp_cache_mb)

        regex = self._compile_regex()
        candidates = self._matching_files(regex)
        self.all_bands = self._resolve_all_bands(all_bands, candidates, regex)
        self.bands = self._check_bands(bands)
        indexed = self.files  # with separate_files: only the first band's files
        if not indexed:
            raise DataError(
                f'{self._label}: no file of band {self.bands[0]!r} among the '
                f'{len(candidates)} files matching filename_glob '
                f'{self.filename_glob!r} and filename_regex {self.filename_regex!r} '
                f'under {[str(p) for p in _as_paths(self.paths)]}. Each scene needs '
                'one file per band; check bands= and the band group of the regex.'
            )

        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', 'Could not find any relevant files')
            try:
                super().__init__(
                    paths,
                    CRS.from_user_input(crs) if crs is not None else None,
                    res,
                    self.bands,
                    None,
                    cache,
                )
            except DatasetNotFoundError as err:
                raise self._unreadable_error(indexed) from err
        self.transforms = transforms

        skipped = sorted(set(indexed) - {str(f) for f in self.index['filepath']})
        if skipped:
            raise self._unreadable_error(skipped)
        if self.separate_files:
            self._check_band_files()

    def __getstate__(self) -> dict[str, Any]:
        """The state to copy or pickle, without what is derived from the index.

        The CRS, bounds and file query kept between calls are recognised by
        the identity of the objects they came from, which a copy (TorchGeo's
        ``roi_split`` deep-copies datasets) or a pickle (a spawned worker)
        does not keep; the copy derives them again from its own index.

        Returns:
            The instance dictionary less those entries.
        """
        return {k: v for k, v in self.__dict__.items() if k not in _DERIVED}

    @property
    def crs(self) -> CRS:
        """CRS of the dataset (TorchGeo's), kept between calls.

        TorchGeo reads it from the index's geometry column, a pandas lookup
        that would cost more than a cached window's copy; it is looked up
        again when the index is replaced or the CRS set.

        Returns:
            The CRS of the index.
        """
        cached = self.__dict__.get('_index_crs')
        if cached is None or cached[0] is not self.index:
            crs: CRS = GeoDataset.crs.fget(self)  # type: ignore[attr-defined]
            cached = self.__dict__['_index_crs'] = (self.index, crs)
        return cached[1]

    @crs.setter
    def crs(self, new_crs: CRS) -> None:
        """Change the CRS as TorchGeo does (the index is reprojected in place)."""
        GeoDataset.crs.fset(self, new_crs)  # type: ignore[attr-defined]
        self.__dict__.pop('_index_crs', None)

    @property
    def bounds(self) -> tuple[slice, slice, slice]:
        """Bounds of the index (TorchGeo's), kept between calls.

        TorchGeo recomputes them from the whole index on every call, and a
        window given without its time slice needs them; they are computed
        again when the index, the CRS or the resolution changes.

        Returns:
            Bounding x, y and t slices.
        """
        index, crs, res = self.index, self.crs, self.res
        cached = self.__dict__.get('_index_bounds')
        if (
            cached is None
            or cached[0] is not index
            or cached[1] is not crs
            or cached[2] != res
        ):
            bounds = GeoDataset.bounds.fget(self)  # type: ignore[attr-defined]
            cached = self.__dict__['_index_bounds'] = (index, crs, res, bounds)
        return cached[3]  # type: ignore[no-any-return]

    # Configuration helpers -------------------------------------------------

    @property
    def _label(self) -> str:
        return type(self).__name__

    @staticmethod
    def _parse_resampling(resampling: Resampling | str) -> Resampling:
        if isinstance(resampling, Resampling):
            return resampling
        try:
            return Resampling[resampling]
        except KeyError:
            valid = ', '.join(r.name for r in Resampling)
            raise ConfigurationError(
                f'Unknown resampling {resampling!r}; use one of: {valid}.'
            ) from None

    def _compile_regex(self) -> re.Pattern[str]:
        try:
            regex = re.compile(self.filename_regex, re.VERBOSE)
        except re.error as err:
            raise ConfigurationError(
                f'{self._label}: filename_regex {self.filename_regex!r} is not a '
                f'valid regular expression ({err}).'
            ) from err
        if self.separate_files and 'band' not in regex.groupindex:
            raise ConfigurationError(
                f'{self._label}: separate_files=True needs a named group "band" in '
                f'filename_regex (got {self.filename_regex!r}), e.g. '
                r"filename_regex=r'^(?P<tile>\w+)_(?P<date>\d{8})_(?P<band>B\d{2})\.tif$'."
            )
        return regex

    def _matching_files(self, regex: re.Pattern[str]) -> list[str]:
        paths = _as_paths(self.paths)
        globbed = sorted({f for p in paths for f in find_files(p, self.filename_glob)})
        if not globbed:
            missing = [str(p) for p in paths if not os.path.exists(p)]
            hint = f' ({", ".join(missing)} does not exist)' if missing else ''
            raise DataError(
                f'{self._label}: no file matches filename_glob '
                f'{self.filename_glob!r} under {[str(p) for p in paths]}{hint}. '
                'Check the path, or pass filename_glob= matching your files '
                "(e.g. filename_glob='*.tiff')."
            )
        matched = [f for f in globbed if regex.match(os.path.basename(f))]
        if not matched:
            examples = ', '.join(os.path.basename(f) for f in globbed[:3])
            raise DataError(
                f'{self._label}: {len(globbed)} files under '
                f'{[str(p) for p in paths]} match filename_glob '
                f'{self.filename_glob!r} but none matches filename_regex '
                f'{self.filename_regex!r} (e.g. {examples}). Fix filename_regex.'
            )
        return matched

    def _resolve_all_bands(
        self,
        all_bands: Sequence[str] | None,
        candidates: list[str],
        regex: re.Pattern[str],
    ) -> tuple[str, ...]:
        names = tuple(all_bands) if all_bands is not None else tuple(self.all_bands)
        if self.separate_files:
            if names:
                return names
            found = set()
            for f in candidates:
                match = regex.match(os.path.basename(f))
                if match is not None and match.group('band') is not None:
                    found.add(match.group('band'))
            return tuple(sorted(found))
        first = candidates[0]
        try:
            with rasterio.open(first) as src:
                count = src.count
                descriptions = src.descriptions
        except rasterio.errors.RasterioIOError as err:
            raise self._unreadable_error([first]) from err
        if names:
            if len(names) != count:
                raise DataError(
                    f'{self._label}: all_bands lists {len(names)} bands {list(names)} '
                    f'but {first} has {count}. Give one name per band of the files.'
                )
            return names
        if all(descriptions) and len(set(descriptions)) == count:
            return tuple(str(d) for d in descriptions)
        return tuple(f'band_{i}' for i in range(1, count + 1))

    def _check_bands(self, bands: Sequence[str] | None) -> tuple[str, ...]:
        if bands is None:
            return tuple(self.all_bands)
        if isinstance(bands, str):
            bands = [bands]
        unknown = [b for b in bands if b not in self.all_bands]
        if unknown or not bands:
            raise DataError(
                f'{self._label}: unknown band name(s) {unknown or list(bands)} for '
                f'the files under {[str(p) for p in _as_paths(self.paths)]}; valid '
                f'band names: {list(self.all_bands)}. Fix bands= (or name the '
                'file bands with all_bands=).'
            )
        return tuple(bands)

    def _unreadable_error(self, files: Sequence[str]) -> DataError:
        shown = ', '.join(str(f) for f in files[:5])
        more = f' and {len(files) - 5} more' if len(files) > 5 else ''
        return DataError(
            f'{self._label}: cannot read {shown}{more} (not a valid raster, or '
            'corrupt). Re-export or re-download the file, or remove it from the '
            'folder (or narrow filename_glob / filename_regex).'
        )

    def _check_band_files(self) -> None:
        missing = []
        for filepath in self.index['filepath']:
            for band in self.bands:
                band_file = self._update_filepath(band, str(filepath))
                if not os.path.exists(band_file):
                    missing.append(band_file)
        if missing:
            shown = ', '.join(missing[:5])
            raise DataError(
                f'{self._label}: band file(s) missing: {shown}'
                f'{" ..." if len(missing) > 5 else ""}. Each scene needs one file '
                f'per requested band {list(self.bands)}; add the files or pass '
                'bands= with the bands you have.'
            )

    @property
    def files(self) -> list[str]:
        """Files to index; with one file per band, only the first band's files.

        Returns:
            Sorted file paths.
        """
        files = super().files
        if not (self.separate_files and self.bands):
            return files
        regex = re.compile(self.filename_regex, re.VERBOSE)
        keep = []
        for f in files:
            match = regex.match(os.path.basename(f))
            if match is not None and match.group('band') == self.bands[0]:
                keep.append(f)
        return keep

    @property
    def resampling(self) -> Resampling:
        """Resampling used to read: the constructor's, else TorchGeo's default.

        Returns:
            Bilinear for float images, nearest for masks, unless overridden.
        """
        if self._resampling is not None:
            return self._resampling
        return super().resampling

    @property
    def num_bands(self) -> int:
        """Number of bands (channels) of each sample.

        Returns:
            ``len(self.bands)``.
        """
        return len(self.bands)

    # Reading ----------------------------------------------------------------

    def _read_file(
        self, filepath: str, band_indexes: Sequence[int] | None, grid: WindowGrid
    ) -> np.ndarray[Any, Any] | None:
        """Read one file onto the window grid (see :func:`read_onto_grid`).

        Raises:
            DataError: if the file fails to read (e.g. truncated).
        """
        try:
            if self.cache:
                src = self.open_files.get(filepath)
                return self._read_open_file(src, band_indexes, grid)
            with rasterio.open(filepath) as src:
                return self._read_open_file(src, band_indexes, grid)
        except rasterio.errors.RasterioError as err:
            raise DataError(
                f'{self._label}: failed to read {filepath} ({err}). The file is '
                'probably truncated or corrupt: re-export or re-download it, or '
                'remove it from the dataset folder.'
            ) from err

    def _read_open_file(
        self, src: DatasetReader, band_indexes: Sequence[int] | None, grid: WindowGrid
    ) -> np.ndarray[Any, Any] | None:
        cached: tuple[CRS, RIO_CRS, str] | None = self.__dict__.get('_window_crs')
        if cached is None or cached[0] is not self.crs:
            rio_crs = RIO_CRS.from_user_input(self.crs)
            cached = self.__dict__['_window_crs'] = (
                self.crs,
                rio_crs,
                rio_crs.to_wkt(),
            )
        _, crs, wkt = cached
        src_crs, src_transform = georeferencing(self, src)
        dtype = 'float32' if self.is_image else 'float64'

        def warp(
            bounds: tuple[float, float, float, float], shape: tuple[int, int]
        ) -> np.ndarray[Any, Any] | None:
            return read_onto_grid(
                src,
                (src_crs, src_transform),
                band_indexes,
                crs,
                bounds,
                grid.step,
                shape,
                self.resampling,
                dtype,
                self._source_invalid,
            )

        on_grid = grid_offset(src_crs, src_transform, crs, grid.transform, grid.step)
        if self.warped_tiles.budget <= 0 or on_grid is not None:
            return warp(grid.bounds, grid.shape)
        key = (src.name, tuple(band_indexes or ()), wkt, grid.step)

        def footprint() -> int:
            xs, ys = zip(
                *(
                    src_transform @ corner
                    for corner in (
                        (0, 0),
                        (src.width, 0),
                        (0, src.height),
                        (src.width, src.height),
                    )
                ),
                strict=True,
            )
            bounds = transform_bounds(src_crs, crs, min(xs), min(ys), max(xs), max(ys))
            bands = len(band_indexes) if band_indexes is not None else src.count
            return tiles_bytes(bounds, grid.step, bands, np.dtype(dtype).itemsize)

        if not self.warped_tiles.admit(key, footprint, f'{self._label}: {src.name}'):
            return warp(grid.bounds, grid.shape)
        return self.warped_tiles.read(key, grid.bounds, grid.step, grid.shape, warp)

    def _read_mosaic(
        self,
        filepaths: Sequence[str],
        grid: WindowGrid,
        band_indexes: Sequence[int] | None,
    ) -> np.ndarray[Any, Any]:
        """Read and mosaic files over a window, invalid pixels as NaN.

        Each file is warped once, straight onto the window grid (or read
        without warping when it is on that grid), with invalid pixels excluded
        from the interpolation. Where files overlap, the first valid pixel wins.

        Args:
            filepaths: files to read.
            grid: the window's grid.
            band_indexes: 1-based band indexes to read (None: all).

        Returns:
            Float array (C, H, W); NaN where no file has valid data.

        Raises:
            DataError: if a file fails to read (e.g. truncated).
        """
        mosaic: np.ndarray[Any, Any] | None = None
        for filepath in filepaths:
            array = self._read_file(filepath, band_indexes, grid)
            if array is None:
                continue
            if mosaic is None:
                mosaic = array
            else:
                mosaic = np.where(np.isnan(mosaic), array, mosaic)
        if mosaic is None:
            count = 1 if self.separate_files else len(band_indexes or self.bands)
            dtype = np.float32 if self.is_image else np.float64
            mosaic = np.full((count, *grid.shape), np.nan, dtype=dtype)
        return self._fill_mosaic(mosaic, filepaths)

    def _source_invalid(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Set invalid source pixels to NaN before any interpolation.

        Args:
            array: float source pixels (C, h, w); nodata already NaN.

        Returns:
            The array, also NaN where the value equals the ``nodata`` override
            (subclasses add their own rules).
        """
        if self.nodata is not None and np.isfinite(self.nodata):
            array[array == self.nodata] = np.nan
        return array

    def _fill_mosaic(
        self, mosaic: np.ndarray[Any, Any], filepaths: Sequence[str]
    ) -> np.ndarray[Any, Any]:
        return mosaic

    def __getitem__(self, index: GeoSlice) -> Sample:
        """Read one window.

        The files covering the window are the ones TorchGeo's
        :meth:`~torchgeo.datasets.RasterDataset.__getitem__` picks; they are
        read with :meth:`_read_mosaic` instead of TorchGeo's reader.

        Args:
            index: [xmin:xmax:xres, ymin:ymax:yres, tmin:tmax:tres] coordinates.

        Returns:
            The sample (see the class docstring for its keys).

        Raises:
            IndexError: if *index* is not covered by any file.
            DataError: if a file fails to read.
        """
        grid = window_grid(self, index)
        filepaths = files_in_window(self, grid)
        if not filepaths:
            raise IndexError(
                f'index: {index} not found in dataset with bounds: {self.bounds}'
            )
        if self.separate_files:
            array = np.concatenate(
                [
                    self._read_mosaic(
                        [band_file(self, band, f) for f in filepaths], grid, None
                    )
                    for band in self.bands
                ]
            )
        else:
            array = self._read_mosaic(filepaths, grid, self.band_indexes)
        data = torch.from_numpy(array).to(self.dtype)
        sample: Sample = {
            BOUNDS: grid.bounds_tensor(),
            TRANSFORM: torch.tensor(grid.transform),
        }
        sample.update(self._data_entries(data))
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _data_entries(self, data: Tensor) -> Sample:
        """The sample entries of the data read (TorchGeo's keys by default).

        Args:
            data: (C, H, W) in :attr:`dtype`.

        Returns:
            ``{'image': data}`` for images, ``{'mask': data[0]}`` for masks.
        """
        if self.is_image:
            return {'image': data}
        return {MASK: data.squeeze(-3)}

    def __and__(self, other: GeoDataset) -> ModalityIntersection:
        """Intersect with another dataset, keeping one key per modality.

        Args:
            other: another GeoDataset (modality raster, mask, intersection).

        Returns:
            A :class:`~torchgeo_stars.datasets.ModalityIntersection`.
        """
        return ModalityIntersection(self, other)


class ModalityRaster(ConfigurableRaster):
    r"""Raster dataset of one input modality; its sample key is ``image_<modality>``.

    Use it directly for any modality (``ModalityRaster('hs/', modality='hyper')``)
    or subclass it to fix a layout once:

    .. code-block:: python

       class Sentinel2(OpticalRaster):
           filename_glob = 'T*_B0[2348].tif'
           filename_regex = r'^T(?P<tile>\w{5})_(?P<date>\d{8})_(?P<band>B\d{2})\.tif$'
           separate_files = True
           all_bands = ('B02', 'B03', 'B04', 'B08')

       s2 = Sentinel2('s2/', bands=['B04', 'B03', 'B02'])

    Sample keys: ``image_<modality>`` (float32 (C, H, W); invalid pixels are NaN:
    nodata, outside the files, non-finite, plus the subclass's rules),
    ``bounds``, ``transform``.

    .. versionadded:: 0.1
    """

    #: Modality name: the sample key is ``image_<modality>``.
    modality: str = ''

    def __init__(
        self,
        paths: Path | Iterable[Path] = 'data',
        crs: CRS | str | int | None = None,
        res: float | tuple[float, float] | None = None,
        bands: Sequence[str] | None = None,
        transforms: Callable[[Sample], Sample] | None = None,
        cache: bool = True,
        *,
        modality: str | None = None,
        **layout: Unpack[RasterLayout],
    ) -> None:
        """Index the raster files of one modality.

        Args:
            paths: one or more directories to search (recursively) or files.
            crs: CRS to warp to (defaults to the CRS of the first file).
            res: resolution in units of the CRS (defaults to the first file's).
            bands: bands to read, in this order (defaults to all bands).
            transforms: a function/transform applied to every sample.
            cache: if True, cache file handles.
            modality: modality name (letters, digits, underscores); defaults to
                the class's :attr:`modality`.
            **layout: ``filename_glob``, ``filename_regex``, ``date_format``,
                ``separate_files``, ``all_bands``, ``nodata``, ``resampling``
                (see :class:`ConfigurableRaster`).

        Raises:
            ConfigurationError: if no valid modality name is given, or a layout
                argument is invalid.
            DataError: see :class:`ConfigurableRaster`.
        """
        name = modality if modality is not None else self.modality
        if not name or not MODALITY_NAME.fullmatch(name):
            raise ConfigurationError(
                f'{type(self).__name__}: modality name {name!r} is not valid; pass '
                "modality='<name>' made of letters, digits and underscores."
            )
        self.modality = name
        super().__init__(paths, crs, res, bands, transforms, cache, **layout)

    @property
    def _label(self) -> str:
        return f'{type(self).__name__} (modality {self.modality!r})'

    @property
    def image_key(self) -> str:
        """Sample key of this modality's image.

        Returns:
            ``'image_<modality>'``.
        """
        return image_key(self.modality)

    def _data_entries(self, data: Tensor) -> Sample:
        return {self.image_key: self._finish_image(data)}

    def _finish_image(self, image: Tensor) -> Tensor:
        """Apply the modality's own validity rules and conversions.

        Args:
            image: float32 (C, H, W), invalid pixels NaN.

        Returns:
            The final image.
        """
        return image
