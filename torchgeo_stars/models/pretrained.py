"""Pretrained weights for the specific encoders, one choice per modality.

TorchGeo's tasks take ``weights`` as a :class:`~torchvision.models.WeightsEnum`
(e.g. ``ResNet50_Weights.SENTINEL1_GRD_MOCO``), its name as a string, a path
to a checkpoint or state dict, or ``True`` for the backbone's ImageNet weights.
A STARS model has one encoder per modality, so here each modality can start
from weights made for its sensor: ``{'optical':
'ResNet18_Weights.SENTINEL2_ALL_MOCO', 'sar': None, 'dsm': None}``.

Loading is band-aware. TorchGeo weights record the bands they were trained on
(``meta['bands']``); when the modality's band names are among them (Sentinel-2
B2, B3, B4, B8 from 13-band weights), the first convolution keeps exactly the
input channels of those bands, in the modality's order. Band names match
case-insensitively and without leading zeros (``B02`` is ``B2``, ``B8a`` is
``B8A``). When the band count differs and the names do not say which bands to
keep, loading stops with one line naming the modality, the weights and both
band lists, unless ``in_channels='adapt'`` asks for timm's
:func:`~timm.models.adapt_input_conv` (channels repeated and rescaled, or
summed for one band).

The weights also expect their inputs normalised as in pretraining (e.g. the
SSL4EO Sentinel-2 weights divide reflectances by 10000). :class:`InputExpectation`
records what each loaded encoder expects, from the ``Normalize`` steps of the
weights' ``transforms``, and :func:`check_data_against_weights` compares it
with the datamodule's band names and normalisation statistics.

.. versionadded:: 0.1
"""

import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

import torch
import torchgeo.models
from timm.models import adapt_input_conv
from torch import Tensor, nn
from torchgeo.models import get_model_weights, get_weight
from torchvision.models._api import WeightsEnum

from ..errors import ConfigurationError
from .encoders import EncoderPyramid

# The aliases below are plain unions (not ``type`` statements): jsonargparse,
# which reads the task's signature for LightningCLI, does not look inside a
# ``type`` alias and would parse a mapping as a string.

#: One modality's weights: a TorchGeo ``WeightsEnum``, its name, a file, an
#: smp weights name (``'imagenet'``), ``True`` (ImageNet) or ``None``/``False``
#: (random initialisation).
WeightsSpec: TypeAlias = WeightsEnum | str | bool | None  # noqa: UP040

#: The ``weights`` argument: one value for every specific encoder, or one per
#: modality (modalities left out start from random weights).
ModalityWeights: TypeAlias = WeightsSpec | dict[str, WeightsSpec]  # noqa: UP040

#: What to do when a modality's bands cannot be matched to the weights' by
#: name and their counts differ: stop (``'match'``) or adapt the first
#: convolution with timm's :func:`~timm.models.adapt_input_conv`.
InChannelsMode: TypeAlias = Literal['match', 'adapt']  # noqa: UP040

#: Modules of a classification head, which an encoder does not have.
_HEAD_NAMES = frozenset({'fc', 'head', 'classifier', 'last_linear'})

#: File name endings that mark a string as a path to weights.
_FILE_SUFFIXES = ('.pt', '.pth', '.ckpt', '.bin', '.tar')


@dataclass(frozen=True)
class PretrainedWeights:
    """A state dict and what its network was trained on.

    Attributes:
        name: How the user named them (for messages).
        state_dict: Parameter name to tensor.
        bands: Band names of the pretraining inputs, or None if unknown.
        mean: Per-band (or one broadcast) mean of the pretraining
            normalisation, or None if the weights do not record it.
        std: The matching standard deviations.

    .. versionadded:: 0.1
    """

    name: str
    state_dict: dict[str, Tensor]
    bands: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class InputExpectation:
    """What a loaded encoder expects of its modality's inputs.

    Attributes:
        weights: The weights' name.
        bands: The bands its input channels were pretrained on, in input
            order, or None if unknown (adapted channels, unnamed bands).
        mean: Per input channel, the pretraining normalisation's mean, or
            None if the weights do not record it.
        std: The matching standard deviations.

    .. versionadded:: 0.1
    """

    weights: str
    bands: tuple[str, ...] | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


def canonical_band(name: str) -> str:
    """Band name for matching: upper case, no leading zeros in the number.

    Args:
        name: A band name (``'B02'``, ``'B8a'``, ``'VV'`` ...).

    Returns:
        ``'B2'``, ``'B8A'``, ``'VV'`` ...
    """
    return re.sub(r'^([A-Z_]*?)0+(\d)', r'\1\2', name.strip().upper())


def _architecture(backbone: str) -> str:
    """The timm / torchvision architecture name of an smp encoder name."""
    return backbone.removeprefix('tu-')


def _looks_like_file(spec: str) -> bool:
    """Whether a string names a file rather than a registered weights name."""
    return os.sep in spec or '/' in spec or spec.endswith(_FILE_SUFFIXES)


def _is_torchgeo_name(spec: str) -> bool:
    """Whether a string is spelled like a TorchGeo weights name."""
    return re.fullmatch(r'\w+_Weights\.\w+', spec) is not None


def smp_weights_name(spec: ModalityWeights) -> str | None:
    """The segmentation-models-pytorch weights name that *spec* stands for.

    ``True`` is ImageNet, as in TorchGeo's tasks. Only a single value that is
    neither a file nor a TorchGeo weights name is an smp name; a model built
    with it initialises every encoder (the shared one too) as
    segmentation-models-pytorch does.

    Args:
        spec: The ``weights`` argument.

    Returns:
        The smp name, or None when *spec* is not a single smp name.
    """
    if spec is True:
        return 'imagenet'
    if (
        isinstance(spec, str)
        and not isinstance(spec, WeightsEnum)
        and not os.path.exists(spec)
        and not _looks_like_file(spec)
        and not _is_torchgeo_name(spec)
    ):
        return spec
    return None


def _available(backbone: str) -> str:
    """The TorchGeo weights for *backbone*, for messages."""
    try:
        names = [str(weights) for weights in get_model_weights(_architecture(backbone))]
    except KeyError:
        return f'TorchGeo has no weights for {backbone!r}'
    return f'TorchGeo weights for {backbone!r}: {", ".join(names)}'


def _normalization(
    weights: WeightsEnum,
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The overall ``(x - mean) / std`` of the ``Normalize`` steps in *weights*.

    Args:
        weights: TorchGeo weights.

    Returns:
        Per-band (or one broadcast) mean and std, or None if the transforms
        hold no normalisation.
    """
    transforms = weights.transforms
    steps = [
        module
        for module in (
            transforms.modules() if isinstance(transforms, nn.Module) else []
        )
        if type(module).__name__ == 'Normalize'
    ]
    if not steps:
        return None
    mean = torch.zeros(1, dtype=torch.float64)
    std = torch.ones(1, dtype=torch.float64)
    for step in steps:
        # (((x - m1) / s1) - m2) / s2 = (x - (m1 + m2 s1)) / (s1 s2)
        step_mean = torch.tensor(step.mean, dtype=torch.float64).flatten()
        step_std = torch.tensor(step.std, dtype=torch.float64).flatten()
        mean, std = mean + step_mean * std, std * step_std
    return tuple(mean.tolist()), tuple(std.tolist())


def torchgeo_weights(weights: WeightsEnum, backbone: str) -> PretrainedWeights:
    """Fetch TorchGeo weights (from the torch hub cache, else downloaded).

    Args:
        weights: A TorchGeo ``WeightsEnum`` member.
        backbone: The encoder name they are loaded into.

    Returns:
        The state dict, bands and normalisation.

    Raises:
        ConfigurationError: If the weights belong to another architecture.
    """
    model = weights.meta.get('model')
    if model is not None and model != _architecture(backbone):
        raise ConfigurationError(
            f'weights {weights} are for a {model!r} but backbone is {backbone!r}; '
            f'set backbone: {model} or choose weights for {backbone!r} '
            f'({_available(backbone)}).'
        )
    state_dict = weights.get_state_dict(
        progress=True, check_hash=True, weights_only=True
    )
    bands = weights.meta.get('bands')
    normalization = _normalization(weights)
    return PretrainedWeights(
        name=str(weights),
        state_dict=dict(state_dict),
        bands=tuple(str(b) for b in bands) if bands else None,
        mean=normalization[0] if normalization else None,
        std=normalization[1] if normalization else None,
    )


def file_weights(path: str) -> PretrainedWeights:
    """Read a state dict, or the ``state_dict`` of a Lightning checkpoint.

    Args:
        path: The file.

    Returns:
        The state dict (bands and normalisation unknown).

    Raises:
        ConfigurationError: If the file is missing or holds no state dict.
    """
    if not os.path.isfile(path):
        raise ConfigurationError(
            f'weights file {path!r} does not exist; give the path of a state dict '
            'or checkpoint, or a TorchGeo weights name.'
        )
    try:
        content = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise ConfigurationError(
            f'weights file {path!r} cannot be read by torch.load: {error}'
        ) from error
    if isinstance(content, dict) and isinstance(content.get('state_dict'), dict):
        content = content['state_dict']
    if not isinstance(content, dict) or not all(
        isinstance(value, Tensor) for value in content.values()
    ):
        raise ConfigurationError(
            f'weights file {path!r} holds no state dict (a mapping of parameter '
            'names to tensors, or a checkpoint with one under "state_dict").'
        )
    return PretrainedWeights(name=path, state_dict=dict(content))


def resolve_weights(spec: WeightsSpec, backbone: str) -> PretrainedWeights | str | None:
    """Turn one modality's weights argument into something to load.

    Args:
        spec: A ``WeightsEnum``, its name, a file, an smp weights name,
            ``True`` (ImageNet), or ``None``/``False``.
        backbone: The encoder name.

    Returns:
        Loaded weights, an smp weights name, or None for random weights.

    Raises:
        ConfigurationError: If a name is not a registered TorchGeo weights
            name or a file does not exist.
    """
    if spec is None or spec is False:
        return None
    if spec is True:
        return 'imagenet'
    if isinstance(spec, WeightsEnum):
        return torchgeo_weights(spec, backbone)
    if not isinstance(spec, str):
        raise ConfigurationError(
            f'weights must be a TorchGeo weights name, a file, an smp weights name, '
            f'true or null, got {spec!r}.'
        )
    if os.path.exists(spec) or _looks_like_file(spec):
        return file_weights(spec)
    if _is_torchgeo_name(spec):
        try:
            weights = _torchgeo_member(spec)
        except ValueError as error:
            raise ConfigurationError(
                f'weights {spec!r} is not a TorchGeo weights name; '
                f'{_available(backbone)}.'
            ) from error
        return torchgeo_weights(weights, backbone)
    return spec


def _torchgeo_member(spec: str) -> WeightsEnum:
    """The TorchGeo weights named *spec* (``'ResNet50_Weights.SENTINEL1_GRD_MOCO'``).

    Looks the enum class up in :mod:`torchgeo.models` and the member by name,
    so aliases resolve too (:func:`torchgeo.models.get_weight` matches only
    a member's canonical name, and ``SENTINEL1_GRD_MOCO`` is an alias).

    Raises:
        ValueError: If no TorchGeo weights have that name.
    """
    class_name, _, member = spec.partition('.')
    enum: Any = getattr(torchgeo.models, class_name, None)
    is_weights = isinstance(enum, type) and issubclass(enum, WeightsEnum)
    members: dict[str, WeightsEnum] = (
        dict(getattr(enum, '__members__', {})) if is_weights else {}
    )
    if member in members:
        return members[member]
    return get_weight(spec)


def _module_name(key: str) -> str:
    """The name of the module a state-dict key belongs to (``'fc'`` of ``'model.fc.bias'``)."""
    parts = key.split('.')
    return parts[-2] if len(parts) > 1 else ''


def _is_batch_counter(key: str) -> bool:
    """Whether *key* is a batch-norm batch counter (old checkpoints lack them)."""
    return key.endswith('.num_batches_tracked')


def _first_conv_key(encoder: nn.Module) -> str:
    """State-dict key of the encoder's first convolution's weight."""
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Conv2d):
            return f'{name}.weight'
    raise ConfigurationError(
        f'{type(encoder).__name__} has no convolution to load input channels into.'
    )


def _align_keys(
    state_dict: Mapping[str, Tensor], expected: Sequence[str], modality: str, name: str
) -> dict[str, Tensor]:
    """Rename *state_dict* so its keys are the encoder's.

    Keys may carry a prefix the encoder lacks (``model.encoder.`` in a
    checkpoint) or lack one it has (``model.`` of smp's timm encoders). Every
    prefix that turns some key into the encoder's first key is tried; one
    covering all of the encoder's keys is used. When several do (a STARS
    checkpoint has one encoder per modality), the one naming *modality* wins.

    Args:
        state_dict: The weights.
        expected: The encoder's keys, in order.
        modality: The modality (to choose among several encoders).
        name: The weights' name, for messages.

    Returns:
        The renamed state dict (unchanged if nothing covers the encoder).

    Raises:
        ConfigurationError: If several encoders in *state_dict* fit and none
            is *modality*'s.
    """
    first = expected[0]
    wanted = {key for key in expected if not _is_batch_counter(key)}
    candidates: list[tuple[str, str]] = [('', '')]
    for key in state_dict:
        if key.endswith(first):
            candidates.append((key[: -len(first)], ''))
        elif first.endswith(key):
            candidates.append(('', first[: -len(key)]))
    fitting: dict[str, dict[str, Tensor]] = {}
    for strip, add in dict.fromkeys(candidates):
        renamed = {
            add + key[len(strip) :]: value
            for key, value in state_dict.items()
            if key.startswith(strip)
        }
        if wanted <= renamed.keys():
            fitting[strip or add] = renamed
    if not fitting:
        return dict(state_dict)
    if len(fitting) == 1:
        return next(iter(fitting.values()))
    for prefix, renamed in fitting.items():
        if modality in prefix.split('.'):
            return renamed
    raise ConfigurationError(
        f"modality '{modality}': weights {name} hold several encoders "
        f'({sorted(fitting)}) and none is named {modality!r}; save the one to use '
        'as its own state dict.'
    )


def _match_input_channels(
    weight: Tensor,
    in_channels: int,
    bands: Sequence[str] | None,
    pretrained: PretrainedWeights,
    modality: str,
    mode: InChannelsMode,
) -> tuple[Tensor, list[int] | None]:
    """Fit the first convolution's pretrained weight to the modality's bands.

    Args:
        weight: Pretrained ``(O, C_w, k, k)`` weight.
        in_channels: The modality's band count.
        bands: The modality's band names, or None.
        pretrained: The weights (their bands and name).
        modality: The modality, for messages.
        mode: ``'match'`` or ``'adapt'``.

    Returns:
        The ``(O, in_channels, k, k)`` weight and the pretrained channel of
        each input channel (None when adapted).

    Raises:
        ConfigurationError: If the counts differ, the names do not say which
            channels to keep and *mode* is ``'match'``.
    """
    weights_channels = int(weight.shape[1])
    known = pretrained.bands is not None and len(pretrained.bands) == weights_channels
    if bands is not None and len(bands) != in_channels:
        raise ConfigurationError(
            f'weights_bands.{modality} lists {len(bands)} bands {list(bands)} but '
            f"modality '{modality}' has {in_channels}; list one name per band."
        )
    if known and bands is not None:
        assert pretrained.bands is not None
        index = {canonical_band(b): i for i, b in enumerate(pretrained.bands)}
        if all(canonical_band(b) in index for b in bands):
            channels = [index[canonical_band(b)] for b in bands]
            return weight[:, channels].clone(), channels
    if weights_channels == in_channels:
        if known and bands is None:
            warnings.warn(
                f"modality '{modality}': {pretrained.name} were trained on bands "
                f'{list(pretrained.bands or ())}; without weights_bands.{modality} '
                'the input channels are assumed to be these bands in this order.',
                UserWarning,
                stacklevel=4,
            )
        elif bands is not None and pretrained.bands is not None:
            warnings.warn(
                f"modality '{modality}': bands {list(bands)} are not the bands "
                f'{pretrained.name} were trained on ({list(pretrained.bands)}); '
                'the input channels are used by position.',
                UserWarning,
                stacklevel=4,
            )
        return weight, list(range(in_channels))
    if mode == 'adapt':
        adapted: Tensor = adapt_input_conv(
            in_channels, weight, base_chans=weights_channels
        )
        return adapted, None
    raise ConfigurationError(
        f"modality '{modality}': {pretrained.name} take {weights_channels} bands "
        f'{list(pretrained.bands) if pretrained.bands else "(names unknown)"} but '
        f'the modality has {in_channels} '
        f'{list(bands) if bands is not None else "(names unknown: set weights_bands)"}'
        "; name the modality's bands with weights_bands if they are among the "
        "weights', or set weights_in_channels: adapt."
    )


def _per_channel(
    values: tuple[float, ...] | None, channels: list[int] | None, count: int
) -> tuple[float, ...] | None:
    """The normalisation values of the selected input channels."""
    if values is None:
        return None
    if len(values) == 1:
        return values * count
    if channels is None:
        return None
    return tuple(values[c] for c in channels)


def load_encoder_weights(
    encoder: nn.Module,
    pretrained: PretrainedWeights,
    modality: str,
    bands: Sequence[str] | None = None,
    mode: InChannelsMode = 'match',
) -> InputExpectation:
    """Load weights into one encoder, strictly, with band-aware input channels.

    Unlike :func:`torchgeo.trainers.utils.load_state_dict`, which drops a
    first convolution of another width and loads the rest leniently, this
    keeps the pretrained channels of the modality's bands and fails on any
    other difference: a silently half-loaded encoder is worse than an error.

    Args:
        encoder: A segmentation-models-pytorch encoder.
        pretrained: The weights.
        modality: The modality the encoder reads, for messages.
        bands: The modality's band names, in input order, or None.
        mode: ``'adapt'`` to adapt the first convolution when the bands cannot
            be matched by name and the band counts differ.

    Returns:
        What the encoder now expects of its inputs.

    Raises:
        ConfigurationError: If the weights' keys or shapes are not the
            encoder's, or the input channels cannot be matched.
    """
    expected = list(encoder.state_dict())
    state_dict = _align_keys(pretrained.state_dict, expected, modality, pretrained.name)
    state_dict = {
        key: value
        for key, value in state_dict.items()
        if key in expected or _module_name(key) not in _HEAD_NAMES
    }
    conv_key = _first_conv_key(encoder)
    count = int(encoder.get_parameter(conv_key).shape[1])
    channels: list[int] | None = None
    selected: tuple[str, ...] | None = None
    if conv_key in state_dict and state_dict[conv_key].ndim == 4:
        weights_channels = int(state_dict[conv_key].shape[1])
        state_dict[conv_key], channels = _match_input_channels(
            state_dict[conv_key], count, bands, pretrained, modality, mode
        )
        names = pretrained.bands
        if (
            channels is not None
            and names is not None
            and len(names) == weights_channels
        ):
            selected = tuple(names[c] for c in channels)
    missing = [
        key for key in expected if key not in state_dict and not _is_batch_counter(key)
    ]
    unexpected = [key for key in state_dict if key not in set(expected)]
    if missing or unexpected:
        raise ConfigurationError(
            f"modality '{modality}': weights {pretrained.name} do not fit its "
            f'{type(encoder).__name__}: {len(missing)} missing keys '
            f'{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}; '
            'choose weights made for this backbone.'
        )
    try:
        nn.Module.load_state_dict(encoder, state_dict, strict=True)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[-1].strip()
        raise ConfigurationError(
            f"modality '{modality}': weights {pretrained.name} do not fit its "
            f'{type(encoder).__name__}: {detail} Choose weights made for this '
            'backbone.'
        ) from error
    return InputExpectation(
        weights=pretrained.name,
        bands=selected,
        mean=_per_channel(pretrained.mean, channels, count),
        std=_per_channel(pretrained.std, channels, count),
    )


def _encoders(model: nn.Module) -> dict[str, EncoderPyramid]:
    """The model's specific encoders by modality (early fusion: its one)."""
    specific = getattr(model, 'specific_encoders', None)
    if specific is not None:
        return {
            name: cast(EncoderPyramid, encoder)
            for name, encoder in specific.encoders.items()
        }
    encoder = getattr(model, 'encoder', None)
    if isinstance(encoder, EncoderPyramid):
        return {'+'.join(getattr(model, 'modalities', {}) or ['input']): encoder}
    raise ConfigurationError(
        f'{type(model).__name__} has no specific encoders to load weights into.'
    )


def _smp_state_dict(
    pyramid: EncoderPyramid, backbone: str, name: str
) -> PretrainedWeights:
    """The weights an smp encoder like *pyramid* gets from smp's *name* weights.

    segmentation-models-pytorch builds the encoder with those weights (and
    its own first-convolution patch for other band counts than 3), exactly
    as a model built with ``weights=name`` would be initialised.
    """
    smp_encoder = pyramid.encoder
    depth = len(cast(Sequence[int], smp_encoder.out_channels)) - 1
    in_channels = int(smp_encoder.get_parameter(_first_conv_key(smp_encoder)).shape[1])
    source = EncoderPyramid(backbone, in_channels, depth, name)
    return PretrainedWeights(name=name, state_dict=source.encoder.state_dict())


def _per_modality(
    weights: ModalityWeights, names: Sequence[str]
) -> dict[str, WeightsSpec]:
    """Spread *weights* over the modalities, checking a mapping's keys."""
    if isinstance(weights, dict):
        unknown = [name for name in weights if name not in names]
        if unknown:
            raise ConfigurationError(
                f'weights: {unknown} are not among the modalities {list(names)}; '
                'key the weights by modality name.'
            )
        return {name: weights.get(name) for name in names}
    return dict.fromkeys(names, weights)


def load_pretrained_encoders(
    model: nn.Module,
    weights: ModalityWeights,
    backbone: str,
    bands: Mapping[str, Sequence[str]] | None = None,
    mode: InChannelsMode = 'match',
) -> dict[str, InputExpectation]:
    """Load each modality's weights into the model's specific encoder.

    A single smp name (``'imagenet'``, or ``True``) is left to the model's
    constructor (``weights=``), which initialises every encoder as before;
    everything else is loaded here, after the model is built with random
    weights: per modality a TorchGeo weights enum or name, a file, an smp
    name, ``True`` or ``None``. The early-fusion baseline has one encoder
    for the stacked bands of all modalities and takes one value.

    Args:
        model: A :class:`~torchgeo_stars.models.SharedSpecificSegmenter`
            (STARS, ShaSpec) or :class:`~torchgeo_stars.models.EarlyFusion`.
        weights: One value for every specific encoder, or one per modality.
        backbone: The specific encoders' name.
        bands: Modality name to its band names, in input order (optional;
            needed to keep a subset of the weights' input channels).
        mode: ``'adapt'`` to adapt the first convolution when bands cannot
            be matched by name and their counts differ.

    Returns:
        Modality name to what its encoder now expects of its inputs (only
        modalities given TorchGeo weights or a file).

    Raises:
        ConfigurationError: If a name or file is not usable weights, the
            weights do not fit the encoder, or the bands do not match.
    """
    if weights is None or weights is False or smp_weights_name(weights) is not None:
        return {}
    encoders = _encoders(model)
    modalities: dict[str, int] = dict(getattr(model, 'modalities', {}) or {})
    bands = dict(bands or {})
    if len(encoders) == 1 and next(iter(encoders)) not in modalities:
        # Early fusion: one encoder for every modality's bands, stacked.
        if isinstance(weights, dict):
            raise ConfigurationError(
                'weights: the early_fusion model has one encoder for all modalities; '
                'give weights one value, not one per modality.'
            )
        stacked = [bands.get(name) for name in modalities]
        joined = (
            [b for names in stacked if names is not None for b in names]
            if all(names is not None for names in stacked)
            else None
        )
        ((combined, pyramid),) = encoders.items()
        expectation = _load(pyramid, weights, backbone, combined, joined, mode)
        return _split(expectation, modalities) if expectation else {}
    expectations: dict[str, InputExpectation] = {}
    for name, spec in _per_modality(weights, list(encoders)).items():
        expectation = _load(encoders[name], spec, backbone, name, bands.get(name), mode)
        if expectation is not None:
            expectations[name] = expectation
    return expectations


def _load(
    pyramid: EncoderPyramid,
    spec: WeightsSpec,
    backbone: str,
    modality: str,
    bands: Sequence[str] | None,
    mode: InChannelsMode,
) -> InputExpectation | None:
    """Load one modality's weights into its encoder (see the public function)."""
    resolved = resolve_weights(spec, backbone)
    if resolved is None:
        return None
    if isinstance(resolved, str):
        source = _smp_state_dict(pyramid, backbone, resolved)
        nn.Module.load_state_dict(pyramid.encoder, source.state_dict, strict=True)
        return None
    expectation = load_encoder_weights(pyramid.encoder, resolved, modality, bands, mode)
    if expectation.mean is None:
        warnings.warn(
            f"modality '{modality}': {resolved.name} record no input normalisation, "
            'so the data ranges cannot be checked against pretraining; make sure the '
            "datamodule's statistics give inputs in the weights' range.",
            UserWarning,
            stacklevel=3,
        )
    return expectation


def _split(
    expectation: InputExpectation, modalities: Mapping[str, int]
) -> dict[str, InputExpectation]:
    """One modality's share of the early-fusion encoder's expectation."""
    result: dict[str, InputExpectation] = {}
    start = 0
    for name, count in modalities.items():
        part = slice(start, start + count)
        start += count
        result[name] = InputExpectation(
            weights=expectation.weights,
            bands=expectation.bands[part] if expectation.bands else None,
            mean=expectation.mean[part] if expectation.mean else None,
            std=expectation.std[part] if expectation.std else None,
        )
    return result


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two value lists are equal up to float noise."""
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-6)
        for x, y in zip(a, b, strict=True)
    )


def _data_bands(datamodule: Any) -> dict[str, tuple[str, ...]]:
    """Band names per modality read by a datamodule's paired dataset, if known."""
    dataset = getattr(datamodule, 'dataset', None)
    datasets = getattr(dataset, 'modality_datasets', None)
    if not isinstance(datasets, dict):
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for name, modality_dataset in datasets.items():
        names = getattr(modality_dataset, 'bands', None)
        if names:
            result[name] = tuple(str(b) for b in names)
    return result


def check_data_against_weights(
    expectations: Mapping[str, InputExpectation],
    datamodule: Any,
    bands: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Check a datamodule's bands and normalisation against loaded weights.

    Args:
        expectations: What each modality's encoder expects
            (:func:`load_pretrained_encoders`).
        datamodule: The datamodule (its ``dataset.modality_datasets[name].bands``
            and ``statistics[name]`` are read when it has them).
        bands: The band names the weights were matched with (``weights_bands``).

    Raises:
        ConfigurationError: If the data reads other bands than *bands* says
            (when the data names its bands in the same vocabulary: data bands
            named ``red`` or ``band_1`` are not compared with ``B4``).

    Warns:
        UserWarning: If the data is normalised otherwise than the weights
            expect, or that cannot be checked.
    """
    data_bands = _data_bands(datamodule)
    for name, given in (bands or {}).items():
        read = [canonical_band(b) for b in data_bands.get(name, ())]
        wanted = [canonical_band(b) for b in given]
        # Names of another vocabulary ('red', 'band_1') cannot be compared;
        # lists that share names but differ are a mistake.
        if set(read) & set(wanted) and read != wanted:
            raise ConfigurationError(
                f"modality '{name}': weights_bands.{name} is {list(given)} but the "
                f'data reads bands {list(data_bands[name])}; list the bands the '
                'data reads, in its order.'
            )
    statistics = getattr(datamodule, 'statistics', None)
    for name, expectation in expectations.items():
        if expectation.mean is None or expectation.std is None:
            continue
        stats = statistics.get(name) if isinstance(statistics, Mapping) else None
        mean = getattr(stats, 'mean', None)
        std = getattr(stats, 'std', None)
        if isinstance(stats, Mapping):
            mean, std = stats.get('mean'), stats.get('std')
        target = f'{{mean: {list(expectation.mean)}, std: {list(expectation.std)}}}'
        if mean is None or std is None:
            warnings.warn(
                f"modality '{name}': {expectation.weights} expect inputs normalised "
                f'as {target}; the datamodule does not say how it normalises, so '
                'this cannot be checked.',
                UserWarning,
                stacklevel=2,
            )
        elif not (_close(mean, expectation.mean) and _close(std, expectation.std)):
            warnings.warn(
                f"modality '{name}': {expectation.weights} expect inputs normalised "
                f'as {target}, but the data is normalised with mean {list(mean)}, '
                f'std {list(std)}; give the datamodule statistics.{name}: {target} '
                'to feed the ranges the weights were trained on.',
                UserWarning,
                stacklevel=2,
            )
