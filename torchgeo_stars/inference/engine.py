"""Sliding-window prediction of georeferenced rasters of any size."""

import itertools
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rasterio.crs import CRS
from torch import Tensor, nn
from tqdm import tqdm

from ..datasets.keys import image_key
from ..datasets.normalization import NormalizeModalities, coerce_statistics
from ..errors import ConfigurationError, DataError
from .blending import BlendedRun, StreamingBlender
from .grid import OutputGrid, bounds_intersect, format_bounds, output_grid
from .output import (
    NODATA,
    Colour,
    PredictionWriter,
    ProbabilityFormat,
    check_output_targets,
    default_colours,
    probabilities_path,
)
from .paths import check_outputs_are_not_inputs
from .shards import shard_rows, shard_tags
from .sources import (
    ModalitySource,
    check_valid_pixels,
    expand_paths,
    inspect_raster,
    union_bounds,
)
from .window import check_tiling, window_origins, window_weight

PathLike = str | os.PathLike[str]

#: Inference precisions: ``'32'`` (float32) or ``'bf16'`` (bfloat16 autocast).
Precision = Literal['32', 'bf16']


class _Progress(tqdm):  # type: ignore[type-arg]
    """A tqdm bar that starts no monitor thread (it can outlive the run)."""

    monitor_interval = 0


@dataclass(frozen=True)
class _Window:
    """One sliding window: its row-major index and first row/column (full grid)."""

    index: int
    row: int
    col: int


@dataclass
class _Prepared:
    """A window's model inputs, or None when nothing covers it."""

    window: _Window
    inputs: dict[str, np.typing.NDArray[np.float32]] | None = None
    available: list[bool] | None = None
    valid: np.typing.NDArray[np.bool_] | None = None


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``'auto'`` into the GPU when there is one, else the CPU.

    Args:
        device: ``'auto'``, or anything :class:`torch.device` accepts.

    Returns:
        The device.

    Raises:
        ConfigurationError: If *device* is not a valid or usable device.
    """
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigurationError(
            f'device {device!r} is not a torch device (use auto, cpu, cuda or cuda:N).'
        ) from error
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ConfigurationError(
            f'device {device!r} asked for but no CUDA GPU is available; use '
            '--device cpu or auto.'
        )
    return resolved


def _normaliser(
    statistics: Mapping[str, Any] | None, modalities: Mapping[str, int]
) -> NormalizeModalities | None:
    """The training normaliser for the model's modalities, or None for raw values.

    Raises:
        ConfigurationError: If a modality's statistics have another band count
            than the model.
    """
    stats = {
        name: value
        for name, value in coerce_statistics(statistics).items()
        if name in modalities
    }
    for name, value in stats.items():
        if value.num_bands != modalities[name]:
            raise ConfigurationError(
                f'statistics of {name} have {value.num_bands} means and standard '
                f'deviations but the model has {modalities[name]} {name} bands.'
            )
    return NormalizeModalities(stats) if stats else None


def _check_arguments(
    inputs: Mapping[str, Any],
    modalities: Mapping[str, int],
    class_names: Sequence[str],
    colors: Sequence[Colour] | None,
    batch_size: int,
    probabilities: str | None,
    min_coverage: float,
) -> None:
    """Validate what does not need the files."""
    if not inputs:
        raise ConfigurationError(
            f'no input given; give at least one of the modalities {list(modalities)}.'
        )
    unknown = [name for name in inputs if name not in modalities]
    if unknown:
        raise ConfigurationError(
            f'modalities {unknown} were given but the model was trained on '
            f'{list(modalities)} only; remove them.'
        )
    if not 1 <= len(class_names) <= NODATA:
        raise ConfigurationError(
            f'the class map is uint8 with {NODATA} as nodata, so 1 to {NODATA} '
            f'classes are supported; got {len(class_names)}.'
        )
    if colors is not None and len(colors) != len(class_names):
        raise ConfigurationError(
            f'{len(colors)} colours given for {len(class_names)} classes.'
        )
    if batch_size < 1:
        raise ConfigurationError(f'batch_size must be at least 1, got {batch_size}.')
    if probabilities not in (None, 'float32', 'uint8'):
        raise ConfigurationError(
            f"probabilities must be None, 'float32' or 'uint8', got {probabilities!r}."
        )
    if not 0 <= min_coverage <= 1:
        raise ConfigurationError(f'min_coverage must be in [0, 1], got {min_coverage}.')


def _open_sources(
    inputs: Mapping[str, PathLike | Sequence[PathLike]],
    modalities: Mapping[str, int],
    crs: str | CRS | None,
    res: float | Sequence[float] | None,
    bounds: Sequence[float] | None,
    reader_options: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[OutputGrid, dict[str, ModalitySource]]:
    """Inspect every file, work out the output grid and open the modalities."""
    files = {
        name: [
            inspect_raster(name, path, modalities[name])
            for path in expand_paths(name, inputs[name])
        ]
        for name in modalities
        if name in inputs
    }
    reference = next(iter(files.values()))
    first = reference[0]
    grid = output_grid(
        first.crs,
        first.transform,
        union_bounds(reference, first.crs),
        crs=crs,
        res=res,
        bounds=bounds,
    )
    sources = {
        name: ModalitySource(name, infos, grid, (reader_options or {}).get(name))
        for name, infos in files.items()
    }
    apart = [s for s in sources.values() if not bounds_intersect(s.bounds, grid.bounds)]
    if apart:
        described = '; '.join(s.describe() for s in apart)
        area = (
            'the requested bounds'
            if bounds is not None or crs is not None
            else f'the extent of {next(iter(sources.values())).describe()}'
        )
        raise DataError(
            f'inputs do not overlap: {described} lies outside the output area '
            f'{format_bounds(grid.bounds)} (in {grid.crs}), {area}. Give rasters '
            'of the same place' + (' or other bounds.' if bounds is not None else '.')
        )
    check_valid_pixels(files, grid, reader_options)
    return grid, sources


class _WindowReader:
    """Read and normalise windows for the model."""

    def __init__(
        self,
        grid: OutputGrid,
        sources: Mapping[str, ModalitySource],
        normaliser: NormalizeModalities | None,
        patch_size: int,
        min_coverage: float,
    ) -> None:
        self.grid = grid
        self.sources = sources
        self.normaliser = normaliser
        self.patch_size = patch_size
        self.min_coverage = min_coverage

    def __call__(self, windows: Sequence[_Window]) -> list[_Prepared]:
        return [self.prepare(window) for window in windows]

    def prepare(self, window: _Window) -> _Prepared:
        """Read one window of every modality and decide which are available.

        A modality is available for the window when it is valid on at least
        ``min_coverage`` of the pixels some input covers (the best covered
        modality always is). Its pixels outside its coverage are set to 0 after
        normalisation, i.e. to the training mean.

        Args:
            window: The window.

        Returns:
            The model inputs, or an empty result when no input covers it.
        """
        size = self.patch_size
        bounds = self.grid.window_bounds(window.row, window.col, size, size)
        read = {}
        for name, source in self.sources.items():
            result = source.read(bounds, (size, size))
            if result is not None and result[1].any():
                read[name] = result
        if not read:
            return _Prepared(window)
        union = np.logical_or.reduce([valid for _, valid in read.values()])
        covered = int(union.sum())
        fractions = {name: valid.sum() / covered for name, (_, valid) in read.items()}
        threshold = min(self.min_coverage, max(fractions.values()))
        inputs: dict[str, np.typing.NDArray[np.float32]] = {}
        for name, (data, _) in read.items():
            if fractions[name] < threshold:
                continue
            key = image_key(name)
            if self.normaliser is not None and self.normaliser.has(name):
                data = self.normaliser({key: torch.from_numpy(data)})[key].numpy()
            np.copyto(data, np.float32(0), where=~np.isfinite(data))
            inputs[name] = data.astype(np.float32, copy=False)
        return _Prepared(window, inputs, [n in inputs for n in self.sources], union)


def _batched(items: Sequence[_Window], size: int) -> Iterator[Sequence[_Window]]:
    """Consecutive chunks of at most *size* windows."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _forward(
    model: nn.Module,
    prepared: Sequence[_Prepared],
    modalities: Mapping[str, int],
    num_classes: int,
    patch_size: int,
    device: torch.device,
    precision: Precision = '32',
) -> np.typing.NDArray[np.float32]:
    """Run the model on a batch of windows and return class probabilities.

    With ``precision='bf16'`` the model runs under bfloat16 autocast; the
    softmax is always taken in float32.
    """
    batch = len(prepared)
    inputs: dict[str, Tensor] = {}
    available = torch.zeros(batch, len(modalities), dtype=torch.bool)
    for column, (name, bands) in enumerate(modalities.items()):
        rows = [i for i, item in enumerate(prepared) if name in (item.inputs or {})]
        if not rows:
            continue  # missing from the whole batch: the model recovers it
        tensor = torch.zeros(batch, bands, patch_size, patch_size)
        for row in rows:
            arrays = prepared[row].inputs
            assert arrays is not None
            tensor[row] = torch.from_numpy(arrays[name])
            available[row, column] = True
        inputs[name] = tensor.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == 'bf16'):
        output = model(inputs, available=available.to(device))
    logits = output if isinstance(output, Tensor) else output.logits
    expected = (batch, num_classes, patch_size, patch_size)
    if tuple(logits.shape) != expected:
        raise ConfigurationError(
            f'the model returned logits of shape {tuple(logits.shape)}, expected '
            f'{expected} (batch, classes, patch, patch); check class_names and '
            'patch_size.'
        )
    probabilities = torch.softmax(logits.float(), dim=1)
    return probabilities.cpu().numpy()


def _finalise(
    run: BlendedRun, num_classes: int
) -> tuple[np.typing.NDArray[np.uint8], np.typing.NDArray[np.float32]]:
    """Turn accumulated sums into class indices and probabilities."""
    values = run.values
    weight = values[num_classes]
    valid = (values[num_classes + 1] > 0) & (weight > 0)
    divisor = np.where(weight > 0, weight, np.float32(1)).astype(np.float32)
    probabilities: np.typing.NDArray[np.float32] = values[:num_classes] / divisor
    classes = probabilities.argmax(axis=0).astype(np.uint8)
    classes[~valid] = NODATA
    probabilities[:, ~valid] = np.nan
    return classes, probabilities


def predict_geotiff(
    model: nn.Module,
    inputs: Mapping[str, PathLike | Sequence[PathLike]],
    output: PathLike,
    *,
    modalities: Mapping[str, int],
    class_names: Sequence[str],
    colors: Sequence[Colour] | None = None,
    statistics: Mapping[str, Any] | None = None,
    crs: str | CRS | None = None,
    res: float | Sequence[float] | None = None,
    bounds: Sequence[float] | None = None,
    patch_size: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: str | torch.device = 'auto',
    precision: Precision = '32',
    probabilities: ProbabilityFormat | None = None,
    num_shards: int = 1,
    shard: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    min_coverage: float = 0.5,
    reader_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Segment georeferenced rasters of any size into a Cloud Optimized GeoTIFF.

    The output grid is, by default, exactly the grid of the first input file
    of the first given modality (in the model's modality order), widened on the
    same pixel grid to the union of that modality's files; *crs*, *res* and
    *bounds* override it. Every modality is read on that grid window by window
    through TorchGeo (mosaicking several files and reprojecting as needed).
    Overlapping windows are blended with a smooth weight, probabilities first,
    so there are no seams; memory depends on the window size, batch and the
    raster's width, not its size. See :mod:`torchgeo_stars.inference.output`
    for the file layout and :mod:`torchgeo_stars.inference.shards` for sharding.

    Args:
        model: Segmentation model following the STARS output contract
            (``forward(inputs, available)`` returning a ``SegmentationOutput`` or
            logits); it is put in eval mode and moved to *device*. Modalities
            missing from a whole batch are left out of *inputs*; otherwise
            unavailable rows are zeros with ``available`` False.
        inputs: Modality name to one file, several files or a folder; any
            non-empty subset of *modalities*.
        output: Class map to write (``.tif``). With several shards, this shard's
            part.
        modalities: Modality name to band count the model was trained with, in
            the model's order.
        class_names: Name of each class, in class-index order (at most 255).
        colors: RGB colour of each class; matplotlib's ``tab20`` by default.
        statistics: Per-modality normalisation statistics
            (:class:`~torchgeo_stars.datasets.ModalityStatistics` or their dict
            form), applied as in training by
            :class:`~torchgeo_stars.datasets.NormalizeModalities`; None feeds
            raw values.
        crs: Output CRS (EPSG code, WKT, ...) instead of the reference's.
        res: Output pixel size, one value or ``(x, y)``, in CRS units.
        bounds: Output ``(left, bottom, right, top)`` in the output CRS.
        patch_size: Side of the sliding windows, in output pixels.
        overlap: Pixels shared by neighbouring windows.
        batch_size: Windows per model call.
        device: ``'auto'`` (the GPU if any), ``'cpu'``, ``'cuda'``, ...
        precision: ``'32'`` (float32) or ``'bf16'``: the model runs under
            bfloat16 autocast (faster on GPUs with bfloat16 units; a few
            pixels near class boundaries may change class).
        probabilities: Also write per-class probabilities, as ``'float32'`` or
            scaled ``'uint8'``, to ``<output stem>_probabilities.tif``.
        num_shards: Split the work into this many shards by rows of blocks.
        shard: Which shard this call writes (``0 <= shard < num_shards``).
        overwrite: Replace existing output files.
        progress: Show a progress bar.
        min_coverage: Minimum fraction of a window's covered pixels a modality
            must cover to be used for that window.
        reader_options: Per-modality keyword arguments of its raster class
            (e.g. ``{'sar': {'to_db': True}}``), the same as in training.

    Returns:
        The path of the class map written.

    Raises:
        ConfigurationError: For a modality the model does not know, a band count
            that differs from the model's, bad parameters, an existing output
            without *overwrite*, or a missing or read-only output folder.
        DataError: For missing, unreadable or truncated inputs, or inputs that
            do not overlap.
    """
    output = Path(output)
    stride = check_tiling(patch_size, overlap)
    _check_arguments(
        inputs, modalities, class_names, colors, batch_size, probabilities, min_coverage
    )
    if num_shards < 1 or not 0 <= shard < num_shards:
        shard_rows(1, num_shards, shard)
    targets = [output] + ([probabilities_path(output)] if probabilities else [])
    check_outputs_are_not_inputs(
        targets, [path for name in inputs for path in expand_paths(name, inputs[name])]
    )
    check_output_targets(targets, overwrite)
    torch_device = resolve_device(device)
    if precision not in ('32', 'bf16'):
        raise ConfigurationError(
            f"precision must be '32' or 'bf16', got {precision!r}."
        )
    normaliser = _normaliser(statistics, modalities)
    grid, sources = _open_sources(inputs, modalities, crs, res, bounds, reader_options)
    first_row, stop_row = shard_rows(grid.height, num_shards, shard)

    rows = [
        r
        for r in window_origins(grid.height, patch_size, stride)
        if r < stop_row and r + patch_size > first_row
    ]
    cols = window_origins(grid.width, patch_size, stride)
    windows = [
        _Window(i, r, c) for i, (r, c) in enumerate(itertools.product(rows, cols))
    ]
    num_classes = len(class_names)
    blender = StreamingBlender(
        stop_row - first_row,
        grid.width,
        [r - first_row for r in rows],
        cols,
        patch_size,
        num_classes + 2,
    )
    weight = window_weight(patch_size)
    reader = _WindowReader(grid, sources, normaliser, patch_size, min_coverage)
    tags = {
        'STARS_MODALITIES': ','.join(sources),
        **shard_tags(grid, num_shards, shard),
    }
    model = model.to(torch_device).eval()
    with (
        PredictionWriter(
            output,
            grid.rows(first_row, stop_row),
            class_names,
            colors or default_colours(num_classes),
            probabilities,
            tags,
            block=blender.block,
        ) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix='stars-read') as pool,
        _Progress(
            total=len(windows), unit='window', disable=not progress, desc=output.name
        ) as bar,
        torch.inference_mode(),
    ):
        chunks = list(_batched(windows, batch_size))
        pending: Future[list[_Prepared]] | None = (
            pool.submit(reader, chunks[0]) if chunks else None
        )
        for index in range(len(chunks)):
            assert pending is not None
            prepared = pending.result()
            pending = (
                pool.submit(reader, chunks[index + 1])
                if index + 1 < len(chunks)
                else None
            )
            ready = [p for p in prepared if p.inputs is not None]
            if ready:
                probs = _forward(
                    model,
                    ready,
                    modalities,
                    num_classes,
                    patch_size,
                    torch_device,
                    precision,
                )
                for item, prob in zip(ready, probs, strict=True):
                    assert item.valid is not None
                    values = np.empty(
                        (num_classes + 2, patch_size, patch_size), dtype=np.float32
                    )
                    np.multiply(prob, weight, out=values[:num_classes])
                    values[num_classes] = weight
                    values[num_classes + 1] = item.valid
                    blender.add(item.window.row - first_row, item.window.col, values)
            for run in blender.finish(prepared[-1].window.index):
                classes, probs_out = _finalise(run, num_classes)
                writer.write(
                    run.row, run.col, classes, probs_out if probabilities else None
                )
            bar.update(len(prepared))
        for run in blender.finish(len(windows)):
            classes, probs_out = _finalise(run, num_classes)
            writer.write(
                run.row, run.col, classes, probs_out if probabilities else None
            )
        writer.commit()
    return output
