"""Command-line front end of :func:`~torchgeo_stars.datasets.align.align_rasters`.

``torchgeo-stars align --optical A [--sar B] [--dsm C] [--mask M] --output DIR
[--crs CRS] [--res RES] [--bounds L B R T] [--overwrite] [--no-progress]``
warps every modality given once onto one grid and writes
``DIR/<modality>/<modality>.tif``; every input flag takes one or more files or
folders, as ``predict-geotiff`` does.

Errors a user can fix are printed as one line on standard error: the command
returns 2 on bad arguments, 1 on bad data or output, 130 when interrupted
(nothing is left half-written).

.. versionadded:: 0.1
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import STARSError
from ..inference.grid import add_grid_arguments
from .align import align_rasters

#: Modalities that get their own flag, in the order that picks the grid.
ALIGN_MODALITIES = ('optical', 'sar', 'dsm')

PROG = 'torchgeo-stars align'


def _parser() -> argparse.ArgumentParser:
    """The ``align`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Warp optical, SAR, DSM and label rasters once onto one grid '
        "(by default the first given modality's, in optical, SAR, DSM order) "
        'and write them as Cloud Optimized GeoTIFFs in OUTPUT/<modality>/, so '
        'training reads them without resampling.',
    )
    for name in ALIGN_MODALITIES:
        parser.add_argument(
            f'--{name}',
            nargs='+',
            type=Path,
            metavar='PATH',
            help=f'{name} raster(s) or folder(s)',
        )
    parser.add_argument(
        '--mask',
        nargs='+',
        type=Path,
        metavar='PATH',
        help='label raster(s) or folder(s)',
    )
    parser.add_argument(
        '--output', required=True, type=Path, help='folder for the aligned rasters'
    )
    add_grid_arguments(parser, 'grid')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an output folder that holds other rasters',
    )
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torchgeo-stars align``.

    Args:
        argv: Arguments after the command name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error in the data or output, 2 on bad arguments,
        130 when interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    inputs = {
        name: getattr(args, name)
        for name in ALIGN_MODALITIES
        if getattr(args, name) is not None
    }
    if not inputs:
        parser.print_usage(sys.stderr)
        print(
            f'{PROG}: error: give at least one of --optical, --sar, --dsm',
            file=sys.stderr,
        )
        return 2
    try:
        result = align_rasters(
            inputs,
            args.output,
            mask=args.mask,
            crs=args.crs,
            res=args.res,
            bounds=args.bounds,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (STARSError, OSError) as error:
        message = ' '.join(str(error).split()) or type(error).__name__
        print(f'{PROG}: error: {message}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f'{PROG}: interrupted; no aligned raster was left half-written',
            file=sys.stderr,
        )
        return 130
    grid = result.grid
    state = (
        f'wrote {", ".join(result.written)}'
        if result.written
        else 'up to date, nothing to do'
    )
    print(
        f'{result.output}: {state}; grid {grid.width} x {grid.height} pixels of '
        f'{grid.res[0]:g} x {grid.res[1]:g} in {grid.crs.to_string()}'
    )
    return 0
