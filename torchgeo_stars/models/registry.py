"""Building a model by name, for the task and the command line."""

from typing import Any, Literal

from torch import nn

from ..errors import ConfigurationError
from .baselines import EarlyFusion, ShaSpec
from .stars import STARS

ModelName = Literal['stars', 'early_fusion', 'shaspec']

#: Model name to its class.
MODELS: dict[str, type[nn.Module]] = {
    'stars': STARS,
    'early_fusion': EarlyFusion,
    'shaspec': ShaSpec,
}


def build_model(name: ModelName, **kwargs: Any) -> nn.Module:
    """Build a segmentation model by name.

    Args:
        name: ``'stars'``, ``'early_fusion'`` or ``'shaspec'``.
        **kwargs: Constructor arguments of that class (``modalities``,
            ``num_classes``, ``backbone`` ...).

    Returns:
        The model; its forward takes ``(inputs, available, dropped)`` and
        returns a :class:`~torchgeo_stars.models.SegmentationOutput`.

    Raises:
        ConfigurationError: If *name* is unknown or an argument does not
            belong to that model.
    """
    if name not in MODELS:
        raise ConfigurationError(
            f'unknown model {name!r}; choose one of {sorted(MODELS)}.'
        )
    try:
        return MODELS[name](**kwargs)
    except TypeError as error:
        raise ConfigurationError(f'model {name!r}: {error}') from error
