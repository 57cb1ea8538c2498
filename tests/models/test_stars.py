"""STARS: recovery, translators, alignment outputs, cost, gradients."""

import copy
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.models import (
    STARS,
    SegmentationOutput,
    SharedBackbone,
    SharedConvPyramid,
    SharedProjection,
    TranslatorBank,
    build_model,
)
from torchgeo_stars.models.registry import ModelName

from .helpers import (
    NUM_CLASSES,
    SMALL,
    THREE,
    TWO,
    capture_fusion,
    make_inputs,
    make_stars,
)

STRIDES = [4, 8, 16, 32]


@contextmanager
def record_batches(module: nn.Module) -> Iterator[list[int]]:
    """Record the batch size of every call of *module*."""
    sizes: list[int] = []

    def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        sizes.append(int(args[0].shape[0]) if isinstance(args[0], Tensor) else -1)

    handle = module.register_forward_pre_hook(hook)
    try:
        yield sizes
    finally:
        handle.remove()


def perturb(module: nn.Module) -> None:
    """Add noise to every parameter of *module*."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter))


@pytest.fixture(scope='module')
def stars3() -> STARS:
    return make_stars(THREE)


def test_missing_modality_encoder_not_run(stars3: STARS) -> None:
    encoders = stars3.specific_encoders.encoders
    inputs = make_inputs(THREE, 2, 32, 32)
    with torch.no_grad():
        with (
            record_batches(encoders['sar']) as sar,
            record_batches(encoders['dsm']) as dsm,
        ):
            stars3({'optical': inputs['optical'], 'dsm': inputs['dsm']})
        assert sar == []
        assert dsm == [2]
        available = torch.tensor([[True, False, True], [True, True, True]])
        with record_batches(encoders['sar']) as sar:
            stars3(inputs, available)
        assert sar == [1]
        # Dropped in evaluation: not run, unless alignment outputs are asked for.
        dropped = torch.tensor([[False, True, False], [False, False, False]])
        with record_batches(encoders['sar']) as sar:
            stars3(inputs, None, dropped)
        assert sar == [1]
        with record_batches(encoders['sar']) as sar:
            out = stars3(inputs, None, dropped, return_alignment=True)
        assert sar == [2]
        assert out.specific['sar'][0][0].abs().sum() > 0


def first_scale(model: STARS, source: str) -> nn.Module:
    """The first-scale module of *source*'s translators."""
    assert model.translation is not None
    bank = model.translation.banks[source]
    assert isinstance(bank, TranslatorBank)
    return bank.scales[0]


def test_translators_run_only_for_recovery(stars3: STARS) -> None:
    inputs = make_inputs(THREE, 3, 32, 32)
    with torch.no_grad():
        with (
            record_batches(first_scale(stars3, 'optical')) as optical,
            record_batches(first_scale(stars3, 'sar')) as sar,
        ):
            stars3(inputs)
        assert optical == []
        assert sar == []
        available = torch.tensor([[True, True, True], [True, False, True], [True] * 3])
        with (
            record_batches(first_scale(stars3, 'optical')) as optical,
            record_batches(first_scale(stars3, 'sar')) as sar,
        ):
            stars3(inputs, available)
        # Only sample 1 misses a modality; sar is not there to translate from.
        assert optical == [1]
        assert sar == []


def test_translators_do_not_touch_complete_samples(stars3: STARS) -> None:
    model = copy.deepcopy(stars3)
    inputs = make_inputs(THREE, 3, 32, 32)
    available = torch.tensor(
        [[True, True, True], [True, False, True], [False, True, True]]
    )
    with torch.no_grad():
        complete = model(inputs).logits
        mixed = model(inputs, available).logits
        assert model.translation is not None
        perturb(model.translation)
        torch.testing.assert_close(model(inputs).logits, complete, atol=0, rtol=0)
        perturbed = model(inputs, available).logits
    torch.testing.assert_close(perturbed[0], mixed[0], atol=0, rtol=0)
    # Samples that miss a modality are recovered through the translators.
    for row in (1, 2):
        assert (perturbed[row] - mixed[row]).abs().max() > 1e-3


def test_recovery_is_mean_of_translations_and_shared(stars3: STARS) -> None:
    inputs = make_inputs(THREE, 5, 64, 64)
    available = torch.tensor(
        [[True] * 3, [True, False, True], [True, False, False], [True] * 3, [True] * 3]
    )
    # Sample 4: sar dropped and dsm dropped, so only optical may feed recovery.
    dropped = torch.tensor(
        [
            [False] * 3,
            [False] * 3,
            [False] * 3,
            [False, False, True],
            [False, True, True],
        ]
    )
    usable = available & ~dropped
    names = list(THREE)
    with torch.no_grad(), capture_fusion(stars3) as calls:
        out = stars3(inputs, available, dropped, return_alignment=True)
    ((specific, shared),) = calls
    for scale in range(4):
        for b in range(5):
            sources = [i for i, name in enumerate(names) if usable[b, i]]
            mean_h = torch.stack([shared[i][scale][b] for i in sources]).mean(0)
            for j, target in enumerate(names):
                fused_s = specific[j][scale][b]
                if usable[b, j]:
                    torch.testing.assert_close(fused_s, out.specific[target][scale][b])
                    continue
                expected = torch.stack(
                    [out.translated[names[i], target][scale][b] for i in sources]
                ).mean(0)
                torch.testing.assert_close(fused_s, expected)
                torch.testing.assert_close(shared[j][scale][b], mean_h)
    # The dropped modality still has its real features in the output.
    assert out.specific['dsm'][0][3].abs().sum() > 0
    assert not torch.equal(out.specific['dsm'][0][3], specific[2][0][3])


def test_dropped_keeps_real_specific_features(stars3: STARS) -> None:
    inputs = make_inputs(THREE, 2, 64, 64)
    dropped = torch.tensor([[False, True, False], [False, False, False]])
    with torch.no_grad():
        kept = stars3(inputs, return_alignment=True)
        out = stars3(inputs, None, dropped, return_alignment=True)
        missing = stars3(inputs, torch.tensor([[True, False, True], [True] * 3]))
    for scale in range(4):
        torch.testing.assert_close(
            out.specific['sar'][scale], kept.specific['sar'][scale]
        )
    torch.testing.assert_close(out.logits, missing.logits, atol=1e-5, rtol=0)
    assert (out.logits[0] - kept.logits[0]).abs().max() > 1e-3


@pytest.mark.parametrize('modalities', [TWO, THREE], ids=['two', 'three'])
def test_training_outputs(modalities: dict[str, int]) -> None:
    model = make_stars(modalities).train()
    names = list(modalities)
    height, width = 45, 61
    batch = 4
    inputs = make_inputs(modalities, batch, height, width)
    available = torch.ones(batch, len(names), dtype=torch.bool)
    available[1, 0] = False
    available[2, 1] = False
    dropped = torch.zeros_like(available)
    dropped[0, 1] = True
    dropped[3, 0] = True
    out = model(inputs, available, dropped)
    assert torch.equal(out.available, available)
    channels = model.specific_encoders.out_channels
    assert sorted(out.specific) == sorted(names)
    for name in names:
        column = names.index(name)
        for scale, (c, stride) in enumerate(zip(channels, STRIDES, strict=True)):
            shape = (batch, c, math.ceil(height / stride), math.ceil(width / stride))
            feature = out.specific[name][scale]
            assert feature.shape == shape
            per_row = feature.flatten(1).abs().sum(1)
            assert torch.equal(per_row > 0, available[:, column])
    pairs = [(i, j) for i in names for j in names if i != j]
    assert sorted(out.translated) == sorted(pairs)
    for (source, target), pyramid in out.translated.items():
        assert [t.shape for t in pyramid] == [s.shape for s in out.specific[target]]
        per_row = pyramid[0].flatten(1).abs().sum(1)
        assert torch.equal(per_row > 0, available[:, names.index(source)])
    size = (math.ceil(height / 8), math.ceil(width / 8))
    for name, embedding in out.embeddings.items():
        assert embedding.shape == (batch, 8, *size)
        norms = embedding.norm(dim=1)
        rows = available[:, names.index(name)]
        torch.testing.assert_close(norms[rows], torch.ones_like(norms[rows]))
        assert torch.equal(norms[~rows], torch.zeros_like(norms[~rows]))


def test_evaluation_computes_only_logits(stars3: STARS) -> None:
    with torch.no_grad():
        out = stars3(make_inputs(THREE, 2, 32, 32))
    assert out.logits.shape == (2, NUM_CLASSES, 32, 32)
    assert out.specific == {}
    assert out.translated == {}
    assert out.embeddings == {}


def test_training_without_alignment_outputs() -> None:
    model = make_stars(THREE).train()
    inputs = make_inputs(THREE, 3, 32, 32)
    dropped = torch.zeros(3, 3, dtype=torch.bool)
    dropped[0, 0] = True
    translator = model.translation
    embedding_heads = model.embedding_heads
    assert translator is not None
    assert embedding_heads is not None
    banks = [cast(TranslatorBank, bank) for bank in translator.banks.values()]
    first_scales = [bank.scales[0] for bank in banks]
    torch.manual_seed(0)
    with ExitStack() as stack:
        translator_calls = [
            stack.enter_context(record_batches(m)) for m in first_scales
        ]
        head_calls = stack.enter_context(record_batches(embedding_heads))
        out = model(inputs, None, dropped, return_alignment=False)
    assert out.specific == {}
    assert out.translated == {}
    assert out.embeddings == {}
    assert head_calls == []
    # In training every source is translated on all its rows (batch norm).
    assert translator_calls == [[3], [3], [3]]
    torch.manual_seed(0)
    full = model(inputs, None, dropped)
    assert full.embeddings
    assert full.translated
    torch.testing.assert_close(out.logits, full.logits)


@pytest.mark.parametrize('name', ['stars', 'shaspec', 'early_fusion'])
def test_models_keep_weights_channels_last(name: ModelName) -> None:
    # build_model (what the task uses) stores the weights channels-last.
    model = build_model(name, modalities=TWO, num_classes=NUM_CLASSES, **SMALL)
    convolutions = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convolutions
    for conv in convolutions:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('psa_features', ['specific', 'shared'])
def test_psa_features_select_what_the_embeddings_read(psa_features: str) -> None:
    # Changing the shared projection changes shared features only: the
    # embeddings follow it exactly when they read the shared features.
    model = make_stars(TWO, psa_features=psa_features).eval()
    inputs = make_inputs(TWO, 2, 32, 32)
    with torch.no_grad():
        before = model(inputs, return_alignment=True)
        perturb(model.shared_encoder)
        after = model(inputs, return_alignment=True)
    for name in TWO:
        torch.testing.assert_close(
            after.specific[name][1], before.specific[name][1], atol=0, rtol=0
        )
        moved = (after.embeddings[name] - before.embeddings[name]).abs().max()
        assert (moved > 1e-3) == (psa_features == 'shared')


@pytest.mark.parametrize(
    ('shared_encoder', 'reads_images'),
    [(None, True), ('backbone', True), ('light', True), ('projection', False)],
)
def test_shared_features_come_from_a_shared_backbone_on_the_images(
    shared_encoder: str | None, reads_images: bool
) -> None:
    # docs/method.rst (Network): by default the shared features come from one
    # backbone run on the images, so the specific encoders' weights cannot move them;
    # the projection option derives them from the specific features instead.
    kwargs = {} if shared_encoder is None else {'shared_encoder': shared_encoder}
    model = make_stars(TWO, **kwargs)
    expected: dict[str | None, type[nn.Module]] = {
        None: SharedConvPyramid,
        'light': SharedConvPyramid,
        'backbone': SharedBackbone,
        'projection': SharedProjection,
    }
    assert isinstance(model.shared_encoder, expected[shared_encoder])
    inputs = make_inputs(TWO, 2, 32, 32)
    with torch.no_grad(), capture_fusion(model) as calls:
        model(inputs)
        perturb(model.specific_encoders)
        model(inputs)
    (_, shared_before), (_, shared_after) = calls
    for before, after in zip(shared_before, shared_after, strict=True):
        moved = max(
            (a - b).abs().max().item() for a, b in zip(after, before, strict=True)
        )
        assert (moved == 0) == reads_images


def test_alignment_level_selects_embedding_scale() -> None:
    model = make_stars(TWO, alignment_level=0)
    with torch.no_grad():
        out = model(make_inputs(TWO, 1, 64, 64), return_alignment=True)
    assert out.embeddings['sar'].shape[-2:] == (16, 16)


def test_gradient_reaches_every_part() -> None:
    model = make_stars(THREE).train()
    inputs = make_inputs(THREE, 4, 64, 64)
    # Each modality dropped in one sample, so every translator recovers one.
    dropped = torch.tensor(
        [[True, False, False], [False, True, False], [False, False, True], [False] * 3]
    )
    target = torch.randint(0, NUM_CLASSES, (4, 64, 64))
    out: SegmentationOutput = model(inputs, None, dropped)
    torch.autograd.backward(F.cross_entropy(out.logits, target), retain_graph=True)
    for name, parameter in model.named_parameters():
        reached = parameter.grad is not None and parameter.grad.abs().sum() > 0
        # The segmentation loss reaches everything but the PSA embedding heads.
        assert reached != name.startswith('embedding_heads.'), name
    alignment = torch.stack(
        [
            (t[0] - out.specific[j][0].detach()).square().mean()
            for (_, j), t in out.translated.items()
        ]
    ).sum()
    psa = torch.stack([e.mean() for e in out.embeddings.values()]).sum()
    model.zero_grad()
    torch.autograd.backward(alignment + psa + out.logits.mean())
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_no_translation_zero_fills_specific() -> None:
    model = make_stars(TWO, translation=False)
    assert model.translation is None
    inputs = make_inputs(TWO, 2, 32, 32)
    available = torch.tensor([[True, False], [True, True]])
    with torch.no_grad(), capture_fusion(model) as calls:
        out = model(inputs, available, return_alignment=True)
    ((specific, shared),) = calls
    for scale in range(4):
        assert torch.equal(
            specific[1][scale][0], torch.zeros_like(specific[1][scale][0])
        )
        torch.testing.assert_close(shared[1][scale][0], shared[0][scale][0])
    assert out.translated == {}
    assert sorted(out.embeddings) == ['optical', 'sar']
    model.train()
    assert model(make_inputs(TWO, 2, 64, 64)).translated == {}


def test_timm_encoder() -> None:
    model = make_stars(TWO, backbone='tu-resnet10t', shared_encoder='backbone')
    with torch.no_grad():
        out = model(
            make_inputs(TWO, 2, 40, 24), torch.tensor([[True, False], [False, True]])
        )
    assert out.logits.shape == (2, NUM_CLASSES, 40, 24)


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'modalities': {'optical': 3}}, 'at least 2 modalities'),
        ({'modalities': {'optical': 3, 'sar': 0}}, "'sar' must have a positive"),
        ({'encoder_depth': 3}, 'encoder_depth must be 4 or 5'),
        ({'backbone': 'no-such-encoder'}, "cannot build encoder 'no-such-encoder'"),
        ({'alignment_level': 4}, 'alignment_level'),
        ({'shared_encoder': 'both'}, 'shared_encoder'),
        ({'translator_blocks': 0}, 'translator_blocks'),
        ({'num_classes': 0}, 'num_classes'),
        ({'psa_features': 'fused'}, 'psa_features'),
    ],
)
def test_invalid_configuration(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {'modalities': TWO, 'num_classes': 2, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        STARS(**arguments)


def test_depth_four() -> None:
    model = make_stars(TWO, encoder_depth=4)
    with torch.no_grad():
        out = model(make_inputs(TWO, 1, 30, 18), return_alignment=True)
    assert out.logits.shape == (1, NUM_CLASSES, 30, 18)
    # Depth 4: decoder scales have strides 2, 4, 8, 16.
    assert out.specific['optical'][0].shape[-2:] == (15, 9)
