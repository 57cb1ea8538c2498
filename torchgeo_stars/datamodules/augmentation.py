"""Geometric augmentation applied identically to every modality and the mask."""

from collections.abc import Sequence

import kornia.augmentation as K
import torch
from torch import Tensor, nn


class JointFlipRotate(nn.Module):
    """Random flips and 90-degree rotations shared by all image keys and the mask.

    The images of every modality and the mask of a sample are stacked along
    the channel dimension, transformed together by kornia, and split again, so
    they stay pixel-aligned. Flips and quarter turns move pixels without
    interpolation, so labels stay exact. Samples are drawn independently
    within a batch.
    """

    def __init__(self, p_flip: float = 0.5, p_rotate: float = 0.5) -> None:
        """Initialise the augmentation.

        Args:
            p_flip: Probability of each of the horizontal and vertical flips.
            p_rotate: Probability of a random quarter turn (90, 180 or 270 degrees).
        """
        super().__init__()
        self.augment = K.AugmentationSequential(
            K.RandomHorizontalFlip(p=p_flip),
            K.RandomVerticalFlip(p=p_flip),
            K.RandomRotation90(times=(1, 3), p=p_rotate),
            data_keys=['input'],
        )

    def forward(
        self, batch: dict[str, Tensor], image_keys: Sequence[str]
    ) -> dict[str, Tensor]:
        """Transform the image keys and the mask of a batch.

        Args:
            batch: Batched sample with ``(B, C, H, W)`` images and an optional
                ``(B, H, W)`` mask.
            image_keys: Keys of the images to transform.

        Returns:
            A new batch dictionary with the transformed tensors.
        """
        keys = [key for key in image_keys if key in batch]
        if not keys:
            return batch
        parts = [batch[key].float() for key in keys]
        has_mask = 'mask' in batch
        if has_mask:
            parts.append(batch['mask'][:, None].float())
        stacked = torch.cat(parts, dim=1)
        transformed = self.augment(stacked)
        out = dict(batch)
        start = 0
        for key, part in zip(keys, parts, strict=False):
            stop = start + part.shape[1]
            out[key] = transformed[:, start:stop].to(batch[key].dtype)
            start = stop
        if has_mask:
            out['mask'] = transformed[:, start].round().to(batch['mask'].dtype)
        return out
