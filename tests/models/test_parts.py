"""The small parts the models are assembled from."""

import pytest
import torch

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.models import (
    SharedBackbone,
    SharedConvPyramid,
    SharedProjection,
    TranslatorBank,
    build_shared_encoder,
    masked_mean,
    pad_to_multiple,
    resolve_availability,
)


@pytest.mark.parametrize(
    ('size', 'padded'),
    [((32, 64), (32, 64)), ((45, 61), (64, 64)), ((3, 40), (32, 64))],
)
@pytest.mark.parametrize('mode', ['reflect', 'replicate', 'constant'])
def test_pad_to_multiple(
    size: tuple[int, int], padded: tuple[int, int], mode: str
) -> None:
    x = torch.randn(1, 2, *size)
    y = pad_to_multiple(x, 32, mode)  # type: ignore[arg-type]
    assert y.shape[-2:] == padded
    assert torch.equal(y[..., : size[0], : size[1]], x)


def test_reflect_padding_reflects() -> None:
    x = torch.arange(6.0).reshape(1, 1, 1, 6).expand(1, 1, 6, 6)
    y = pad_to_multiple(x, 8, 'reflect')
    assert torch.equal(y[0, 0, 0, 6:], torch.tensor([4.0, 3.0]))


def test_masked_mean() -> None:
    a = torch.full((3, 1, 2, 2), 1.0)
    b = torch.full((3, 1, 2, 2), 3.0)
    weights = [torch.tensor([True, True, False]), torch.tensor([True, False, False])]
    mean = masked_mean([a, b], weights)
    assert torch.equal(mean[:, 0, 0, 0], torch.tensor([2.0, 1.0, 0.0]))


def test_translator_bank_targets_are_independent() -> None:
    torch.manual_seed(0)
    bank = TranslatorBank([8, 16], ['b', 'c'], hidden=4, blocks=2)
    features = [torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)]
    out = bank(features)
    assert [t.shape for t in out['b']] == [f.shape for f in features]
    torch.autograd.backward(torch.stack([t.sum() for t in out['b']]).sum())
    for layer in bank.scales:
        assert isinstance(layer, torch.nn.Sequential)
        first, last = layer[0], layer[-1]
        assert isinstance(first, torch.nn.Conv2d)
        assert isinstance(last, torch.nn.Conv2d)
        assert first.weight.grad is not None
        assert last.weight.grad is not None
        hidden = first.out_channels // 2
        out_channels = last.out_channels // 2
        # Target 'c' owns the second half of every layer: untouched by 'b'.
        assert first.weight.grad[hidden:].abs().sum() == 0
        assert first.weight.grad[:hidden].abs().sum() > 0
        assert last.weight.grad[out_channels:].abs().sum() == 0


def test_shared_projection_is_shared() -> None:
    projection = SharedProjection([4, 8]).eval()
    features = [torch.randn(2, 4, 4, 4), torch.randn(2, 8, 2, 2)]
    out = projection([], [features, features], ['a', 'b'])
    for scale in range(2):
        torch.testing.assert_close(out[0][scale], out[1][scale])


@pytest.mark.parametrize(
    ('kind', 'channels'),
    [('backbone', [64, 128, 256, 512]), ('tu-regnetx_002', [24, 56, 152, 368])],
)
def test_build_shared_encoder_backbones(kind: str, channels: list[int]) -> None:
    # 'backbone' copies the specific architecture; an encoder name picks another.
    shared = build_shared_encoder(
        kind, {'a': 3, 'b': 1}, 'resnet18', 5, None, [64, 128, 256, 512], 8, 32
    )
    assert isinstance(shared, SharedBackbone)
    assert shared.out_channels == channels
    images = [torch.randn(2, 3, 64, 64), torch.randn(1, 1, 64, 64)]
    out = shared(images, [[], []], ['a', 'b'])
    assert [f.shape[:2] for f in out[1]] == [(1, c) for c in channels]
    assert [f.shape[-1] for f in out[0]] == [16, 8, 4, 2]


@pytest.mark.parametrize(
    ('output_stride', 'channels', 'sides'),
    [(32, [32, 64, 128, 256], [16, 8, 4, 2]), (16, [16, 64, 128, 256], [32, 16, 8, 4])],
)
def test_shared_conv_pyramid_scales_and_sharing(
    output_stride: int, channels: list[int], sides: list[int]
) -> None:
    torch.manual_seed(0)
    shared = build_shared_encoder(
        'light', {'a': 2, 'b': 2}, 'resnet18', 5, None, [1] * 4, 16, output_stride
    )
    assert isinstance(shared, SharedConvPyramid)
    assert shared.out_channels == channels
    shared.eval()
    a, b = torch.randn(2, 2, 64, 64), torch.randn(1, 2, 64, 64)
    out = shared([a, b], [[], []], ['a', 'b'])
    expected = [(c, s, s) for c, s in zip(channels, sides, strict=True)]
    assert [f.shape[1:] for f in out[0]] == expected
    assert [f.shape[0] for f in out[1]] == [1] * 4
    # Stems are per modality, stages shared: with b's stem made a copy of a's,
    # the same image gives the same features under either name.
    shared.stems['b'].load_state_dict(shared.stems['a'].state_dict())
    same = shared([a, a], [[], []], ['a', 'b'])
    for x, y in zip(same[0], same[1], strict=True):
        torch.testing.assert_close(x, y)


def test_shared_conv_pyramid_rejects_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match='output stride of 16 or 32'):
        SharedConvPyramid({'a': 1}, output_stride=8)
    with pytest.raises(ConfigurationError, match='4 positive widths'):
        SharedConvPyramid({'a': 1}, widths=(8, 8))


def test_build_shared_encoder_rejects_bad_names_and_strides() -> None:
    with pytest.raises(ConfigurationError, match="shared_encoder must be 'proj"):
        build_shared_encoder('both', {'a': 3}, 'resnet18', 5, None, [1] * 4)
    with pytest.raises(ConfigurationError, match='reaches stride 32 but the spec'):
        build_shared_encoder(
            'tu-regnetx_002', {'a': 3}, 'resnet18', 5, None, [1] * 4, 8, 16
        )


def test_resolve_availability() -> None:
    modalities = {'optical': 3, 'sar': 2, 'dsm': 1}
    inputs = {'optical': torch.zeros(2, 3, 5, 5), 'dsm': torch.zeros(2, 1, 5, 5)}
    state = resolve_availability(inputs, modalities)
    assert torch.equal(state.available, torch.tensor([[True, False, True]] * 2))
    assert torch.equal(state.usable, state.available)
    assert (state.batch_size, state.height, state.width) == (2, 5, 5)
    dropped = torch.tensor([[1, 1, 0], [0, 0, 0]])  # not bool; sar ignored
    state = resolve_availability(inputs, modalities, None, dropped)
    assert torch.equal(
        state.usable, torch.tensor([[False, False, True], [True, False, True]])
    )
