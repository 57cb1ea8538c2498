"""PSA options for minority classes: full-resolution positions and a memory."""

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.losses import PSALoss, median_frequency_weights
from torchgeo_stars.losses.psa import _sample_bilinear
from torchgeo_stars.models import STARS

IGNORE = 255
NAMES = ['optical', 'sar']


def small_object_mask() -> Tensor:
    """A 64 x 64 mask: background 0, a 2 x 3 object of class 1, an ignored band.

    The object (rows 2-3, columns 2-4) lies between the pixels that nearest
    resizing to 8 x 8 keeps (rows and columns 0, 8, 16, ...).
    """
    mask = torch.zeros(1, 64, 64, dtype=torch.long)
    mask[0, 40:, :] = IGNORE
    mask[0, 2:4, 2:5] = 1
    return mask


def embeddings_at(
    size: int, batch: int = 1, dim: int = 4, seed: int = 0
) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(batch, dim, size, size, generator=generator) for name in NAMES
    }


def test_full_positions_sample_every_pixel_of_a_small_object() -> None:
    loss = PSALoss(n_per_class=64, ignore_index=IGNORE, positions='full')
    labels, sample_of, features = loss._sample(
        embeddings_at(8),
        small_object_mask(),
        torch.ones(1, 2, dtype=torch.bool),
        None,
        8,
    )
    assert int((labels == 1).sum()) == 6  # all 6 object pixels (fewer than 64)
    assert int((labels == 0).sum()) == 64
    assert not bool((labels == IGNORE).any())
    assert bool((sample_of == 0).all())
    assert [tuple(f.shape) for f in features] == [(70, 4), (70, 4)]


def test_grid_positions_lose_the_small_object() -> None:
    """What ``'full'`` fixes: nearest resizing to the stride-8 grid drops it."""
    loss = PSALoss(n_per_class=64, ignore_index=IGNORE, positions='grid')
    labels, _, _ = loss._sample(
        embeddings_at(8),
        small_object_mask(),
        torch.ones(1, 2, dtype=torch.bool),
        None,
        None,
    )
    assert not bool((labels == 1).any())
    assert not bool((labels == IGNORE).any())


def test_full_positions_never_sample_ignored_pixels() -> None:
    mask = torch.full((2, 64, 64), IGNORE, dtype=torch.long)
    mask[1, 10, 20] = 3
    loss = PSALoss(n_per_class=8, ignore_index=IGNORE, positions='full')
    labels, sample_of, _ = loss._sample(
        embeddings_at(8, batch=2), mask, torch.ones(2, 2, dtype=torch.bool), None, 8
    )
    assert labels.tolist() == [3]
    assert sample_of.tolist() == [1]


def test_bilinear_sampling_reads_pixel_centres() -> None:
    """A map whose channels are the cell's column and row is read as a ramp."""
    height, width, stride = 5, 7, 8
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    ramp = torch.stack([cols, rows])[None].repeat(2, 1, 1, 1)
    ramp[1] += 100  # the second sample is told apart
    y = torch.tensor([0, 3, 4, 20, 39, 12])
    x = torch.tensor([0, 4, 11, 30, 55, 52])
    sample_of = torch.tensor([0, 0, 1, 1, 0, 1])
    got = _sample_bilinear(ramp, sample_of, y, x, (stride, stride))
    # Pixel centre in cell-centre units, clamped to the outermost centres.
    expected_x = ((x + 0.5) / stride - 0.5).clamp(0, width - 1)
    expected_y = ((y + 0.5) / stride - 0.5).clamp(0, height - 1)
    offset = 100.0 * sample_of
    torch.testing.assert_close(got[:, 0], expected_x.double() + offset)
    torch.testing.assert_close(got[:, 1], expected_y.double() + offset)


def test_full_positions_with_a_single_cell_per_object_match_grid_values() -> None:
    """With stride 1 the two position modes read the same vectors."""
    generator = torch.Generator().manual_seed(1)
    embeddings = embeddings_at(16, batch=2)
    mask = torch.randint(0, 3, (2, 16, 16), generator=generator)
    available = torch.ones(2, 2, dtype=torch.bool)
    values = [
        PSALoss(n_per_class=1000, positions=positions)(embeddings, mask, available)
        for positions in ('grid', 'full')
    ]
    torch.testing.assert_close(values[0], values[1])


def test_memory_is_detached_bounded_and_keeps_the_newest() -> None:
    loss = PSALoss(n_per_class=1000, positions='grid', memory_size=3, num_classes=4)
    loss.train()
    mask = torch.zeros(1, 4, 4, dtype=torch.long)
    mask[0, 0, 0] = 2  # one pixel of class 2, fifteen of class 0
    available = torch.ones(1, 2, dtype=torch.bool)
    for step in range(4):
        embeddings = {
            name: tensor.requires_grad_()
            for name, tensor in embeddings_at(4, seed=step).items()
        }
        value = loss(embeddings, mask, available)
        value.backward()
    assert loss.memory is not None
    assert loss.memory_count is not None
    assert tuple(loss.memory.shape) == (2, 4, 3, 4)
    assert not loss.memory.requires_grad
    assert loss.memory.grad_fn is None
    # Class 0: full (3 of the last step's 15); class 2: one per step, the last
    # three steps; classes 1 and 3: never seen.
    assert loss.memory_count.tolist() == [[3, 0, 3, 0], [3, 0, 3, 0]]
    for m, name in enumerate(NAMES):
        last = F.normalize(embeddings[name].detach()[0].reshape(4, -1).T, dim=1)
        for stored in loss.memory[m, 0]:
            assert torch.isclose(last[1:] @ stored, torch.tensor(1.0)).any()
        newest = [
            F.normalize(embeddings_at(4, seed=s)[name][0, :, 0, 0], dim=0)
            for s in (1, 2, 3)
        ]
        stored_2 = loss.memory[m, 2]
        for vector in newest:
            assert torch.isclose(stored_2 @ vector, torch.tensor(1.0)).any()


def test_memory_is_not_updated_in_evaluation_mode() -> None:
    loss = PSALoss(n_per_class=8, memory_size=2, num_classes=3).eval()
    mask = torch.randint(0, 3, (1, 4, 4))
    loss(embeddings_at(4), mask, torch.ones(1, 2, dtype=torch.bool))
    assert loss.memory_count is not None
    assert int(loss.memory_count.sum()) == 0


def test_memory_gives_a_rare_class_contrast_in_a_later_batch() -> None:
    """A class-2 pixel with no partner modality now is contrasted with memory.

    The later batch has optical only: without memory there is no candidate
    at all; with a memory that has seen class 2 in SAR, the class-2 pixel is
    an anchor with positives (gradient), and with a memory that has not, it
    is not one (no gradient: memory entries are candidates, never anchors).
    """
    seen = torch.zeros(2, 4, 4, dtype=torch.long)
    seen[0, 1, 1] = 2
    unseen = torch.zeros(2, 4, 4, dtype=torch.long)
    both = torch.ones(2, 2, dtype=torch.bool)
    optical_only = torch.tensor([[True, False], [True, False]])

    def anchor_gradient(memory_size: int, earlier: Tensor) -> float:
        loss = PSALoss(n_per_class=1000, memory_size=memory_size, num_classes=3).train()
        loss(embeddings_at(4, batch=2, seed=0), earlier, both)  # fills the memory
        embeddings = {
            name: tensor.requires_grad_()
            for name, tensor in embeddings_at(4, batch=2, seed=1).items()
        }
        loss(embeddings, seen, optical_only).backward()
        grad = embeddings['optical'].grad
        assert grad is not None
        return float(grad[0, :, 1, 1].abs().sum())

    assert anchor_gradient(0, seen) == 0.0
    assert anchor_gradient(4, unseen) == 0.0
    assert anchor_gradient(4, seen) > 0.0


def test_memory_holds_one_set_of_modalities() -> None:
    loss = PSALoss(n_per_class=4, memory_size=2, num_classes=3).train()
    mask = torch.randint(0, 3, (1, 4, 4))
    loss(embeddings_at(4), mask, torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ConfigurationError, match='one PSALoss per model'):
        loss(embeddings_at(4, dim=5), mask, torch.ones(1, 2, dtype=torch.bool))
    loss.reset_memory()
    loss(embeddings_at(4, dim=5), mask, torch.ones(1, 2, dtype=torch.bool))


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'positions': 'nearest'}, 'positions'),
        ({'memory_size': -1}, 'memory_size'),
        ({'memory_size': 4}, 'num_classes'),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PSALoss(**kwargs)  # type: ignore[arg-type]


def tiny_stars() -> STARS:
    torch.manual_seed(0)
    return STARS(
        {'optical': 4, 'sar': 2},
        num_classes=3,
        decoder_channels=16,
        decoder_segmentation_channels=32,
        translator_channels=8,
        embedding_dim=8,
    ).train()


def test_model_reports_the_embedding_stride_of_padded_inputs() -> None:
    model = tiny_stars()
    inputs = {'optical': torch.randn(2, 4, 36, 36), 'sar': torch.randn(2, 2, 36, 36)}
    output = model(inputs)
    assert output.embedding_stride == 8  # alignment_level 1
    assert output.embeddings['optical'].shape[-2:] == (5, 5)  # ceil(36 / 8)


@pytest.mark.parametrize(
    'options',
    [
        {'positions': 'full'},
        {'positions': 'full', 'memory_size': 4, 'num_classes': 3},
        {'positions': 'grid', 'memory_size': 4, 'num_classes': 3},
    ],
)
def test_each_option_reaches_heads_and_encoders(options: dict[str, object]) -> None:
    model = tiny_stars()
    inputs = {'optical': torch.randn(4, 4, 36, 36), 'sar': torch.randn(4, 2, 36, 36)}
    mask = torch.randint(0, 3, (4, 36, 36))
    loss = PSALoss(n_per_class=16, **options).train()  # type: ignore[arg-type]
    for _ in range(2):  # the second call has a filled memory
        model.zero_grad()
        output = model(inputs)
        value = loss(
            output.embeddings, mask, output.available, stride=output.embedding_stride
        )
        assert value.item() > 0
        value.backward()
    assert model.embedding_heads is not None
    for name in ('optical', 'sar'):
        head = model.embedding_heads.heads[name]
        assert all(
            p.grad is not None and float(p.grad.abs().sum()) > 0
            for p in head.parameters()
        )
        encoder = model.specific_encoders.encoders[name]
        assert (
            sum(
                float(p.grad.abs().sum())
                for p in encoder.parameters()
                if p.grad is not None
            )
            > 0
        )
    if loss.memory is not None:
        assert loss.memory.grad is None
        assert not loss.memory.requires_grad


def test_median_frequency_weights() -> None:
    assert median_frequency_weights([10, 30, 60, 0]) == pytest.approx(
        [3.0, 1.0, 0.5, 1.0]
    )
    assert median_frequency_weights([10, 40, 90], power=0.5) == pytest.approx(
        [2.0, 1.0, 2 / 3]
    )
    with pytest.raises(ConfigurationError, match='every count is 0'):
        median_frequency_weights([0, 0])
    with pytest.raises(ConfigurationError, match='non-negative'):
        median_frequency_weights([1, -1])
    with pytest.raises(ConfigurationError, match='power'):
        median_frequency_weights([1, 1], power=-1.0)
