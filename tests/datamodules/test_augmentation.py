"""JointFlipRotate: one rigid transform per sample, shared by every key."""

import pytest
import torch
from torch import Tensor

from torchgeo_stars.datamodules import JointFlipRotate
from torchgeo_stars.errors import ConfigurationError

KEYS = ('image_optical', 'image_sar')


def dihedral(grid: Tensor) -> list[Tensor]:
    """The 8 flips / quarter turns of an (H, W) grid."""
    out: list[Tensor] = []
    for flipped in (grid, grid.flip(-1)):
        out.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return out


def position_batch(size: int, height: int = 8, width: int = 8) -> dict[str, Tensor]:
    """Every key encodes the pixel's position (row * width + col), per sample."""
    ids = torch.arange(height * width).view(height, width)
    ids = ids + 1000 * torch.arange(size).view(size, 1, 1)  # sample-specific
    optical = torch.stack([ids + 100_000 * c for c in range(4)], dim=1).float()
    sar = -ids[:, None].float()
    return {
        'image_optical': optical,
        'image_sar': sar,
        'mask': ids.long(),
        'available': torch.ones(size, 2, dtype=torch.bool),
        'bounds': torch.rand(size, 9),
    }


def turns_of(before: Tensor, after: Tensor) -> int:
    """Quarter turns k with after == rot90(before, k) (-1 if none)."""
    for k in range(4):
        if torch.equal(torch.rot90(before, k, dims=(-2, -1)), after):
            return k
    return -1


def test_modalities_and_mask_stay_pixel_aligned() -> None:
    torch.manual_seed(0)
    batch = position_batch(32)
    out = JointFlipRotate(p_flip=0.5, p_rotate=0.5)(batch, KEYS)
    mask = out['mask']
    assert mask.dtype == torch.int64
    assert mask.shape == batch['mask'].shape
    for c in range(4):
        assert torch.equal(out['image_optical'][:, c] - 100_000 * c, mask.float())
    assert torch.equal(-out['image_sar'][:, 0], mask.float())
    # Each sample is one rigid transform of its own grid, not any permutation
    for before, after in zip(batch['mask'], mask, strict=True):
        assert any(torch.equal(after, option) for option in dihedral(before))


def test_samples_draw_their_own_transform_and_all_occur() -> None:
    torch.manual_seed(1)
    batch = position_batch(200)
    out = JointFlipRotate(p_flip=0.5, p_rotate=0.5)(batch, KEYS)
    seen = set()
    for before, after in zip(batch['mask'], out['mask'], strict=True):
        options = dihedral(before)
        seen.add(next(i for i, o in enumerate(options) if torch.equal(after, o)))
    assert seen == set(range(8))


def test_p_one_flips_every_sample() -> None:
    torch.manual_seed(2)
    batch = position_batch(16)
    out = JointFlipRotate(p_flip=1.0, p_rotate=0.0)(batch, KEYS)
    # Horizontal and vertical flip together: a half turn
    for key in (*KEYS, 'mask'):
        assert torch.equal(out[key], torch.rot90(batch[key], 2, dims=(-2, -1)))


def test_p_one_rotates_every_sample_by_uniform_quarter_turns() -> None:
    torch.manual_seed(3)
    batch = position_batch(600)
    out = JointFlipRotate(p_flip=0.0, p_rotate=1.0)(batch, KEYS)
    turns = torch.tensor(
        [turns_of(b, a) for b, a in zip(batch['mask'], out['mask'], strict=True)]
    )
    assert set(turns.tolist()) == {1, 2, 3}  # never the identity, never a flip
    counts = torch.bincount(turns, minlength=4)[1:].float() / len(turns)
    assert torch.all((counts > 0.27) & (counts < 0.40)), counts


def test_p_zero_is_a_no_op() -> None:
    batch = position_batch(8)
    out = JointFlipRotate(p_flip=0.0, p_rotate=0.0)(batch, KEYS)
    assert out.keys() == batch.keys()
    for key, value in batch.items():
        assert torch.equal(out[key], value)
        assert out[key].dtype == value.dtype


def test_other_keys_pass_through_and_missing_keys_are_skipped() -> None:
    torch.manual_seed(4)
    batch = position_batch(8)
    del batch['image_sar']
    out = JointFlipRotate(p_flip=1.0, p_rotate=1.0)(batch, KEYS)
    assert 'image_sar' not in out
    assert out['bounds'] is batch['bounds']
    assert out['available'] is batch['available']
    assert not torch.equal(out['mask'], batch['mask'])


def test_without_mask() -> None:
    torch.manual_seed(5)
    batch = position_batch(8)
    del batch['mask']
    out = JointFlipRotate(p_flip=0.5, p_rotate=0.5)(batch, KEYS)
    assert 'mask' not in out
    assert torch.equal(-out['image_sar'][:, 0], out['image_optical'][:, 0])


def test_non_square_patches_keep_their_shape() -> None:
    torch.manual_seed(6)
    batch = position_batch(8, height=6, width=10)
    out = JointFlipRotate(p_flip=0.0, p_rotate=1.0)(batch, KEYS)
    for key in (*KEYS, 'mask'):
        assert out[key].shape == batch[key].shape
        assert torch.equal(out[key], torch.rot90(batch[key], 2, dims=(-2, -1)))


@pytest.mark.parametrize(('p_flip', 'p_rotate'), [(-0.1, 0.5), (0.5, 1.5)])
def test_bad_probability(p_flip: float, p_rotate: float) -> None:
    with pytest.raises(ConfigurationError, match=r'p_flip|p_rotate'):
        JointFlipRotate(p_flip=p_flip, p_rotate=p_rotate)


def test_mismatched_shapes() -> None:
    batch = position_batch(4)
    batch['mask'] = batch['mask'][:, :4]
    with pytest.raises(ValueError, match='mask'):
        JointFlipRotate()(batch, KEYS)
