"""Geometric augmentation applied identically to every modality and the mask."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..datasets.keys import MASK, image_key
from ..errors import ConfigurationError


def _where(condition: Tensor, changed: Tensor, unchanged: Tensor) -> Tensor:
    """Pick *changed* for the samples where *condition* (shape ``(B,)``) holds.

    Args:
        condition: Boolean per-sample flags.
        changed: Transformed batch.
        unchanged: Original batch, same shape as *changed*.

    Returns:
        The per-sample selection.
    """
    flags = condition.to(changed.device).view(-1, *([1] * (changed.dim() - 1)))
    return torch.where(flags, changed, unchanged)


class JointFlipRotate(nn.Module):
    """Random flips and quarter turns shared by all image keys and the mask.

    Each sample of a batch draws its own transform: a horizontal flip and a
    vertical flip (each with probability *p_flip*), then, with probability
    *p_rotate*, a counter-clockwise turn of 90, 180 or 270 degrees (equally
    likely; only 180 degrees for non-square patches, which must keep their
    shape). The same transform is applied to every modality's image and to
    the mask of that sample, so they stay pixel-aligned.

    Pixels are only moved (:func:`torch.flip`, :func:`torch.rot90`), never
    interpolated, so values and dtypes are kept exactly: labels stay exact
    integers. (Kornia's ``RandomRotation90`` warps with bilinear
    interpolation and draws 180 degrees twice as often as the other turns,
    hence this module.) Random numbers come from torch's global generator, so
    :func:`lightning.seed_everything` makes them reproducible. ``bounds`` and
    ``transform`` are left alone: they describe the window before
    augmentation.

    .. versionadded:: 0.1
    """

    def __init__(self, p_flip: float = 0.5, p_rotate: float = 0.5) -> None:
        """Initialise the augmentation.

        Args:
            p_flip: Probability of each of the horizontal and vertical flips.
            p_rotate: Probability of a random quarter turn (90, 180 or 270
                degrees).

        Raises:
            ConfigurationError: If a probability is not in [0, 1].
        """
        super().__init__()
        for name, value in (('p_flip', p_flip), ('p_rotate', p_rotate)):
            if not 0 <= value <= 1:
                raise ConfigurationError(
                    f'JointFlipRotate: {name} must be a probability in [0, 1], '
                    f'got {value}.'
                )
        self.p_flip = p_flip
        self.p_rotate = p_rotate

    def forward(
        self, batch: dict[str, Tensor], image_keys: Sequence[str]
    ) -> dict[str, Tensor]:
        """Transform the image keys and the mask of a batch.

        Args:
            batch: Batched sample with ``(B, C, H, W)`` images and an optional
                ``(B, H, W)`` mask.
            image_keys: Keys of the images to transform (keys missing from
                *batch* are skipped).

        Returns:
            A new batch dictionary with the transformed tensors; other keys are
            passed through.

        Raises:
            ValueError: If the images and the mask do not share batch size,
                height and width.
        """
        keys = [key for key in image_keys if key in batch]
        if MASK in batch:
            keys.append(MASK)
        if not keys:
            return dict(batch)
        shape = batch[keys[0]].shape
        size, height, width = shape[0], shape[-2], shape[-1]
        for key in keys:
            other = batch[key].shape
            if (other[0], other[-2], other[-1]) != (size, height, width):
                raise ValueError(
                    f'JointFlipRotate: {key} has shape {tuple(other)} but '
                    f'{keys[0]} has {tuple(shape)}; every image and the mask '
                    'need the same batch size, height and width.'
                )

        hflip = torch.rand(size) < self.p_flip
        vflip = torch.rand(size) < self.p_flip
        rotate = torch.rand(size) < self.p_rotate
        if height == width:
            turns = torch.randint(1, 4, (size,)) * rotate
        else:
            turns = 2 * rotate.long()

        out = dict(batch)
        for key in keys:
            value = batch[key]
            value = _where(hflip, value.flip(-1), value)
            value = _where(vflip, value.flip(-2), value)
            rotated = value
            for k in (1, 2, 3):
                if bool((turns == k).any()):
                    turned = torch.rot90(value, k, dims=(-2, -1))
                    rotated = _where(turns == k, turned, rotated)
            out[key] = rotated
        return out


def normalize_and_augment(
    batch: dict[str, Tensor],
    normalize: nn.Module | None,
    augmentation: JointFlipRotate | None,
    modalities: Sequence[str],
    training: bool,
) -> dict[str, Tensor]:
    """A batch on its device as the datamodules hand it to the model.

    Every modality is normalised (*normalize*, moved to the batch's device);
    in training the images and labels are augmented together.

    Args:
        batch: A collated batch on its device.
        normalize: The per-modality normaliser, or None.
        augmentation: The joint augmentation, or None.
        modalities: Modality names whose images are augmented.
        training: Whether the trainer is fitting (augment) or not.

    Returns:
        The transformed batch.
    """
    if normalize is not None:
        normalize.to(next(iter(batch.values())).device)
        batch = normalize(batch)
    if augmentation is not None and training:
        batch = augmentation(batch, [image_key(name) for name in modalities])
    return batch
