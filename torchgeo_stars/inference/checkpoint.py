"""Loading a trained STARS model for inference.

:func:`load_predictor` is the single entry point the command line uses to turn
``--checkpoint FILE`` into everything :func:`~torchgeo_stars.inference.
predict_geotiff` needs. FILE is either a Lightning training checkpoint
(``.ckpt``, read by :func:`read_checkpoint` with ``torch.load(weights_only=
True)``, so no pickled code runs) or an inference model file written by
``torchgeo-stars export`` (:mod:`~torchgeo_stars.inference.model_file`,
safetensors); the file's first bytes tell which.
"""

import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets.normalization import coerce_statistics
from ..errors import ConfigurationError
from .model_file import is_model_file, load_model_weights, read_model_metadata


@dataclass(frozen=True)
class Predictor:
    """A trained model and what is needed to feed it and describe its output.

    Attributes:
        model: Module with ``forward(inputs: dict[str, Tensor], available:
            Tensor | None = None)`` returning a
            :class:`~torchgeo_stars.models.outputs.SegmentationOutput` (or the
            logits ``(B, K, H, W)`` directly).
        modalities: Modality name to band count, in the model's order.
        class_names: Name of each class, in class-index order.
        colors: RGB colour of each class (``0..255``), or None for defaults.
        statistics: Per-modality normalisation
            (:class:`~torchgeo_stars.datasets.ModalityStatistics` or any object
            with per-band ``mean`` and ``std``), or None for raw values.
        reader_options: Per-modality keyword arguments of the modality's raster
            class used in training (e.g. ``{'sar': {'to_db': True}}``).

    .. versionadded:: 0.1
    """

    model: nn.Module
    modalities: dict[str, int]
    class_names: list[str]
    colors: Sequence[tuple[int, int, int]] | None = None
    statistics: Mapping[str, Any] | None = field(default=None)
    reader_options: Mapping[str, Mapping[str, Any]] | None = field(default=None)


def _not_stars(path: Path, reason: str) -> ConfigurationError:
    """The error for a file that is not a STARS checkpoint."""
    return ConfigurationError(
        f'checkpoint {path} is not a STARS checkpoint ({reason}); give a .ckpt '
        'file saved by STARSSegmentationTask training (torchgeo-stars fit).'
    )


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a Lightning checkpoint dictionary without running pickled code.

    Args:
        path: The checkpoint file.

    Returns:
        The checkpoint dictionary (with ``state_dict`` and ``hyper_parameters``).

    Raises:
        FileNotFoundError: If *path* does not exist.
        ConfigurationError: If the file is not a Lightning checkpoint that
            ``torch.load(weights_only=True)`` can read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist.')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Unsupported global' in str(error):
            raise _not_stars(
                path,
                'it holds Python objects other than tensors and plain values, and '
                'loading them would run their code: refused',
            ) from error
        raise _not_stars(path, f'torch cannot load it safely: {error}') from error
    except Exception as error:
        # Arbitrary bytes fail in many ways inside torch.load (unpickling,
        # zip, EOF, Unicode, value errors): all mean "not a checkpoint".
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise _not_stars(path, f'torch cannot load it safely: {first_line}') from error
    if not isinstance(checkpoint, dict):
        raise _not_stars(path, f'it holds a {type(checkpoint).__name__}, not a dict')
    missing = [k for k in ('state_dict', 'hyper_parameters') if k not in checkpoint]
    if missing:
        raise _not_stars(path, f'it has no {" / ".join(missing)}')
    return checkpoint


def task_arguments(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The task's constructor arguments among saved hyper-parameters.

    Leaves out ``weights`` (the file holds the trained weights: nothing to
    download) and the entries LightningCLI adds for itself (``_class_path``,
    ``_instantiator``: names starting with ``_``).

    Args:
        hparams: The saved hyper-parameters.

    Returns:
        A new dictionary for ``STARSSegmentationTask(**arguments)``.
    """
    return {
        key: value
        for key, value in hparams.items()
        if key != 'weights' and not str(key).startswith('_')
    }


def _build_task(hparams: Mapping[str, Any], path: Path) -> Any:
    """Rebuild a STARSSegmentationTask from its hyper-parameters.

    The task is built without pretrained weights (the file holds the trained
    ones).

    Args:
        hparams: The saved hyper-parameters.
        path: Their file, for messages.

    Returns:
        The task.

    Raises:
        ConfigurationError: If they are not a STARSSegmentationTask's.
    """
    from ..tasks.segmentation import STARSSegmentationTask

    arguments = task_arguments(hparams)
    if 'modalities' not in arguments or 'num_classes' not in arguments:
        raise _not_stars(path, 'its hyper-parameters have no modalities / num_classes')
    try:
        return STARSSegmentationTask(**arguments)
    except TypeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise _not_stars(
            path, f'its hyper-parameters do not fit the task: {first_line}'
        ) from error


def predictor_from_checkpoint(checkpoint: Mapping[str, Any], path: Path) -> Predictor:
    """Build the predictor from a ``STARSSegmentationTask`` checkpoint.

    The task is rebuilt from the saved hyper-parameters and the weights loaded;
    the normalisation statistics and raster reading options saved by the task
    come along.

    Args:
        checkpoint: The dictionary :func:`read_checkpoint` returned.
        path: Its file, for messages.

    Returns:
        The predictor.

    Raises:
        ConfigurationError: When the hyper-parameters or weights are not a
            STARSSegmentationTask's.
    """
    from ..tasks.checkpoint import CHECKPOINT_KEY

    task = _build_task(checkpoint['hyper_parameters'], path)
    try:
        task.load_state_dict(checkpoint['state_dict'])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise _not_stars(
            path, f'its content does not fit the task: {first_line}'
        ) from error
    extra = checkpoint.get(CHECKPOINT_KEY) or {}
    return Predictor(
        model=task.model,
        modalities=dict(task.hparams['modalities']),
        class_names=task.class_names,
        colors=task.class_colors,
        statistics=coerce_statistics(extra.get('statistics')) or None,
        reader_options=extra.get('reader_options'),
    )


def predictor_from_model_file(path: str | os.PathLike[str]) -> Predictor:
    """Build the predictor from a file written by ``torchgeo-stars export``.

    Args:
        path: The model file.

    Returns:
        The predictor.

    Raises:
        ConfigurationError: If the file is not a torchgeo-stars model file or
            its weights do not fit its hyper-parameters.
    """
    path = Path(path)
    document = read_model_metadata(path)
    task = _build_task(document['hyper_parameters'], path)
    load_model_weights(path, task.model)
    colors = document.get('class_colors')
    return Predictor(
        model=task.model,
        modalities={str(k): int(v) for k, v in document['modalities'].items()},
        class_names=[str(name) for name in document['class_names']],
        colors=[(int(r), int(g), int(b)) for r, g, b in colors] if colors else None,
        statistics=coerce_statistics(document.get('statistics')) or None,
        reader_options=document.get('reader_options'),
    )


def load_predictor(path: str | os.PathLike[str]) -> Predictor:
    """Load everything inference needs from a checkpoint or a model file.

    Args:
        path: A ``.ckpt`` file written by STARSSegmentationTask training, or a
            model file written by ``torchgeo-stars export``.

    Returns:
        The model (in eval mode, on the CPU) and its metadata.

    Raises:
        FileNotFoundError: If *path* does not exist.
        ConfigurationError: If it is neither.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint {path} does not exist.')
    if is_model_file(path):
        predictor = predictor_from_model_file(path)
    else:
        predictor = predictor_from_checkpoint(read_checkpoint(path), path)
    predictor.model.eval()
    return predictor
