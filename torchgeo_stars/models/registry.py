"""Building a model by name, for the task and the command line."""

from typing import Any, Literal

from ..errors import ConfigurationError
from .base import SegmentationModel, to_channels_last
from .baselines import EarlyFusion, ShaSpec
from .stars import STARS

ModelName = Literal['stars', 'early_fusion', 'shaspec']

#: Model name to its class.
MODELS: dict[str, type[SegmentationModel]] = {
    'stars': STARS,
    'early_fusion': EarlyFusion,
    'shaspec': ShaSpec,
}


def build_model(name: ModelName, **kwargs: Any) -> SegmentationModel:
    """Build a segmentation model by name.

    Args:
        name: ``'stars'``, ``'early_fusion'`` or ``'shaspec'``.
        **kwargs: Constructor arguments of that class (``modalities``,
            ``num_classes``, ``backbone`` ...).

    Returns:
        The model, its weights channels-last (:func:`to_channels_last`); its
        forward takes ``(inputs, available, dropped)`` and returns a
        :class:`~torchgeo_stars.models.SegmentationOutput`.

    Raises:
        ConfigurationError: If *name* is unknown or an argument does not
            belong to that model.
    """
    if name not in MODELS:
        raise ConfigurationError(
            f'unknown model {name!r}; choose one of {sorted(MODELS)}.'
        )
    try:
        model = MODELS[name](**kwargs)
    except TypeError as error:
        raise ConfigurationError(f'model {name!r}: {error}') from error
    to_channels_last(model)
    return model
