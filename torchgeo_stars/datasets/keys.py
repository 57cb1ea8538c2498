"""The sample format: the one definition of every key a sample or batch carries.

Every dataset, datamodule, model wrapper, task and inference path of the
package reads and writes samples through these names, so the format is
defined here once:

* ``image_<modality>``: float32 image of one modality, (C, H, W) in a sample
  and (B, C, H, W) in a batch (:func:`image_key`);
* ``mask``: integer labels, (H, W) or (B, H, W) (:data:`MASK`);
* ``available``: bool flags, one per modality in the order the dataset
  declares (:data:`AVAILABLE`);
* ``bounds`` and ``transform``: the window's georeferencing, as TorchGeo puts
  them in its samples (:data:`BOUNDS`, :data:`TRANSFORM`).

Modality names become part of the keys, so their one check lives here too
(:func:`check_modalities`).

.. versionadded:: 0.1
"""

import re
from collections.abc import Iterable, Mapping

from ..errors import ConfigurationError

#: Valid modality names: letters, digits and underscores.
MODALITY_NAME = re.compile(r'^\w+$')

#: Prefix of the sample keys holding a modality's image.
IMAGE_PREFIX = 'image_'

#: Key of the labels.
MASK = 'mask'

#: Key of the per-modality availability flags.
AVAILABLE = 'available'

#: Key of the window's bounds (TorchGeo's ``bounds``).
BOUNDS = 'bounds'

#: Key of the window's affine transform (TorchGeo's ``transform``).
TRANSFORM = 'transform'

#: Keys that every dataset of an intersection shares; kept once.
SHARED_KEYS = (BOUNDS, TRANSFORM)


def image_key(modality: str) -> str:
    """Sample key of a modality's image, e.g. ``image_optical``.

    Args:
        modality: modality name.

    Returns:
        ``'image_<modality>'``.
    """
    return IMAGE_PREFIX + modality


def modality_of(key: str) -> str | None:
    """Modality whose image a sample key holds.

    Args:
        key: any sample key.

    Returns:
        The modality name for an ``image_<modality>`` key, else None.
    """
    if key.startswith(IMAGE_PREFIX) and len(key) > len(IMAGE_PREFIX):
        return key[len(IMAGE_PREFIX) :]
    return None


#: Key of a predicted class map (TorchGeo's ``prediction``), shown by ``plot()``.
PREDICTION = 'prediction'


def check_modalities(
    modalities: Mapping[str, int] | Iterable[str], owner: str, minimum: int = 1
) -> None:
    """The one check of a list of modalities (or modality name to band count).

    Args:
        modalities: Modality names, or names to band counts.
        owner: Who was given them (a class, function or argument name), for
            messages.
        minimum: Fewest modalities accepted.

    Raises:
        ConfigurationError: If there are fewer than *minimum* modalities, a
            name is not made of letters, digits and underscores, or a band
            count is not a positive integer.
    """
    names = list(modalities)
    if len(names) < minimum:
        if minimum == 1:
            raise ConfigurationError(f'{owner}: give at least one modality.')
        raise ConfigurationError(
            f'{owner} needs at least {minimum} modalities, got {names}.'
        )
    bad = [name for name in names if not MODALITY_NAME.fullmatch(str(name))]
    if bad:
        raise ConfigurationError(
            f'{owner}: modality names {bad} are not valid; use letters, digits and '
            'underscores.'
        )
    if isinstance(modalities, Mapping):
        for name, bands in modalities.items():
            if isinstance(bands, bool) or not isinstance(bands, int) or bands < 1:
                raise ConfigurationError(
                    f'{owner}: modality {name!r} must have a positive band count, '
                    f'got {bands!r}.'
                )
