"""PSA: pixel-level semantic sampling alignment loss of STARS."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigurationError
from .sampling import class_balanced_sample, random_sample


def _downsample_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of integer labels.

    Args:
        mask: Labels ``(B, H, W)``.
        size: Target ``(h, w)``.

    Returns:
        Labels ``(B, h, w)``, same dtype.
    """
    if tuple(mask.shape[-2:]) == size:
        return mask
    # float64 holds every int32 label exactly (and every realistic int64 one).
    resized = F.interpolate(mask[:, None].double(), size=size, mode='nearest')
    return resized[:, 0].to(mask.dtype)


class PSALoss(nn.Module):
    r"""Cross-modality supervised contrastive loss on sampled pixels.

    1. ``mask`` is resized (nearest) to the embeddings' ``(h, w)``.
    2. Pixel positions are drawn over the whole batch with
       :func:`class_balanced_sample` (``sampling='balanced'``: up to
       ``n_per_class`` per class present) or :func:`random_sample`
       (``'random'``: uniform, same total), never at ``ignore_index`` nor in a
       sample with no modality available.
    3. Each modality's embedding is gathered at those positions and
       L2-normalised, :math:`z_m(p)`. A position counts for modality ``m``
       only if its sample has ``m``.
    4. For every ordered pair ``(i, j)`` of distinct modalities and every
       anchor ``p`` present in ``i``, the candidates :math:`C_j` are the
       sampled positions present in ``j`` (``p`` itself included when its
       sample has ``j``), its positives :math:`P_j(p) \subseteq C_j` those of
       the same class, the other candidates its negatives. With
       :math:`s(p, q) = z_i(p) \cdot z_j(q) / \tau`,

       .. math::

           \ell_{ij}(p) = -\frac{1}{|P_j(p)|} \sum_{q \in P_j(p)}
           \log \frac{\exp s(p, q)}{\sum_{q' \in C_j} \exp s(p, q')}

       (SupCon with the positives averaged outside the log, computed as
       ``logsumexp - mean of positive logits``). Anchors without any positive
       in ``j`` are skipped.
    5. The loss is the mean of :math:`\ell_{ij}(p)` over all valid
       ``(i, j, p)`` terms; both ``(i, j)`` and ``(j, i)`` enter, so it is
       symmetric over modality pairs.

    When fewer than two modalities are available anywhere, or no anchor has a
    positive, the loss is a zero still connected to the embeddings' graph.
    Steps 3-5 run in float32 with autocast off, also under mixed precision.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        n_per_class: int = 128,
        temperature: float = 0.1,
        sampling: Literal['balanced', 'random'] = 'balanced',
        ignore_index: int | None = None,
    ) -> None:
        r"""Initialise the loss.

        Args:
            n_per_class: Pixels drawn per class present in the batch (the
                total for ``'random'`` is what ``'balanced'`` would draw).
            temperature: Softmax temperature :math:`\tau` (> 0).
            sampling: ``'balanced'`` (class-balanced, STARS) or ``'random'``
                (uniform, the ablation).
            ignore_index: Label never sampled, if any.

        Raises:
            ConfigurationError: If a parameter is out of range.
        """
        super().__init__()
        if n_per_class < 1:
            raise ConfigurationError(
                f'PSALoss: n_per_class is {n_per_class}; give a number >= 1.'
            )
        if not temperature > 0:
            raise ConfigurationError(
                f'PSALoss: temperature is {temperature}; give a number > 0.'
            )
        if sampling not in ('balanced', 'random'):
            raise ConfigurationError(
                f"PSALoss: sampling is {sampling!r}; give 'balanced' or 'random'."
            )
        self.n_per_class = n_per_class
        self.temperature = temperature
        self.sampling = sampling
        self.ignore_index = ignore_index

    def forward(
        self,
        embeddings: dict[str, Tensor],
        mask: Tensor,
        available: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            embeddings: Modality name to pixel embeddings ``(B, D, h, w)``, all
                of one shape; the dict's key order is the modality order of
                ``available``.
            mask: Integer labels ``(B, H, W)`` at any resolution.
            available: Boolean ``(B, M)`` availability, columns in the order
                of ``embeddings``.
            generator: Random source for the pixel sampling; the global one
                when ``None``.

        Returns:
            Scalar loss.

        Raises:
            ConfigurationError: If the shapes of ``embeddings``, ``mask`` and
                ``available`` do not agree.
        """
        names = list(embeddings)
        if not names:
            raise ConfigurationError(
                'PSALoss: embeddings is empty; give one entry per modality.'
            )
        first = embeddings[names[0]]
        zero = first.flatten()[:0].sum()  # a zero connected to the graph
        if first.ndim != 4:
            raise ConfigurationError(
                f'PSALoss: embeddings[{names[0]!r}] has shape {tuple(first.shape)};'
                ' give (B, D, h, w).'
            )
        for name in names:
            if embeddings[name].shape != first.shape:
                raise ConfigurationError(
                    f'PSALoss: embeddings[{name!r}] has shape'
                    f' {tuple(embeddings[name].shape)} but embeddings[{names[0]!r}]'
                    f' has {tuple(first.shape)}; give all at one shape.'
                )
        batch, _, height, width = first.shape
        if available.shape != (batch, len(names)):
            raise ConfigurationError(
                f'PSALoss: available has shape {tuple(available.shape)}; give'
                f' ({batch}, {len(names)}), one column per modality {names}.'
            )
        if mask.ndim == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if mask.ndim != 3 or mask.shape[0] != batch:
            raise ConfigurationError(
                f'PSALoss: mask has shape {tuple(mask.shape)}; give ({batch}, H, W).'
            )
        if len(names) < 2:
            return zero

        available = available.bool()
        labels = _downsample_mask(mask, (height, width))
        valid = available.any(dim=1)[:, None, None].expand_as(labels)
        sampler = (
            class_balanced_sample if self.sampling == 'balanced' else random_sample
        )
        index = sampler(labels, self.n_per_class, self.ignore_index, generator, valid)
        sampled_labels = labels.reshape(-1)[index]
        sample_of = index // (height * width)
        same_class = sampled_labels[:, None] == sampled_labels[None, :]

        with torch.autocast(first.device.type, enabled=False):
            return self._contrast(
                embeddings, index, same_class, available[sample_of].T, zero
            )

    def _contrast(
        self,
        embeddings: dict[str, Tensor],
        index: Tensor,
        same_class: Tensor,
        present: Tensor,
        zero: Tensor,
    ) -> Tensor:
        """The InfoNCE terms of step 3-5 on the sampled positions, in float32.

        The caller turns autocast off: in bfloat16 the cosine logits divided
        by a temperature of 0.1 keep only two or three significant digits and
        the log-sum-exp loses the small differences the loss is made of, so
        the embeddings are upcast to float32 (float64 stays float64).

        Args:
            embeddings: Modality name to pixel embeddings ``(B, D, h, w)``.
            index: Flat positions of the sampled pixels ``(N,)``.
            same_class: Whether two sampled pixels share a class ``(N, N)``.
            present: Whether each sampled pixel's sample has each modality
                ``(M, N)``.
            zero: A zero connected to the embeddings' graph.

        Returns:
            Scalar loss.
        """
        names = list(embeddings)
        first = embeddings[names[0]]
        dtype = torch.promote_types(first.dtype, torch.float32)
        features = []
        for name in names:
            flat = embeddings[name].permute(0, 2, 3, 1).reshape(-1, first.shape[1])
            features.append(F.normalize(flat[index].to(dtype), dim=1))
        # A finite stand-in for -inf keeps rows without candidates finite, so
        # their (masked) gradients are zeros rather than NaN.
        fill = torch.finfo(dtype).min / 4

        total = zero.to(dtype)
        count = torch.zeros((), dtype=torch.long, device=first.device)
        for i in range(len(names)):
            for j in range(len(names)):
                if i == j:
                    continue
                logits = features[i] @ features[j].T / self.temperature
                candidate = present[j][None, :]
                positive = present[i][:, None] & candidate & same_class
                n_positive = positive.sum(dim=1)
                log_norm = torch.logsumexp(logits.masked_fill(~candidate, fill), dim=1)
                mean_positive = (logits * positive).sum(dim=1) / n_positive.clamp_min(1)
                anchor = n_positive > 0
                total = total + torch.where(anchor, log_norm - mean_positive, 0.0).sum()
                count = count + anchor.sum()
        return total / count.clamp_min(1)
