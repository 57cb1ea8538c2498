"""``torchgeo-stars export CKPT OUT``: a small file to share a trained model.

A training checkpoint holds what resuming training needs: with AdamW, the
optimizer's two moment estimates make it about three times the size of the
weights, plus metric states and loss buffers. :func:`export_model` keeps what
inference needs (the network's weights, the task's hyper-parameters, the
normalisation statistics, the raster reading options, the class names and
colours) in one safetensors file (:mod:`~torchgeo_stars.inference.model_file`)
that ``predict-geotiff --checkpoint`` and
:func:`~torchgeo_stars.inference.load_predictor` read like a checkpoint.
"""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, STARSError
from .checkpoint import (
    Predictor,
    predictor_from_checkpoint,
    predictor_from_model_file,
    read_checkpoint,
    task_arguments,
)
from .model_file import (
    MODEL_SUFFIX,
    WEIGHT_DTYPES,
    is_model_file,
    read_model_metadata,
    write_model_file,
)
from .paths import check_outputs_are_not_inputs


def _json_value(value: Any, where: str) -> Any:
    """*value* with tuples as lists, checked to be plain JSON data.

    Args:
        value: A hyper-parameter value.
        where: Its name, for messages.

    Returns:
        The value, made of dicts with string keys, lists, strings, numbers,
        booleans and None.

    Raises:
        ConfigurationError: For anything else.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item, f'{where}[{i}]') for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f'{where}.{k}') for k, v in value.items()}
    raise ConfigurationError(
        f'hyper-parameter {where} is a {type(value).__name__}, which a model file '
        'cannot hold as JSON.'
    )


def _source(path: Path) -> tuple[Predictor, dict[str, Any]]:
    """Load a checkpoint or a model file with its task hyper-parameters."""
    if is_model_file(path):
        hyper_parameters = dict(read_model_metadata(path)['hyper_parameters'])
        return predictor_from_model_file(path), hyper_parameters
    checkpoint = read_checkpoint(path)
    predictor = predictor_from_checkpoint(checkpoint, path)
    return predictor, dict(checkpoint['hyper_parameters'])


def export_model(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    dtype: str = 'float32',
    overwrite: bool = False,
) -> Path:
    """Write the inference model file of a STARS checkpoint.

    Args:
        checkpoint: A ``.ckpt`` file saved by STARSSegmentationTask training (or
            an exported model file, e.g. to store it in another *dtype*).
        output: The model file to write (conventionally ``.safetensors``).
        dtype: ``'float32'`` (the weights as trained: the same predictions) or
            ``'float16'`` (half the size; predictions may differ slightly).
        overwrite: Replace *output* if it exists.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: If *checkpoint* does not exist.
        ConfigurationError: If it is not a STARS checkpoint, *output* is the
            checkpoint itself, exists without *overwrite*, or its folder is
            missing.
    """
    source, target = Path(checkpoint), Path(output)
    if not source.is_file():
        raise FileNotFoundError(f'checkpoint {source} does not exist.')
    check_outputs_are_not_inputs([target], [source])
    if target.exists() and not overwrite:
        raise ConfigurationError(
            f'output {target} already exists; pass --overwrite to replace it.'
        )
    if not target.parent.is_dir():
        raise ConfigurationError(
            f'output folder {target.parent} does not exist; create it first.'
        )
    predictor, hyper_parameters = _source(source)
    from .. import __version__

    statistics = predictor.statistics
    metadata = {
        'package_version': __version__,
        'task': 'STARSSegmentationTask',
        'hyper_parameters': _json_value(
            task_arguments(hyper_parameters), 'hyper_parameters'
        ),
        'modalities': dict(predictor.modalities),
        'class_names': list(predictor.class_names),
        'class_colors': [list(c) for c in predictor.colors]
        if predictor.colors
        else None,
        'statistics': {name: stats.to_dict() for name, stats in statistics.items()}
        if statistics
        else None,
        'reader_options': _json_value(predictor.reader_options, 'reader_options'),
    }
    return write_model_file(target, predictor.model, metadata, dtype=dtype)


def _size(path: Path) -> str:
    """A file's size in megabytes, for messages."""
    return f'{path.stat().st_size / 1e6:.1f} MB'


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchgeo-stars export CKPT OUT``.

    Args:
        argv: Arguments after the command name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error in the checkpoint or output, 2 on bad
        arguments.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-stars export',
        description='Write a small inference model file (weights as safetensors, '
        'hyper-parameters, normalisation statistics, reading options, class names '
        'and colours as JSON in its header) from a training checkpoint; '
        'predict-geotiff --checkpoint reads it like the checkpoint.',
    )
    parser.add_argument('checkpoint', type=Path, help='STARS training .ckpt')
    parser.add_argument(
        'output', type=Path, help=f'model file to write (e.g. model{MODEL_SUFFIX})'
    )
    parser.add_argument(
        '--dtype',
        choices=sorted(WEIGHT_DTYPES),
        default='float32',
        help='how weights are stored: float32 (default, the same predictions) or '
        'float16 (half the size, predictions may differ slightly)',
    )
    parser.add_argument('--overwrite', action='store_true', help='replace OUT')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        written = export_model(
            args.checkpoint, args.output, dtype=args.dtype, overwrite=args.overwrite
        )
    except (STARSError, OSError) as error:
        message = ' '.join(str(error).split()) or type(error).__name__
        print(f'{parser.prog}: error: {message}', file=sys.stderr)
        return 1
    ratio = written.stat().st_size / max(args.checkpoint.stat().st_size, 1)
    print(
        f'wrote {written} ({_size(written)}, {100 * ratio:.0f} % of '
        f'{args.checkpoint.name}, {_size(args.checkpoint)})'
    )
    print(f'use it with: torchgeo-stars predict-geotiff --checkpoint {written} ...')
    return 0
