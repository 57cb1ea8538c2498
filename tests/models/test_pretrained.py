"""Per-modality pretrained weights: resolution, band-aware loading, errors."""

from pathlib import Path
from typing import Any

import pytest
import segmentation_models_pytorch.encoders as smp_encoders
import torch
from safetensors.torch import save_file
from segmentation_models_pytorch.encoders import get_encoder
from timm.models import adapt_input_conv
from torch import Tensor, nn
from torchgeo.models import ResNet18_Weights, ResNet50_Weights
from torchvision.models._api import WeightsEnum

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.models import STARS, EarlyFusion
from torchgeo_stars.models.pretrained import (
    ModalityWeights,
    PretrainedWeights,
    canonical_band,
    check_data_against_weights,
    load_encoder_weights,
    load_pretrained_encoders,
    resolve_weights,
    smp_weights_name,
    torchgeo_weights,
)

from .helpers import NUM_CLASSES, SMALL, STARS_SMALL, THREE, random_encoder_state

S2_BANDS = ResNet18_Weights.SENTINEL2_ALL_MOCO.meta['bands']


#: What the patched ``get_state_dict`` returns, per weights: their own band count.
FAKE: dict[str, dict[str, Tensor]] = {}


def fake_state_dict(
    weights: WeightsEnum, *args: Any, **kwargs: Any
) -> dict[str, Tensor]:
    """Stand-in for ``WeightsEnum.get_state_dict``: no download."""
    name = str(weights)
    if name not in FAKE:
        state = random_encoder_state(int(weights.meta['in_chans']), len(FAKE) + 1)
        # Like older checkpoints: no batch counters.
        FAKE[name] = {
            k: v for k, v in state.items() if not k.endswith('num_batches_tracked')
        }
    return {key: value.clone() for key, value in FAKE[name].items()}


@pytest.fixture(autouse=True)
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download fails; TorchGeo weights come from :func:`fake_state_dict`."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f'a download was attempted: {args}')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(smp_encoders, 'hf_hub_download', refuse)
    monkeypatch.setattr(WeightsEnum, 'get_state_dict', fake_state_dict)


def build_stars(**kwargs: Any) -> STARS:
    """A small STARS with deterministic random initialisation."""
    torch.manual_seed(0)
    return STARS(THREE, NUM_CLASSES, **{**STARS_SMALL, **kwargs})


def encoder_state(model: nn.Module, modality: str) -> dict[str, Tensor]:
    """The state dict of a model's specific encoder of *modality*."""
    encoders: Any = model.specific_encoders.encoders  # type: ignore[union-attr]
    return dict(encoders[modality].encoder.state_dict())


def assert_same(actual: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    """Two state dicts hold the same keys and equal tensors (batch counters,
    which TorchGeo's weights may lack, aside)."""
    assert expected.keys() <= actual.keys()
    extra = actual.keys() - expected.keys()
    assert all(key.endswith('num_batches_tracked') for key in extra), extra
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def without_head(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A TorchGeo state dict without its classifier head."""
    return {k: v for k, v in state.items() if not k.startswith('fc.')}


def test_per_modality_weights_enum_file_and_none(tmp_path: Path) -> None:
    sar_state = random_encoder_state(2, seed=7)
    path = tmp_path / 'sar_encoder.pth'
    torch.save(sar_state, path)
    reference = build_stars()
    model = build_stars()
    bands = {'optical': ['B02', 'B03', 'B04', 'B08']}
    weights = {
        'optical': ResNet18_Weights.SENTINEL2_ALL_MOCO,
        'sar': str(path),
        'dsm': None,
    }
    expectations = load_pretrained_encoders(model, weights, 'resnet18', bands)

    optical = without_head(fake_state_dict(ResNet18_Weights.SENTINEL2_ALL_MOCO))
    optical['conv1.weight'] = optical['conv1.weight'][:, [1, 2, 3, 7]]
    assert_same(encoder_state(model, 'optical'), optical)
    assert_same(encoder_state(model, 'sar'), without_head(sar_state))
    # Untouched: the DSM encoder, the shared encoder, the decoder.
    reference_state = reference.state_dict()
    for key, value in model.state_dict().items():
        if '.optical.' in key or '.sar.' in key:
            continue
        assert torch.equal(value, reference_state[key]), key
    assert expectations['optical'].bands == ('B2', 'B3', 'B4', 'B8')
    assert expectations['optical'].mean == (0.0,) * 4
    assert expectations['optical'].std == (10000.0,) * 4
    assert set(expectations) == {'optical', 'sar'}


def test_band_subset_keeps_exactly_the_named_channels_in_data_order() -> None:
    encoder = get_encoder('resnet18', in_channels=4, weights=None)
    weights = torchgeo_weights(ResNet18_Weights.SENTINEL2_ALL_MOCO, 'resnet18')
    expectation = load_encoder_weights(
        encoder, weights, 'optical', ['B8', 'b2', 'B03', 'B4']
    )
    full = weights.state_dict['conv1.weight']
    assert full.shape[1] == 13
    loaded = encoder.state_dict()['conv1.weight']
    for position, band in enumerate(['B8', 'B2', 'B3', 'B4']):
        assert torch.equal(loaded[:, position], full[:, S2_BANDS.index(band)])
    assert expectation.bands == ('B8', 'B2', 'B3', 'B4')


def test_mismatched_bands_are_one_line_naming_everything() -> None:
    encoder = get_encoder('resnet18', in_channels=4, weights=None)
    weights = torchgeo_weights(ResNet18_Weights.SENTINEL2_ALL_MOCO, 'resnet18')
    before = encoder.state_dict()['conv1.weight'].clone()
    with pytest.raises(ConfigurationError) as caught:
        load_encoder_weights(
            encoder, weights, 'optical', ['blue', 'green', 'red', 'nir']
        )
    message = str(caught.value)
    assert '\n' not in message
    for part in ("'optical'", 'ResNet18_Weights.SENTINEL2_ALL_MOCO', "'B8a'", "'nir'"):
        assert part in message
    assert 'adapt' in message
    assert torch.equal(encoder.state_dict()['conv1.weight'], before)


def test_unnamed_bands_of_another_count_are_refused() -> None:
    encoder = get_encoder('resnet18', in_channels=2, weights=None)
    weights = torchgeo_weights(ResNet18_Weights.SENTINEL2_ALL_MOCO, 'resnet18')
    with pytest.raises(ConfigurationError, match='set weights_bands'):
        load_encoder_weights(encoder, weights, 'sar')


@pytest.mark.parametrize('channels', [1, 2, 4])
def test_adapt_uses_timm_adapt_input_conv(channels: int) -> None:
    encoder = get_encoder('resnet18', in_channels=channels, weights=None)
    weights = torchgeo_weights(ResNet18_Weights.SENTINEL2_ALL_MOCO, 'resnet18')
    names = [f'x{i}' for i in range(channels)]
    expectation = load_encoder_weights(encoder, weights, 'sar', names, mode='adapt')
    full = weights.state_dict['conv1.weight']
    expected = adapt_input_conv(channels, full, base_chans=13)
    assert torch.equal(encoder.state_dict()['conv1.weight'], expected)
    assert not torch.equal(expected, full[:, :channels])
    # Adapted channels have no band, but a broadcast normalisation still holds.
    assert expectation.bands is None
    assert expectation.std == (10000.0,) * channels


def test_single_value_means_every_specific_encoder() -> None:
    reference = build_stars()
    model = build_stars()
    load_pretrained_encoders(
        model,
        'ResNet18_Weights.SENTINEL2_ALL_MOCO',
        'resnet18',
        {'optical': ['B2', 'B3', 'B4', 'B8']},
        mode='adapt',
    )
    state = without_head(fake_state_dict(ResNet18_Weights.SENTINEL2_ALL_MOCO))
    full = state['conv1.weight']
    for name, bands in THREE.items():
        loaded = encoder_state(model, name)
        for key, value in state.items():
            if key != 'conv1.weight':
                assert torch.equal(loaded[key], value), (name, key)
        expected = (
            full[:, [1, 2, 3, 7]]
            if name == 'optical'
            else adapt_input_conv(bands, full, base_chans=13)
        )
        assert torch.equal(loaded['conv1.weight'], expected), name
    reference_state = reference.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith('specific_encoders.'):
            assert torch.equal(value, reference_state[key]), key


@pytest.fixture
def imagenet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Tensor]:
    """smp's 'imagenet' resnet18 weights, served from a local file."""
    state = without_head(random_encoder_state(3, seed=11))
    save_file(state, str(tmp_path / 'model.safetensors'))
    (tmp_path / 'config.json').write_text('{}')

    def local(repo_id: str, filename: str, revision: str | None = None) -> str:
        return str(tmp_path / filename)

    monkeypatch.setattr(smp_encoders, 'hf_hub_download', local)
    return state


def test_true_is_imagenet_for_the_model_constructor() -> None:
    assert smp_weights_name(True) == 'imagenet'
    assert smp_weights_name('imagenet') == 'imagenet'
    specs: list[ModalityWeights] = [
        None,
        False,
        'ResNet18_Weights.SENTINEL2_ALL_MOCO',
        'w.pth',
        {},
    ]
    for spec in specs:
        assert smp_weights_name(spec) is None
    assert smp_weights_name(ResNet18_Weights.SENTINEL2_ALL_MOCO) is None


def test_per_modality_true_loads_smp_imagenet_into_that_encoder_only(
    imagenet: dict[str, Tensor],
) -> None:
    reference = build_stars()
    model = build_stars()
    expectations = load_pretrained_encoders(model, {'optical': True}, 'resnet18')
    assert expectations == {}
    expected = get_encoder('resnet18', in_channels=4, weights='imagenet').state_dict()
    assert_same(encoder_state(model, 'optical'), dict(expected))
    assert torch.equal(
        encoder_state(model, 'optical')['layer1.0.conv1.weight'],
        imagenet['layer1.0.conv1.weight'],
    )
    reference_state = reference.state_dict()
    for key, value in model.state_dict().items():
        if '.optical.' not in key:
            assert torch.equal(value, reference_state[key]), key


def test_a_single_smp_name_is_left_to_the_model_constructor() -> None:
    model = build_stars()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert load_pretrained_encoders(model, 'imagenet', 'resnet18') == {}
    assert load_pretrained_encoders(model, True, 'resnet18') == {}
    assert_same(model.state_dict(), before)


def test_weights_of_another_architecture_are_refused_before_fetching() -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError('fetched')

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WeightsEnum, 'get_state_dict', fail)
        with pytest.raises(ConfigurationError) as caught:
            resolve_weights('ResNet50_Weights.SENTINEL1_GRD_MOCO', 'resnet18')
    message = str(caught.value)
    assert "'resnet50'" in message
    assert 'ResNet18_Weights.SENTINEL2_ALL_MOCO' in message


def test_unknown_torchgeo_name_lists_the_backbone_weights() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_weights('ResNet18_Weights.SENTINEL1_ALL_MOCO', 'resnet18')
    assert 'ResNet18_Weights.LANDSAT_TM_TOA_MOCO' in str(caught.value)


def test_missing_file_and_non_state_dict(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match='does not exist'):
        resolve_weights(str(tmp_path / 'nothing.pth'), 'resnet18')
    path = tmp_path / 'list.pt'
    torch.save([1, 2], path)
    with pytest.raises(ConfigurationError, match='holds no state dict'):
        resolve_weights(str(path), 'resnet18')


def test_weights_of_another_network_fail_strictly() -> None:
    encoder = get_encoder('resnet18', in_channels=3, weights=None)
    other = get_encoder('resnet34', in_channels=3, weights=None).state_dict()
    weights = PretrainedWeights(name='resnet34.pth', state_dict=dict(other))
    with pytest.raises(ConfigurationError, match='unexpected keys'):
        load_encoder_weights(encoder, weights, 'optical')
    wide = dict(encoder.state_dict())
    wide['layer1.0.conv1.weight'] = torch.zeros(64, 64, 5, 5)
    weights = PretrainedWeights(name='wide.pth', state_dict=wide)
    with pytest.raises(ConfigurationError, match='size mismatch'):
        load_encoder_weights(encoder, weights, 'optical')


def test_a_stars_checkpoint_gives_each_modality_its_own_encoder(tmp_path: Path) -> None:
    source = build_stars()
    for parameter in source.parameters():
        nn.init.normal_(parameter)
    path = tmp_path / 'stars.ckpt'
    torch.save(
        {'state_dict': {f'model.{k}': v for k, v in source.state_dict().items()}}, path
    )
    model = build_stars()
    load_pretrained_encoders(model, {'sar': str(path), 'dsm': str(path)}, 'resnet18')
    for name in ('sar', 'dsm'):
        assert_same(encoder_state(model, name), encoder_state(source, name))
    assert not torch.equal(
        encoder_state(model, 'optical')['conv1.weight'],
        encoder_state(source, 'optical')['conv1.weight'],
    )


def test_timm_encoder_keys_are_prefixed() -> None:
    encoder = get_encoder('tu-resnet18', in_channels=4, weights=None)
    weights = torchgeo_weights(ResNet18_Weights.SENTINEL2_ALL_MOCO, 'tu-resnet18')
    load_encoder_weights(encoder, weights, 'optical', ['B2', 'B3', 'B4', 'B8'])
    loaded = encoder.state_dict()
    assert torch.equal(
        loaded['model.layer4.1.conv2.weight'],
        weights.state_dict['layer4.1.conv2.weight'],
    )
    assert torch.equal(
        loaded['model.conv1.weight'],
        weights.state_dict['conv1.weight'][:, [1, 2, 3, 7]],
    )


def test_early_fusion_takes_one_value_over_the_stacked_bands() -> None:
    modalities = {'optical': 4, 'sar': 2}
    torch.manual_seed(0)
    model = EarlyFusion(modalities, NUM_CLASSES, **SMALL)
    with pytest.raises(ConfigurationError, match='one value'):
        load_pretrained_encoders(model, {'optical': None}, 'resnet18')
    bands = {'optical': ['B2', 'B3', 'B4', 'B8'], 'sar': ['B11', 'B12']}
    expectations = load_pretrained_encoders(
        model, ResNet18_Weights.SENTINEL2_ALL_MOCO, 'resnet18', bands
    )
    full = fake_state_dict(ResNet18_Weights.SENTINEL2_ALL_MOCO)['conv1.weight']
    loaded = model.encoder.encoder.state_dict()['conv1.weight']
    assert torch.equal(loaded, full[:, [1, 2, 3, 7, 11, 12]])
    assert expectations['sar'].bands == ('B11', 'B12')
    assert expectations['optical'].std == (10000.0,) * 4


def test_unknown_modality_in_the_mapping() -> None:
    with pytest.raises(ConfigurationError, match=r"\['lidar'\]"):
        load_pretrained_encoders(build_stars(), {'lidar': True}, 'resnet18')


def test_normalisation_is_the_composition_of_the_weights_normalize_steps() -> None:
    for member in (
        ResNet18_Weights.SENTINEL2_RGB_SECO,
        ResNet50_Weights.SENTINEL1_GRD_MOCO,
        ResNet18_Weights.SENTINEL2_ALL_MOCO,
    ):
        weights = torchgeo_weights(member, str(member.meta['model']))
        assert weights.mean is not None
        assert weights.std is not None
        channels = int(member.meta['in_chans'])
        x = torch.rand(channels, 4, 4, dtype=torch.float64) * 1000
        expected = x.clone()
        for module in member.transforms.modules():
            if type(module).__name__ == 'Normalize':
                mean = torch.tensor(module.mean, dtype=torch.float64)[:, None, None]
                std = torch.tensor(module.std, dtype=torch.float64)[:, None, None]
                expected = (expected - mean) / std
        mean = torch.tensor(weights.mean, dtype=torch.float64)[:, None, None]
        std = torch.tensor(weights.std, dtype=torch.float64)[:, None, None]
        torch.testing.assert_close((x - mean) / std, expected)


def test_weights_without_normalisation_warn() -> None:
    model = build_stars()
    weights = PretrainedWeights(name='x.pth', state_dict=random_encoder_state(2, 3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            'torchgeo_stars.models.pretrained.file_weights', lambda path: weights
        )
        with pytest.warns(UserWarning, match='no input normalisation'):
            load_pretrained_encoders(model, {'sar': 'x.pth'}, 'resnet18')


def test_canonical_band_names() -> None:
    assert canonical_band('B02') == canonical_band('b2') == 'B2'
    assert canonical_band('B8a') == canonical_band('B08A') == 'B8A'
    assert canonical_band('B10') == 'B10'
    assert canonical_band('vv') == 'VV'


class FakeStatistics:
    """Statistics of a modality, as the datamodule keeps them."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean = tuple(mean)
        self.std = tuple(std)


class FakeDataModule:
    """A datamodule that reads named bands with given statistics."""

    def __init__(self, bands: dict[str, list[str]], statistics: dict[str, Any]) -> None:
        datasets = {
            name: type('D', (), {'bands': tuple(b)})() for name, b in bands.items()
        }
        self.dataset = type('P', (), {'modality_datasets': datasets})()
        self.statistics = statistics


def test_data_check_bands_and_normalisation(recwarn: pytest.WarningsRecorder) -> None:
    model = build_stars()
    expectations = load_pretrained_encoders(
        model,
        {'optical': ResNet18_Weights.SENTINEL2_ALL_MOCO},
        'resnet18',
        {'optical': ['B2', 'B3', 'B4', 'B8']},
    )
    bands = {'optical': ['B2', 'B3', 'B4', 'B8']}
    matching = FakeDataModule(
        {'optical': ['B02', 'B03', 'B04', 'B08']},
        {'optical': FakeStatistics([0.0] * 4, [10000.0] * 4)},
    )
    recwarn.clear()
    check_data_against_weights(expectations, matching, bands)
    assert not [w for w in recwarn if 'normalised' in str(w.message)]

    standardised = FakeDataModule(
        {'optical': ['B02', 'B03', 'B04', 'B08']},
        {'optical': {'mean': [900.0] * 4, 'std': [400.0] * 4}},
    )
    with pytest.warns(
        UserWarning,
        match=r'statistics\.optical: \{mean: \[0\.0, 0\.0, 0\.0, 0\.0\], std: \[10000\.0',
    ):
        check_data_against_weights(expectations, standardised, bands)

    with pytest.warns(UserWarning, match='cannot be checked'):
        check_data_against_weights(expectations, object(), bands)

    other = FakeDataModule({'optical': ['B04', 'B03', 'B02', 'B08']}, {})
    with pytest.raises(ConfigurationError, match=r"data reads bands \['B04'"):
        check_data_against_weights(expectations, other, bands)
    # Bands named in another vocabulary are the user's to map.
    colours = FakeDataModule({'optical': ['blue', 'green', 'red', 'nir']}, {})
    with pytest.warns(UserWarning, match='cannot be checked'):
        check_data_against_weights(expectations, colours, bands)
