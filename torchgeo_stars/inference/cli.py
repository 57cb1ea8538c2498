"""Command-line front ends: ``predict-geotiff`` and ``join-geotiff``.

``torchgeo-stars predict-geotiff --checkpoint CKPT --optical A.tif [--sar B.tif]
[--dsm C.tif] --output OUT.tif`` predicts a class map; every modality flag
takes one or more files or folders. Modalities other than the standard ones are
given as ``--input NAME PATH [PATH ...]``.

``torchgeo-stars join-geotiff PART [PART ...] --output OUT.tif`` joins the parts
written with ``--num-shards N --shard K``.

``--checkpoint`` takes a training checkpoint (``.ckpt``) or a model file
written by ``torchgeo-stars export``. The output may not be one of the inputs,
with or without ``--overwrite``.

Errors a user can fix are printed as one line on standard error and the
command returns 2 (argument errors) or 1 (everything else), never a traceback;
:class:`~torchgeo_stars.errors.DataWarning` is printed as one line too.
"""

import argparse
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ..errors import DataWarning, STARSError
from .checkpoint import load_predictor
from .engine import predict_geotiff
from .grid import add_grid_arguments
from .shards import join_shards

#: The command's name in messages.
PROG = 'torchgeo-stars predict-geotiff'

#: Modalities that get their own flag; others use ``--input NAME PATH...``.
STANDARD_MODALITIES = ('optical', 'sar', 'dsm')


def _parser() -> argparse.ArgumentParser:
    """The ``predict-geotiff`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Segment georeferenced rasters with a trained STARS model into '
        'a Cloud Optimized GeoTIFF class map.',
    )
    parser.add_argument(
        '--checkpoint',
        required=True,
        type=Path,
        help='STARS training .ckpt, or a model file from torchgeo-stars export',
    )
    for name in STANDARD_MODALITIES:
        parser.add_argument(
            f'--{name}',
            nargs='+',
            type=Path,
            metavar='PATH',
            help=f'{name} raster(s) or folder(s)',
        )
    parser.add_argument(
        '--input',
        nargs='+',
        action='append',
        default=[],
        metavar=('NAME', 'PATH'),
        help='raster(s) or folder(s) of any other modality NAME (repeatable)',
    )
    parser.add_argument('--output', required=True, type=Path, help='class map .tif')
    add_grid_arguments(parser, 'output')
    parser.add_argument('--patch-size', type=int, default=512)
    parser.add_argument('--overlap', type=int, default=64)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N')
    parser.add_argument(
        '--precision',
        choices=('32', 'bf16'),
        default='32',
        help='float32, or bfloat16 autocast (faster on recent GPUs)',
    )
    parser.add_argument(
        '--probabilities',
        choices=('float32', 'uint8'),
        help='also write class probabilities to OUT_probabilities.tif',
    )
    parser.add_argument('--num-shards', type=int, default=1)
    parser.add_argument('--shard', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


@contextmanager
def _one_line_warnings(prog: str) -> Iterator[None]:
    """Print :class:`~torchgeo_stars.errors.DataWarning` as ``PROG: warning: ...``.

    Other warnings are shown as usual.

    Args:
        prog: The command's name.

    Yields:
        Nothing; the handler is in place inside the ``with`` block (or the
        decorated function).
    """
    show = warnings.showwarning

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, DataWarning):
            text = ' '.join(str(message).split())
            print(f'{prog}: warning: {text}', file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter('always', DataWarning)
        warnings.showwarning = show_warning
        yield


def _fail(prog: str, error: BaseException) -> int:
    """Print an error as one line and return the exit status."""
    message = ' '.join(str(error).split()) or type(error).__name__
    print(f'{prog}: error: {message}', file=sys.stderr)
    return 1


@_one_line_warnings(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchgeo-stars predict-geotiff``.

    Args:
        argv: Arguments after the command name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error in the data, checkpoint or output, 2 on bad
        arguments.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    inputs: dict[str, list[Path]] = {
        name: getattr(args, name)
        for name in STANDARD_MODALITIES
        if getattr(args, name) is not None
    }
    for values in args.input:
        if len(values) < 2:
            parser.print_usage(sys.stderr)
            print(
                f'{parser.prog}: error: --input needs NAME PATH [PATH ...]',
                file=sys.stderr,
            )
            return 2
        inputs.setdefault(values[0], []).extend(Path(v) for v in values[1:])
    if not inputs:
        parser.print_usage(sys.stderr)
        print(
            f'{parser.prog}: error: give at least one input, e.g. --optical A.tif',
            file=sys.stderr,
        )
        return 2
    try:
        predictor = load_predictor(args.checkpoint)
        predict_geotiff(
            predictor.model,
            inputs,
            args.output,
            modalities=predictor.modalities,
            class_names=predictor.class_names,
            colors=predictor.colors,
            statistics=predictor.statistics,
            reader_options=predictor.reader_options,
            crs=args.crs,
            res=args.res,
            bounds=args.bounds,
            patch_size=args.patch_size,
            overlap=args.overlap,
            batch_size=args.batch_size,
            device=args.device,
            precision=args.precision,
            probabilities=args.probabilities,
            num_shards=args.num_shards,
            shard=args.shard,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (STARSError, OSError) as error:
        return _fail(parser.prog, error)
    return 0


def join_main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchgeo-stars join-geotiff PART [PART ...] --output OUT.tif``.

    Args:
        argv: Arguments after the command name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error in the parts or output, 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-stars join-geotiff',
        description='Join the parts of a sharded predict-geotiff run into one COG.',
    )
    parser.add_argument('parts', nargs='+', type=Path, help='shard parts')
    parser.add_argument('--output', required=True, type=Path)
    parser.add_argument('--overwrite', action='store_true')
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        join_shards(args.parts, args.output, overwrite=args.overwrite)
    except (STARSError, OSError) as error:
        return _fail(parser.prog, error)
    return 0
