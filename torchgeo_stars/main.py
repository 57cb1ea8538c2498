"""Command-line interface: TorchGeo's LightningCLI plus our own commands.

``torchgeo-stars fit|validate|test|predict --config CFG.yaml`` is TorchGeo's
LightningCLI with this package's task and datamodules importable by short name
next to TorchGeo's own. More commands:

* ``torchgeo-stars synthetic OUT_DIR [--size --seed --classes]`` writes the
  synthetic demo scene;
* ``torchgeo-stars predict-geotiff --checkpoint CKPT --optical A.tif ...``
  writes a georeferenced prediction, ``torchgeo-stars join-geotiff`` joins
  the parts of a sharded one;
* ``torchgeo-stars align --optical A --sar B ... --output DIR`` warps every
  modality once onto one grid, for fast training;
* ``torchgeo-stars export CKPT OUT.safetensors`` writes a small inference
  model file from a training checkpoint.

Checkpoints are always loaded with ``weights_only=True`` (``--weights_only
true`` is added to LightningCLI's fit/validate/test/predict unless given), so
loading never runs pickled code; one that needs more is refused in one line.
Third-party tips and deprecation warnings the project cannot fix are filtered
(:mod:`torchgeo_stars.quiet`).

Errors a user can fix are printed as one line, without a traceback. Every
command exits with status 0 on success, 1 on a problem with the data,
configuration, checkpoint or output, 2 when its arguments cannot be parsed
(argparse's and jsonargparse's own status) and 130 when interrupted.
"""

import argparse
import pickle
import sys
from collections.abc import Callable, Sequence

from .errors import ConfigurationError, STARSError
from .quiet import quiet_third_party

#: LightningCLI subcommands that can load a checkpoint (``--ckpt_path``).
CHECKPOINT_SUBCOMMANDS = ('fit', 'validate', 'test', 'predict')

#: What ``torchgeo-stars``, ``-h`` or ``--help`` prints: every command, ours
#: and LightningCLI's (whose own help lists only its four).
OVERVIEW = """\
usage: torchgeo-stars COMMAND [ARGS]   (COMMAND --help: its options)

Missing-modality multimodal segmentation for TorchGeo.

Training and evaluation (TorchGeo's LightningCLI, e.g. fit --config CFG.yaml):
  fit               train a model
  validate          score a checkpoint on the validation area
  test              score a checkpoint on the test area, every scenario
  predict           predict the datamodule's prediction area

Tools:
  synthetic         write the synthetic optical + SAR + DSM + label scene
  align             warp every modality once onto one grid, for fast training
  predict-geotiff   write a georeferenced prediction from GeoTIFFs of any size
  join-geotiff      join the parts of a sharded predict-geotiff run
  export            write a small inference model file from a checkpoint
"""


def synthetic_main(argv: Sequence[str]) -> int:
    """Write the synthetic demo scene (``torchgeo-stars synthetic``).

    Args:
        argv: Arguments after the command name.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog='torchgeo-stars synthetic',
        description='Write a synthetic optical + SAR + DSM + label scene as '
        'GeoTIFFs, each modality in its own CRS and resolution.',
    )
    parser.add_argument('out_dir', help='folder to write the scene into')
    parser.add_argument(
        '--size', type=int, default=512, help='scene width/height in 10 m pixels'
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--classes', type=int, default=6, help='number of classes')
    parser.add_argument(
        '--vehicle-scale',
        type=float,
        default=1.0,
        help='factor on vehicle length and width, 0.5-4 (1: cars of 1-2 pixels; '
        '3: blocks of 3-5 x 2 pixels, a rare class a model can delineate)',
    )
    parser.add_argument(
        '--overwrite', action='store_true', help='replace an existing scene'
    )
    args = parser.parse_args(list(argv))
    # Imported after parsing, so that --help answers without loading torch
    from .datasets.synthetic import describe_scene, make_synthetic_scene

    scene = make_synthetic_scene(
        args.out_dir,
        size=args.size,
        seed=args.seed,
        num_classes=args.classes,
        vehicle_scale=args.vehicle_scale,
        overwrite=args.overwrite,
    )
    print(describe_scene(scene))
    return 0


def predict_geotiff_main(argv: Sequence[str]) -> int:
    """Predict a GeoTIFF from a checkpoint (``torchgeo-stars predict-geotiff``).

    Args:
        argv: Arguments after the command name.

    Returns:
        The exit status.
    """
    from .inference import main as inference_main

    return inference_main(list(argv))


def join_geotiff_main(argv: Sequence[str]) -> int:
    """Join sharded predictions into one COG (``torchgeo-stars join-geotiff``).

    Args:
        argv: Arguments after the command name.

    Returns:
        The exit status.
    """
    from .inference import join_main

    return join_main(list(argv))


def align_main(argv: Sequence[str]) -> int:
    """Warp rasters once onto one grid (``torchgeo-stars align``).

    Args:
        argv: Arguments after the command name.

    Returns:
        The exit status.
    """
    from .datasets.align_cli import main as align_cli_main

    return align_cli_main(list(argv))


def export_main(argv: Sequence[str]) -> int:
    """Write an inference model file from a checkpoint (``torchgeo-stars export``).

    Args:
        argv: Arguments after the command name.

    Returns:
        The exit status.
    """
    from .inference.export import main as export_command

    return export_command(list(argv))


def with_safe_loading(argv: Sequence[str]) -> list[str]:
    """Add ``--weights_only=true`` to a LightningCLI command that loads checkpoints.

    Args:
        argv: Arguments, starting with the subcommand.

    Returns:
        *argv*, plus ``--weights_only=true`` for fit/validate/test/predict
        unless ``--weights_only`` is already given (or the installed Lightning
        predates the option, when ``torch.load``'s own default applies: True
        since PyTorch 2.6).
    """
    import inspect

    from lightning.pytorch import Trainer

    args = list(argv)
    if (
        args
        and args[0] in CHECKPOINT_SUBCOMMANDS
        and 'weights_only' in inspect.signature(getattr(Trainer, args[0])).parameters
        and not any(arg.startswith('--weights_only') for arg in args)
    ):
        args.append('--weights_only=true')
    return args


def lightning_main(argv: Sequence[str]) -> int:
    """Run TorchGeo's LightningCLI with this package's classes registered.

    Args:
        argv: Arguments, starting with the subcommand (fit, validate, ...).

    Returns:
        The exit status.
    """
    import torchgeo.main

    # Importing registers our subclasses so their short names resolve.
    from . import datamodules, tasks  # noqa: F401

    # LightningCLI reads sys.argv; give it exactly these arguments.
    saved = sys.argv
    sys.argv = [saved[0] if saved else 'torchgeo-stars', *with_safe_loading(argv)]
    try:
        torchgeo.main.main()
    finally:
        sys.argv = saved
    return 0


def user_error(error: BaseException) -> BaseException | None:
    """Find the error a user can fix behind *error*, if there is one.

    LightningCLI (through jsonargparse) re-raises errors of the classes it
    instantiates as its own ``ValueError``; the original is in the chain.

    Args:
        error: The exception that stopped the command.

    Returns:
        The first :class:`~torchgeo_stars.errors.STARSError` or
        :class:`FileExistsError` in the exception chain (a checkpoint refused
        by ``torch.load(weights_only=True)`` as a
        :class:`~torchgeo_stars.errors.ConfigurationError`), or None.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, STARSError | FileExistsError):
            return current
        if isinstance(current, pickle.UnpicklingError) and (
            'Weights only load failed' in str(current)
        ):
            return ConfigurationError(
                'the checkpoint (--ckpt_path) cannot be loaded safely: it is not a '
                'checkpoint, or it holds Python objects other than tensors and plain '
                'values, whose loading would run their code; it is refused. Save '
                'checkpoints with torchgeo-stars, or pass --weights_only=false only '
                'for a checkpoint from a source you trust.'
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


#: The package's own commands (the others go to LightningCLI).
COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    'synthetic': synthetic_main,
    'predict-geotiff': predict_geotiff_main,
    'join-geotiff': join_geotiff_main,
    'align': align_main,
    'export': export_main,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torchgeo-stars`` console script.

    Args:
        argv: Command-line arguments without the program name (defaults to
            ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on an error the user can fix, 2 on
        arguments that cannot be parsed.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    quiet_third_party()
    if not args or args[0] in ('-h', '--help'):
        print(OVERVIEW, end='', file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    try:
        if args[0] in COMMANDS:
            return COMMANDS[args[0]](args[1:])
        return lightning_main(args)
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        message = ' '.join(str(cause).split())
        print(f'torchgeo-stars: error: {message}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('torchgeo-stars: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
