"""Checks on output paths shared by the commands that write rasters.

:func:`check_outputs_are_not_inputs` refuses to write over a file the command
reads: with ``--overwrite`` the input would otherwise be replaced by the
result, and without it the message "already exists" would not say why that
file is special. Commands call it before they open anything for writing.
"""

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigurationError


def same_file(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file.

    Existing files are compared by device and inode
    (:func:`os.path.samefile`), so symbolic links, hard links and different
    spellings of one path are recognised; otherwise the fully resolved paths
    are compared.

    Args:
        first: A path.
        second: Another path.

    Returns:
        True if both name the same file.
    """
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return Path(first).resolve() == Path(second).resolve()


def check_outputs_are_not_inputs(
    outputs: Iterable[str | os.PathLike[str]], inputs: Iterable[str | os.PathLike[str]]
) -> None:
    """Refuse to write a file that is also read.

    Args:
        outputs: Files the command will write.
        inputs: Files the command reads (already expanded from folders).

    Raises:
        ConfigurationError: If an output is one of the inputs, whether or not
            overwriting is allowed; the input is left untouched.
    """
    input_list = [Path(path) for path in inputs]
    for output in outputs:
        for source in input_list:
            if same_file(output, source):
                raise ConfigurationError(
                    f'output {output} is also an input ({source}); writing it would '
                    'destroy the input. Give another output path.'
                )
