"""PSA on the decoder's features (``psa_features='decoder'``): one fused view."""

import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import PSALoss
from torchgeo_stars.models import FUSED_VIEW, STARS
from torchgeo_stars.models.outputs import SegmentationOutput

from ..tasks.helpers import TINY_MODEL, tiny_task
from .test_psa_minority import IGNORE, small_object_mask
from .test_stars_gradients import MODALITIES, tiny_stars

EMBEDDING_DIM = 8
SEGMENTATION_CHANNELS = 32


def decoder_stars() -> STARS:
    """A tiny STARS in training mode whose PSA head reads the decoder."""
    return tiny_stars(
        decoder_segmentation_channels=SEGMENTATION_CHANNELS,
        embedding_dim=EMBEDDING_DIM,
        psa_features='decoder',
    )


def inputs_of(batch: int, size: int, seed: int = 0) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(batch, bands, size, size, generator=generator)
        for name, bands in MODALITIES.items()
    }


def gradient_sum(module: nn.Module) -> float:
    return sum(
        float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None
    )


def single_view_loss(
    embedding: Tensor, mask: Tensor, **kwargs: Any
) -> tuple[PSALoss, Tensor]:
    """The single-view PSA loss of one map, every labelled position drawn."""
    loss = PSALoss(n_per_class=1000, **kwargs)
    available = torch.ones(embedding.shape[0], 2, dtype=torch.bool)
    return loss, loss({FUSED_VIEW: embedding}, mask, available, single_view=True)


def test_decoder_embeddings_are_one_unit_norm_view_at_stride_4() -> None:
    model = decoder_stars()
    calls: list[Tensor] = []
    # smp's FPNDecoder, whose output the class head reads.
    fpn = model.decoder.decoder
    handle = fpn.register_forward_hook(lambda _m, _a, out: calls.append(out))
    # Sample 0 lacks SAR: the fused view exists for it all the same.
    available = torch.tensor([[True, False], [True, True]])
    output = model(inputs_of(2, 36), available)
    handle.remove()
    assert len(calls) == 1  # one decoder pass gives the logits and the embeddings
    assert output.fused_embeddings
    assert list(output.embeddings) == [FUSED_VIEW]
    assert output.embedding_stride == 4
    embedding = output.embeddings[FUSED_VIEW]
    # 36 pixels are padded to 64 (stride 32); ceil(36 / 4) cells are kept.
    assert tuple(embedding.shape) == (2, EMBEDDING_DIM, 9, 9)
    norms = embedding.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    # They are the head applied to the decoder's features the class head reads.
    assert model.embedding_heads is not None
    expected = model.embedding_heads(calls[0], FUSED_VIEW)[..., :9, :9]
    torch.testing.assert_close(embedding, expected)
    # The per-modality alignment outputs are unchanged.
    assert set(output.specific) == set(MODALITIES)
    assert len(output.translated) == 2


def test_decoder_option_builds_one_head_on_the_segmentation_width() -> None:
    model = decoder_stars()
    assert model.psa_features == 'decoder'
    assert model.embedding_heads is not None
    assert list(model.embedding_heads.heads) == [FUSED_VIEW]
    head = model.embedding_heads.heads[FUSED_VIEW]
    assert isinstance(head, nn.Sequential)
    first = head[0]
    assert isinstance(first, nn.Conv2d)
    assert first.in_channels == SEGMENTATION_CHANNELS
    # No alignment outputs in evaluation (nothing extra computed for inference).
    output = model.eval()(inputs_of(1, 64))
    assert output.embeddings == {}
    assert not output.fused_embeddings


@pytest.mark.parametrize(
    'options',
    [
        {'positions': 'full'},
        {'positions': 'grid'},
        {'positions': 'full', 'memory_size': 4, 'num_classes': 3},
    ],
)
def test_psa_gradient_reaches_decoder_and_embedding_head_not_class_head(
    options: dict[str, Any],
) -> None:
    model = decoder_stars()
    inputs = inputs_of(4, 32)
    mask = torch.randint(0, 3, (4, 32, 32), generator=torch.Generator().manual_seed(1))
    loss = PSALoss(n_per_class=16, **options).train()
    for _ in range(2):  # the second call has a filled memory, if any
        model.zero_grad()
        output = model(inputs)
        value = loss(
            output.embeddings,
            mask,
            output.available,
            stride=output.embedding_stride,
            single_view=output.fused_embeddings,
        )
        assert value.item() > 0
        value.backward()
    assert model.embedding_heads is not None
    head = model.embedding_heads.heads[FUSED_VIEW]
    assert all(
        p.grad is not None and float(p.grad.abs().sum()) > 0 for p in head.parameters()
    )
    assert gradient_sum(model.decoder.decoder) > 0
    assert gradient_sum(model.fusion) > 0
    assert gradient_sum(model.specific_encoders) > 0
    # The class head comes after the features PSA reads.
    assert gradient_sum(model.decoder.head) == 0
    if loss.memory is not None:
        assert tuple(loss.memory.shape) == (1, 3, 4, EMBEDDING_DIM)
        assert not loss.memory.requires_grad


def test_single_view_loss_matches_supcon_without_self_pairs() -> None:
    """Two positions of class 0 and one of class 1, one sample, one row.

    Anchors ``a`` and ``b`` each have the other as their only positive and
    ``c`` as negative; ``c`` has no positive and is skipped; no anchor is its
    own candidate.
    """
    tau = 0.5
    z = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    embedding = z.T.reshape(1, 2, 1, 3)
    mask = torch.tensor([[[0, 0, 1]]])
    _, value = single_view_loss(embedding, mask, temperature=tau)
    s = z @ z.T / tau
    loss_a = -s[0, 1] + torch.logsumexp(torch.stack([s[0, 1], s[0, 2]]), 0)
    loss_b = -s[1, 0] + torch.logsumexp(torch.stack([s[1, 0], s[1, 2]]), 0)
    torch.testing.assert_close(value, (loss_a + loss_b) / 2)


def test_single_view_loss_without_positives_is_a_connected_zero() -> None:
    embedding = torch.randn(1, 4, 2, 2, requires_grad=True)
    mask = torch.tensor([[[0, 1], [2, IGNORE]]])
    _, value = single_view_loss(embedding, mask, ignore_index=IGNORE)
    assert value.item() == 0.0
    value.backward()  # type: ignore[no-untyped-call]
    assert embedding.grad is not None
    assert float(embedding.grad.abs().sum()) == 0.0


def test_single_view_loss_is_symmetric_and_finite() -> None:
    """Swapping the samples of the batch leaves the loss as it is."""
    generator = torch.Generator().manual_seed(2)
    embedding = 50 * torch.randn(2, 4, 6, 6, generator=generator)
    mask = torch.randint(0, 3, (2, 6, 6), generator=generator)
    _, value = single_view_loss(embedding, mask, temperature=0.05)
    _, swapped = single_view_loss(embedding.flip(0), mask.flip(0), temperature=0.05)
    assert math.isfinite(value.item())
    assert value.item() > 0
    torch.testing.assert_close(value, swapped)


def test_single_view_uses_only_rows_with_a_modality() -> None:
    generator = torch.Generator().manual_seed(3)
    embedding = torch.randn(2, 4, 4, 4, generator=generator)
    mask = torch.randint(0, 2, (2, 4, 4), generator=generator)
    available = torch.tensor([[False, False], [True, False]])
    loss = PSALoss(n_per_class=1000)
    _, sample_of, features = loss._sample(
        {FUSED_VIEW: embedding}, mask, available, None, None
    )
    assert bool((sample_of == 1).all())
    assert len(features) == 1
    alone = loss({FUSED_VIEW: embedding}, mask, available, single_view=True)
    _, row_1 = single_view_loss(embedding[1:], mask[1:])
    torch.testing.assert_close(alone, row_1)


def test_single_view_refuses_several_views() -> None:
    embeddings = {name: torch.randn(1, 4, 2, 2) for name in MODALITIES}
    mask = torch.zeros(1, 2, 2, dtype=torch.long)
    available = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ConfigurationError, match='single_view'):
        PSALoss()(embeddings, mask, available, single_view=True)
    with pytest.raises(ConfigurationError, match='available'):
        PSALoss()(
            {FUSED_VIEW: torch.randn(2, 4, 2, 2)},
            torch.zeros(2, 2, 2, dtype=torch.long),
            available,
            single_view=True,
        )


def test_balanced_sampling_keeps_a_small_object_on_the_decoder_view() -> None:
    """A 2 x 3 object on a 64 x 64 mask yields samples of its own class."""
    model = decoder_stars()
    output: SegmentationOutput = model(inputs_of(1, 64))
    assert output.embedding_stride == 4
    loss = PSALoss(n_per_class=64, ignore_index=IGNORE, positions='full')
    mask = small_object_mask()
    labels, _, features = loss._sample(
        output.embeddings, mask, output.available, None, output.embedding_stride
    )
    assert int((labels == 1).sum()) == 6  # every object pixel
    assert int((labels == 0).sum()) == 64
    assert not bool((labels == IGNORE).any())
    assert tuple(features[0].shape) == (70, EMBEDDING_DIM)


def test_task_passes_the_fused_view_to_the_psa_loss() -> None:
    task = tiny_task(
        model_kwargs={**TINY_MODEL, 'psa_features': 'decoder'}, psa_positions='full'
    )
    task.model.train()
    generator = torch.Generator().manual_seed(4)
    inputs = {
        name: torch.randn(2, bands, 32, 32, generator=generator)
        for name, bands in task.hparams['modalities'].items()
    }
    mask = torch.randint(0, 6, (2, 32, 32), generator=generator)
    terms = task.compute_losses(task.model(inputs), mask)
    assert terms.psa is not None
    assert terms.psa.item() > 0  # a cross-modal reading of one view gives 0
