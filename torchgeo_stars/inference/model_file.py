"""The inference model file: a trained model in one safetensors file.

``torchgeo-stars export CKPT OUT.safetensors`` (:mod:`torchgeo_stars.inference.
export`) writes one file in the `safetensors <https://huggingface.co/docs/
safetensors>`_ format:

* its tensors are the model's weights (``task.model.state_dict()``), without the
  optimizer state, metric states and loss buffers a training checkpoint holds;
* its header's ``__metadata__`` has one entry, ``torchgeo_stars``, a JSON
  document with everything else inference needs::

      {"format": "torchgeo-stars-model", "format_version": 1,
       "package_version": "0.1.0", "task": "STARSSegmentationTask",
       "hyper_parameters": {...},       # the task's, to rebuild the network
       "modalities": {"optical": 4, "sar": 2, "dsm": 1},
       "class_names": [...], "class_colors": [[r, g, b], ...],
       "statistics": {"sar": {"mean": [...], "std": [...], "bands": [...]}, ...},
       "reader_options": {"sar": {"to_db": true}, ...},
       "weights_dtype": "float32"}

One file is simpler to share and cannot lose a part; any safetensors reader
(``safetensors.safe_open(path, 'pt').metadata()``) shows the JSON. Reading it
never runs pickled code.
"""

import copy
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ..errors import ConfigurationError

#: Value of the ``format`` field.
MODEL_FORMAT = 'torchgeo-stars-model'

#: Version of the layout described in the module docstring.
FORMAT_VERSION = 1

#: Key of the JSON document in the safetensors header's metadata.
METADATA_KEY = 'torchgeo_stars'

#: Suggested file name ending.
MODEL_SUFFIX = '.safetensors'

#: Storage types of the weights ``export`` can write.
WEIGHT_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


def is_model_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file looks like a safetensors file (not a torch checkpoint).

    A safetensors file starts with the little-endian 64-bit length of its JSON
    header, then the header, which starts with ``{``; a torch checkpoint is a
    zip archive (``PK``) or a pickle.

    Args:
        path: An existing file.

    Returns:
        True if the first bytes are those of a safetensors file.
    """
    with open(path, 'rb') as file:
        head = file.read(9)
        size = os.fstat(file.fileno()).st_size
    if len(head) < 9 or head[8:9] != b'{':
        return False
    header_length = int.from_bytes(head[:8], 'little')
    return 8 + header_length <= size


def _not_a_model(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f'model file {path} is not a torchgeo-stars model ({reason}); give a .ckpt '
        'training checkpoint or a file written by torchgeo-stars export.'
    )


def write_model_file(
    path: str | os.PathLike[str],
    model: nn.Module,
    metadata: Mapping[str, Any],
    dtype: str = 'float32',
) -> Path:
    """Write a model's weights and its metadata as one safetensors file.

    The file is written under a temporary name in the same folder and renamed
    at the end, so an interrupted export leaves no partial file at *path*.

    Args:
        path: The file to write (replaced if it exists).
        model: The network; its ``state_dict`` is saved.
        metadata: The JSON-serialisable fields of the module docstring, less
            ``format``, ``format_version`` and ``weights_dtype``.
        dtype: ``'float32'`` or ``'float16'``: how floating-point weights
            are stored (they are converted back to the network's type when
            read).

    Returns:
        The path written.

    Raises:
        ConfigurationError: For an unknown *dtype*, metadata that is not
            JSON-serialisable, or weights too large for float16.
    """
    path = Path(path)
    if dtype not in WEIGHT_DTYPES:
        raise ConfigurationError(
            f'weights dtype {dtype!r} is not supported; use one of '
            f'{sorted(WEIGHT_DTYPES)}.'
        )
    document = {
        'format': MODEL_FORMAT,
        'format_version': FORMAT_VERSION,
        **metadata,
        'weights_dtype': dtype,
    }
    try:
        text = json.dumps(document, allow_nan=True)
    except TypeError as error:
        raise ConfigurationError(
            f'the model metadata cannot be written as JSON ({error}).'
        ) from error
    target = WEIGHT_DTYPES[dtype]
    if target != torch.float32:
        model = _converted_copy(model, target)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.partial')
    try:
        save_model(model, str(temporary), metadata={METADATA_KEY: text})
        os.chmod(temporary, 0o666 & ~_umask())  # as a plain open() would
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _umask() -> int:
    """The process's file mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _converted_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of *model* with floating-point tensors converted to *dtype*.

    Raises:
        ConfigurationError: If a value does not fit the smaller type.
    """
    limit = torch.finfo(dtype).max
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and tensor.numel():
            largest = float(tensor.detach().abs().max())
            if math.isfinite(largest) and largest > limit:
                raise ConfigurationError(
                    f'weight {name} holds {largest:.3g}, more than {dtype} can '
                    'store; export with --dtype float32.'
                )
    return copy.deepcopy(model).to(dtype)


def read_model_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the JSON document of a model file.

    Args:
        path: A file written by :func:`write_model_file`.

    Returns:
        The document (see the module docstring).

    Raises:
        ConfigurationError: If the file is not a safetensors file with a
            torchgeo-stars document of a known version.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework='pt') as file:
            header = file.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise _not_a_model(path, f'safetensors cannot read it: {error}') from error
    if METADATA_KEY not in header:
        raise _not_a_model(path, f'its header has no {METADATA_KEY!r} metadata')
    try:
        document = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise _not_a_model(path, f'its metadata is not JSON: {error}') from error
    if not isinstance(document, dict) or document.get('format') != MODEL_FORMAT:
        raise _not_a_model(path, f'its metadata format is not {MODEL_FORMAT!r}')
    version = document.get('format_version')
    if version != FORMAT_VERSION:
        raise ConfigurationError(
            f'model file {path} has format version {version}, but this '
            f'torchgeo-stars reads version {FORMAT_VERSION}; export it again with '
            'this version.'
        )
    missing = [
        key
        for key in ('hyper_parameters', 'modalities', 'class_names')
        if key not in document
    ]
    if missing:
        raise _not_a_model(path, f'its metadata has no {" / ".join(missing)}')
    return document


def load_model_weights(path: str | os.PathLike[str], model: nn.Module) -> None:
    """Load a model file's weights into a network of the same architecture.

    Args:
        path: A file written by :func:`write_model_file`.
        model: The network, built from the file's hyper-parameters.

    Raises:
        ConfigurationError: If the weights do not fit the network.
    """
    try:
        load_model(model, str(path), strict=True, device='cpu')
    except (RuntimeError, SafetensorError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise _not_a_model(
            Path(path), f'its weights do not fit the network: {first_line}'
        ) from error
