"""Splitting a prediction into shards by rows, and joining the parts.

Shard ``k`` of ``n`` owns a contiguous band of rows of blocks of the output
(:data:`~torchgeo_stars.inference.output.COG_BLOCKSIZE` rows each). It runs
every window that reaches its rows, including the few whose other part belongs
to a neighbouring shard, so each of its pixels is blended from exactly the
same windows as in a single run: the joined parts equal a one-shard run.

A part is a COG of its rows only, with tags saying which shard it is and the
full grid it belongs to; :func:`join_shards` checks that all parts of one run
are there and writes the full COG (and the full probabilities file when the
parts have one).
"""

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine

from ..errors import ConfigurationError, DataError
from .grid import OutputGrid
from .output import (
    COG_BLOCKSIZE,
    PredictionWriter,
    ProbabilityFormat,
    check_output_targets,
    probabilities_path,
)
from .paths import check_outputs_are_not_inputs

#: Tags that describe a shard; a joined file does not keep them.
SHARD_TAGS = ('STARS_SHARD', 'STARS_NUM_SHARDS', 'STARS_FULL_GRID')


def shard_rows(height: int, num_shards: int, shard: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of the output that a shard predicts.

    Args:
        height: Rows of the full output.
        num_shards: Number of shards.
        shard: This shard, ``0 <= shard < num_shards``.

    Returns:
        The shard's first row and the row after its last.

    Raises:
        ConfigurationError: If the arguments are out of range or a shard would
            get no rows.
    """
    if num_shards < 1:
        raise ConfigurationError(f'num_shards must be at least 1, got {num_shards}.')
    if not 0 <= shard < num_shards:
        raise ConfigurationError(
            f'shard must be in [0, num_shards={num_shards}), got {shard}.'
        )
    block_rows = math.ceil(height / COG_BLOCKSIZE)
    if num_shards > block_rows:
        raise ConfigurationError(
            f'num_shards={num_shards} is more than the {block_rows} rows of '
            f'{COG_BLOCKSIZE}-pixel blocks of this {height}-row output; use at '
            f'most {block_rows} shards.'
        )
    first = shard * block_rows // num_shards
    last = (shard + 1) * block_rows // num_shards
    return first * COG_BLOCKSIZE, min(last * COG_BLOCKSIZE, height)


def shard_tags(grid: OutputGrid, num_shards: int, shard: int) -> dict[str, str]:
    """Tags that identify a shard's part and the full grid it belongs to.

    Args:
        grid: The full output grid.
        num_shards: Number of shards.
        shard: This shard.

    Returns:
        Tag name to value (empty for a single shard).
    """
    if num_shards == 1:
        return {}
    full = {
        'crs': grid.crs.to_wkt(),
        'transform': list(grid.transform)[:6],
        'width': grid.width,
        'height': grid.height,
    }
    return {
        'STARS_SHARD': str(shard),
        'STARS_NUM_SHARDS': str(num_shards),
        'STARS_FULL_GRID': json.dumps(full),
    }


def _read_part(path: Path) -> dict[str, Any]:
    """Read a part's shard tags and where its rows go in the full grid."""
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
            full = _full_grid(tags, path)
            col, row = ~full.transform @ (src.transform.c, src.transform.f)
            if abs(col) > 0.01 or src.width != full.width:
                raise DataError(
                    f'{path} does not span the full width of its run; it is not a '
                    'part written by predict-geotiff --num-shards.'
                )
            return {
                'path': path,
                'tags': tags,
                'colormap': src.colormap(1),
                'shard': int(tags['STARS_SHARD']),
                'num_shards': int(tags['STARS_NUM_SHARDS']),
                'full': tags['STARS_FULL_GRID'],
                'row': round(row),
            }
    except (rasterio.errors.RasterioError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f'shard part {path} cannot be read ({error}).') from error


def _full_grid(tags: dict[str, str], path: Path) -> OutputGrid:
    """The full grid recorded in a part's tags."""
    if not all(tag in tags for tag in SHARD_TAGS):
        raise DataError(
            f'{path} is not a shard part (no {"/".join(SHARD_TAGS)} tags); give the '
            'files written with --num-shards/--shard.'
        )
    full = json.loads(tags['STARS_FULL_GRID'])
    return OutputGrid(
        rasterio.crs.CRS.from_wkt(full['crs']),
        Affine(*full['transform']),
        int(full['width']),
        int(full['height']),
    )


def _copy_blocks(
    sources: Sequence[tuple[Path, int]], writer: PredictionWriter, target: Path
) -> None:
    """Copy every part into the joined file, one block at a time."""
    for path, row in sources:
        with rasterio.open(path) as src:
            for _, window in src.block_windows(1):
                writer.write_layer(
                    target,
                    int(window.row_off) + row,
                    int(window.col_off),
                    src.read(window=window),
                )


def join_shards(
    parts: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Join the parts of a sharded prediction into one COG.

    The parts' ``*_probabilities.tif`` siblings, when all parts have one, are
    joined too, into the output's sibling.

    Args:
        parts: The class maps written by each shard (any order).
        output: The joined class map to write.
        overwrite: Whether to replace an existing output.

    Returns:
        The output path.

    Raises:
        DataError: If a part is unreadable, not a shard part, from another run,
            or if shards are missing or repeated.
        ConfigurationError: If the output is one of the parts, exists (and not
            *overwrite*) or its folder is missing or not writable.
    """
    output = Path(output)
    infos = [_read_part(Path(p)) for p in parts]
    if not infos:
        raise DataError('join_shards needs at least one shard part.')
    first = infos[0]
    for info in infos[1:]:
        if info['full'] != first['full'] or info['num_shards'] != first['num_shards']:
            raise DataError(
                f'{info["path"]} and {first["path"]} are parts of different runs '
                '(their full grids or shard counts differ).'
            )
    found = sorted(info['shard'] for info in infos)
    expected = list(range(first['num_shards']))
    if found != expected:
        missing = sorted(set(expected) - set(found))
        repeated = sorted({s for s in found if found.count(s) > 1})
        raise DataError(
            f'shard parts do not make a whole: missing shards {missing}, repeated '
            f'shards {repeated} (of {first["num_shards"]}).'
        )
    grid = _full_grid(first['tags'], first['path'])
    with_probabilities = [probabilities_path(info['path']).is_file() for info in infos]
    probability_format: ProbabilityFormat | None = None
    if all(with_probabilities):
        with rasterio.open(probabilities_path(first['path'])) as src:
            probability_format = 'float32' if src.dtypes[0] == 'float32' else 'uint8'
    targets = [output] + ([probabilities_path(output)] if probability_format else [])
    check_outputs_are_not_inputs(
        targets,
        [info['path'] for info in infos]
        + [probabilities_path(info['path']) for info in infos],
    )
    check_output_targets(targets, overwrite)

    tags = {k: v for k, v in first['tags'].items() if k not in SHARD_TAGS}
    class_names: list[str] = json.loads(tags.pop('STARS_CLASS_NAMES'))
    tags = {k: v for k, v in tags.items() if not k.startswith('STARS_CLASS_')}
    colours = [
        (int(c[0]), int(c[1]), int(c[2]))
        for c in (first['colormap'][i] for i in range(len(class_names)))
    ]
    ordered = sorted(infos, key=lambda info: info['shard'])
    with PredictionWriter(
        output,
        grid,
        class_names,
        colours,
        probability_format,
        tags,
        block=COG_BLOCKSIZE,
    ) as writer:
        _copy_blocks([(i['path'], i['row']) for i in ordered], writer, output)
        if probability_format:
            _copy_blocks(
                [(probabilities_path(i['path']), i['row']) for i in ordered],
                writer,
                probabilities_path(output),
            )
        writer.commit()
    return output
