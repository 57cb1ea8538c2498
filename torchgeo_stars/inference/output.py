"""Writing predictions safely as Cloud Optimized GeoTIFFs.

Blocks are written into a tiled GeoTIFF under a hidden temporary name beside
the output, converted into a COG (another temporary file beside it) with
GDAL's COG driver, and only then renamed onto the output path. A run that
fails, is interrupted or is killed never leaves a file at the output path; on
errors the temporaries are removed.

Layout of a prediction:

* ``OUT.tif``: one ``uint8`` band, the class index of each pixel, ``255``
  (nodata) where no input covers the pixel; a colour table; the class names in
  the dataset tag ``STARS_CLASS_NAMES`` (a JSON list) and one tag
  ``STARS_CLASS_<i>`` per class.
* ``OUT_probabilities.tif`` (only when probabilities are requested): one band
  per class, in class order, either ``float32`` in ``[0, 1]`` with nodata NaN,
  or ``uint8`` holding ``round(254 * p)`` with nodata 255 and the band scale
  ``1/254`` recorded, so that GDAL-aware readers recover ``p``.
"""

import contextlib
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import rasterio
import rasterio.shutil
from matplotlib import colormaps

from ..errors import ConfigurationError
from .grid import OutputGrid

#: Class-map value of pixels no input covers.
NODATA = 255
#: Scale of the uint8 probability bands: stored value = round(p * 254).
PROBABILITY_SCALE = 254
#: Internal tile size of the COGs written.
COG_BLOCKSIZE = 512
#: GDAL block cache used while writing, in bytes (keeps memory flat).
GDAL_CACHE_BYTES = 64 * 2**20

ProbabilityFormat = Literal['float32', 'uint8']
Colour = tuple[int, int, int]


def probabilities_path(output: Path) -> Path:
    """Path of the probabilities file that goes with a class map.

    Args:
        output: The class map's path, e.g. ``pred.tif``.

    Returns:
        e.g. ``pred_probabilities.tif`` in the same folder.
    """
    return output.with_name(f'{output.stem}_probabilities{output.suffix or ".tif"}')


def default_colours(num_classes: int) -> list[Colour]:
    """A distinct colour per class (matplotlib's ``tab20``, repeated).

    Args:
        num_classes: Number of classes.

    Returns:
        RGB triples in ``0..255``.
    """
    cmap = colormaps['tab20']
    return [
        (
            round(255 * cmap(i % 20)[0]),
            round(255 * cmap(i % 20)[1]),
            round(255 * cmap(i % 20)[2]),
        )
        for i in range(num_classes)
    ]


def check_output_targets(targets: Sequence[Path], overwrite: bool) -> None:
    """Refuse outputs that exist (unless *overwrite*) or cannot be written.

    The folder is checked by creating and removing a small file in it, which
    is what matters (permission bits alone do not tell, e.g. for root or
    read-only file systems).

    Args:
        targets: Files that will be written.
        overwrite: Whether existing files may be replaced.

    Raises:
        ConfigurationError: If a folder is missing or not writable, or a target
            exists and *overwrite* is False.
    """
    for target in targets:
        folder = target.parent
        if not folder.is_dir():
            raise ConfigurationError(
                f'output folder {folder} does not exist (for {target}); create it '
                'first.'
            )
        if target.is_dir():
            raise ConfigurationError(f'output {target} is a folder; give a file name.')
        if target.exists() and not overwrite:
            raise ConfigurationError(
                f'output {target} already exists; pass overwrite=True '
                '(--overwrite) to replace it.'
            )
        probe = folder / f'.{target.name}.{secrets.token_hex(4)}.probe'
        try:
            probe.touch(exist_ok=False)
            probe.unlink()
        except OSError as error:
            raise ConfigurationError(
                f'output folder {folder} is not writable ({error.strerror}); choose '
                'another output path.'
            ) from error


def _temporary(target: Path, stage: str) -> Path:
    """A hidden, unique temporary path beside *target*."""
    return target.with_name(f'.{target.name}.{secrets.token_hex(6)}.{stage}.tif')


@dataclass(frozen=True)
class _Layer:
    """One file being written: its final path, temporary path, creation options."""

    target: Path
    partial: Path
    profile: dict[str, Any]
    cog_options: dict[str, Any]


class PredictionWriter:
    """Write class maps (and probabilities) block by block, then publish COGs.

    Use as a context manager; call :meth:`commit` when every block is written.
    Leaving the context without committing (an error) removes the temporaries.

    Args:
        output: Class map path.
        grid: Grid of the file (for a shard, its rows only).
        class_names: Names of the classes, in class order.
        colours: RGB colour of each class.
        probabilities: Also write probabilities in this format, if given.
        tags: Extra dataset tags to record.
        block: Internal tile size of the temporary GeoTIFFs.
    """

    def __init__(
        self,
        output: Path,
        grid: OutputGrid,
        class_names: Sequence[str],
        colours: Sequence[Colour],
        probabilities: ProbabilityFormat | None = None,
        tags: Mapping[str, str] | None = None,
        block: int = 64,
    ) -> None:
        self.output = output
        self.grid = grid
        self.class_names = list(class_names)
        self.colours = list(colours)
        self.probabilities = probabilities
        self.tags = dict(tags or {})
        base = {
            'driver': 'GTiff',
            'width': grid.width,
            'height': grid.height,
            'crs': grid.crs,
            'transform': grid.transform,
            'tiled': True,
            'blockxsize': block,
            'blockysize': block,
            'compress': 'deflate',
            'zlevel': 1,
            'bigtiff': 'if_safer',
        }
        cog = {'compress': 'DEFLATE', 'blocksize': COG_BLOCKSIZE, 'bigtiff': 'IF_SAFER'}
        self._layers = [
            _Layer(
                output,
                _temporary(output, 'partial'),
                {**base, 'count': 1, 'dtype': 'uint8', 'nodata': NODATA},
                {**cog, 'overview_resampling': 'NEAREST'},
            )
        ]
        if probabilities is not None:
            dtype = 'float32' if probabilities == 'float32' else 'uint8'
            nodata = math.nan if probabilities == 'float32' else NODATA
            self._layers.insert(
                0,
                _Layer(
                    probabilities_path(output),
                    _temporary(probabilities_path(output), 'partial'),
                    {
                        **base,
                        'count': len(self.class_names),
                        'dtype': dtype,
                        'nodata': nodata,
                    },
                    {**cog, 'overview_resampling': 'AVERAGE'},
                ),
            )
        self._datasets: list[Any] = []
        self._temporaries: list[Path] = []
        self._env: rasterio.Env | None = None

    @property
    def targets(self) -> list[Path]:
        """Files this writer publishes."""
        return [layer.target for layer in self._layers]

    def __enter__(self) -> 'PredictionWriter':
        self._env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES)
        self._env.__enter__()
        try:
            for layer in self._layers:
                self._temporaries.append(layer.partial)
                self._datasets.append(
                    rasterio.open(layer.partial, 'w', **layer.profile)
                )
            self._describe()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _describe(self) -> None:
        """Record class names, colours and tags in the open datasets."""
        names = {f'STARS_CLASS_{i}': name for i, name in enumerate(self.class_names)}
        tags = {'STARS_CLASS_NAMES': json.dumps(self.class_names), **names, **self.tags}
        for layer, dataset in zip(self._layers, self._datasets, strict=True):
            dataset.update_tags(**tags)
            if layer.target == self.output:
                dataset.set_band_description(1, 'class')
                colourmap = {i: (*c, 255) for i, c in enumerate(self.colours)}
                colourmap[NODATA] = (0, 0, 0, 0)
                dataset.write_colormap(1, colourmap)
            else:
                for i, name in enumerate(self.class_names):
                    dataset.set_band_description(i + 1, f'probability of {name}')
                if self.probabilities == 'uint8':
                    dataset.scales = [1 / PROBABILITY_SCALE] * len(self.class_names)

    def write(
        self,
        row: int,
        col: int,
        classes: np.typing.NDArray[np.uint8],
        probabilities: np.typing.NDArray[np.float32] | None = None,
    ) -> None:
        """Write a window of the class map (and of the probabilities).

        Args:
            row: First row of the window in this file.
            col: First column.
            classes: ``(h, w)`` class indices, :data:`NODATA` where uncovered.
            probabilities: ``(K, h, w)`` probabilities (NaN where uncovered);
                required when the writer was made with *probabilities*.
        """
        height, width = classes.shape
        window = rasterio.windows.Window(col, row, width, height)
        for layer, dataset in zip(self._layers, self._datasets, strict=True):
            if layer.target == self.output:
                dataset.write(classes[None], window=window)
                continue
            assert probabilities is not None
            if self.probabilities == 'float32':
                dataset.write(probabilities, window=window)
            else:
                scaled = np.rint(
                    np.nan_to_num(probabilities, nan=0) * PROBABILITY_SCALE
                )
                scaled = scaled.astype(np.uint8)
                scaled[:, classes == NODATA] = NODATA
                dataset.write(scaled, window=window)

    def write_layer(
        self, target: Path, row: int, col: int, data: np.typing.NDArray[Any]
    ) -> None:
        """Write raw band values into one of the files, as stored.

        Args:
            target: Which file (one of :attr:`targets`).
            row: First row of the window.
            col: First column.
            data: ``(bands, h, w)`` values of that file's dtype.

        Raises:
            KeyError: If *target* is not written by this writer.
        """
        for layer, dataset in zip(self._layers, self._datasets, strict=True):
            if layer.target == target:
                window = rasterio.windows.Window(
                    col, row, data.shape[-1], data.shape[-2]
                )
                dataset.write(data, window=window)
                return
        raise KeyError(target)

    def commit(self) -> list[Path]:
        """Convert the temporaries to COGs and move them onto the targets.

        The probabilities file (if any) is published first, the class map last,
        so a class map at the output path always means a complete run.

        Returns:
            The published files.
        """
        for dataset in self._datasets:
            dataset.close()
        self._datasets = []
        finals: list[Path] = []
        for layer in self._layers:
            final = _temporary(layer.target, 'cog')
            self._temporaries.append(final)
            finals.append(final)
            rasterio.shutil.copy(
                layer.partial, final, driver='COG', **layer.cog_options
            )
        for layer, final in zip(self._layers, finals, strict=True):
            os.replace(final, layer.target)
        self._cleanup()
        return self.targets

    def _cleanup(self) -> None:
        """Close what is open and remove every temporary file."""
        for dataset in self._datasets:
            with contextlib.suppress(Exception):
                dataset.close()
        self._datasets = []
        for path in self._temporaries:
            path.unlink(missing_ok=True)
        self._temporaries = []

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._cleanup()
        finally:
            if self._env is not None:
                self._env.__exit__(exc_type, exc, traceback)
                self._env = None
