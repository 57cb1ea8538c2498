"""The task's network: the model its hyper-parameters name, with its weights."""

from collections.abc import Mapping
from typing import Any

from ..models import SegmentationModel, build_model
from ..models.pretrained import (
    InputExpectation,
    ModalityWeights,
    load_pretrained_encoders,
    smp_weights_name,
)


def build_network(
    hparams: Mapping[str, Any], weights: ModalityWeights
) -> tuple[SegmentationModel, dict[str, InputExpectation]]:
    """Build the model of a task and load its pretrained encoder weights.

    Args:
        hparams: The task's hyper-parameters (``model``, ``modalities``,
            ``num_classes``, ``backbone``, ``shared_encoder``, ``translation``,
            ``model_kwargs``, ``weights_bands``, ``weights_in_channels``).
        weights: The task's ``weights`` (see
            :mod:`torchgeo_stars.models.pretrained`): a single smp name goes to
            the model's constructor, anything else is loaded into the specific
            encoders afterwards.

    Returns:
        The model, and what each pretrained modality's weights expect of its
        input (bands, normalisation).
    """
    kwargs: dict[str, Any] = dict(hparams['model_kwargs'] or {})
    if hparams['model'] == 'stars':
        kwargs.setdefault('shared_encoder', hparams['shared_encoder'])
        kwargs.setdefault('translation', hparams['translation'])
    model = build_model(
        hparams['model'],
        modalities=dict(hparams['modalities']),
        num_classes=hparams['num_classes'],
        backbone=hparams['backbone'],
        weights=smp_weights_name(weights),
        **kwargs,
    )
    expectations = load_pretrained_encoders(
        model,
        weights,
        hparams['backbone'],
        hparams['weights_bands'],
        hparams['weights_in_channels'],
    )
    return model, expectations
