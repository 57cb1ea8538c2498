"""PSA: pixel-level semantic sampling alignment loss of STARS."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigurationError
from .sampling import _class_ranks, class_balanced_sample, random_sample


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


def _sample_bilinear(
    embedding: Tensor,
    sample_of: Tensor,
    rows: Tensor,
    cols: Tensor,
    stride: tuple[float, float],
) -> Tensor:
    """Bilinearly sample an embedding map at full-resolution pixel centres.

    The map's cell ``(r, c)`` covers input pixels ``[r * stride, (r + 1) *
    stride)``, so pixel ``(y, x)``'s centre lies at ``(y + 0.5) / stride`` in
    cell units; :func:`torch.nn.functional.grid_sample` with
    ``align_corners=False`` reads that convention. Positions past the last
    cell centre take the border value.

    Args:
        embedding: ``(B, D, h, w)`` map.
        sample_of: ``(N,)`` batch index of each position.
        rows: ``(N,)`` pixel rows in the full-resolution mask.
        cols: ``(N,)`` pixel columns.
        stride: Input pixels per map cell, ``(vertical, horizontal)``.

    Returns:
        ``(N, D)`` sampled vectors.
    """
    _, _, height, width = embedding.shape
    dtype = torch.promote_types(embedding.dtype, torch.float32)
    x = 2 * (cols.to(dtype) + 0.5) / (stride[1] * width) - 1
    y = 2 * (rows.to(dtype) + 0.5) / (stride[0] * height) - 1
    points = torch.stack([x, y], dim=1)  # grid_sample's (x, y) order
    # Every sample's map is read at all N positions and each position keeps
    # its own sample's value: one call, no per-sample grouping; the B x N
    # reads cost little next to the network (N is a few hundred).
    grid = points[None, None].expand(embedding.shape[0], 1, -1, -1)
    sampled = F.grid_sample(
        embedding.to(dtype),
        grid,
        mode='bilinear',
        padding_mode='border',
        align_corners=False,
    )  # (B, D, 1, N)
    position = torch.arange(sample_of.numel(), device=sample_of.device)
    return sampled[sample_of, :, 0, position]


class PSALoss(nn.Module):
    r"""Cross-modality supervised contrastive loss on sampled pixels.

    1. Pixel positions are drawn over the whole batch with
       :func:`class_balanced_sample` (``sampling='balanced'``: up to
       ``n_per_class`` per class present) or :func:`random_sample`
       (``'random'``: uniform, same total), never at ``ignore_index`` nor in a
       sample with no modality available. Where they are drawn depends on
       *positions*:

       * ``'grid'``: ``mask`` is resized (nearest) to the embeddings'
         ``(h, w)`` and positions are cells of that grid, each modality's
         embedding gathered at them;
       * ``'full'``: positions are pixels of the full-resolution ``mask`` and
         each modality's embedding map is sampled bilinearly at their centres
         (``grid_sample``), so an object smaller than a cell still yields
         samples with its own label.

    2. The gathered embeddings are L2-normalised, :math:`z_m(p)`. A position
       counts for modality ``m`` only if its sample has ``m``.
    3. For every ordered pair ``(i, j)`` of distinct modalities and every
       anchor ``p`` present in ``i``, the candidates :math:`C_j` are the
       sampled positions present in ``j`` (``p`` itself included when its
       sample has ``j``), plus, with a memory (*memory_size* > 0), the
       embeddings of ``j`` kept from earlier steps; its positives
       :math:`P_j(p) \subseteq C_j` are those of the same class, the other
       candidates its negatives. With
       :math:`s(p, q) = z_i(p) \cdot z_j(q) / \tau`,

       .. math::

           \ell_{ij}(p) = -\frac{1}{|P_j(p)|} \sum_{q \in P_j(p)}
           \log \frac{\exp s(p, q)}{\sum_{q' \in C_j} \exp s(p, q')}

       (SupCon with the positives averaged outside the log, computed as
       ``logsumexp - mean of positive logits``). Anchors without any positive
       in ``j`` are skipped.
    4. The loss is the mean of :math:`\ell_{ij}(p)` over all valid
       ``(i, j, p)`` terms; both ``(i, j)`` and ``(j, i)`` enter, so it is
       symmetric over modality pairs.

    *Single view* (``single_view=True``, what STARS gives with
    ``psa_features='decoder'``: one embedding map of the fused features the
    class head reads, not one per modality): there is no modality pair, so
    the view is contrasted with itself, the supervised contrastive loss of
    Khosla et al. (2020). A position counts where its sample has any
    modality. Every sampled position ``p`` is an anchor, its candidates
    :math:`C(p)` are the other sampled positions (``p`` itself excluded) and
    the view's memory, its positives :math:`P(p) \subseteq C(p)` those of
    the same class; with :math:`s(p, q) = z(p) \cdot z(q) / \tau`,

    .. math::

        \ell(p) = -\frac{1}{|P(p)|} \sum_{q \in P(p)}
        \log \frac{\exp s(p, q)}{\sum_{q' \in C(p)} \exp s(p, q')},

    and the loss is the mean over the anchors with a positive. This is the
    cross-modal term with ``i = j`` and the self-pair removed, computed by
    the same code.

    The memory keeps, per modality and class, the *memory_size* most recent
    sampled embeddings (detached: no gradient reaches them or flows through
    them). It is filled in training mode only, after the loss is computed, so
    a class present in few batches still has positives and negatives in later
    steps. It is not saved in checkpoints (it is rebuilt within a few steps).

    When fewer than two modalities are available anywhere (cross-modal), or
    no anchor has a positive, the loss is a zero still connected to the
    embeddings' graph.
    Steps 3-5 run in float32 with autocast off, also under mixed precision.

    .. versionadded:: 0.1
    """

    memory: Tensor | None
    memory_count: Tensor | None
    memory_next: Tensor | None

    def __init__(
        self,
        n_per_class: int = 128,
        temperature: float = 0.1,
        sampling: Literal['balanced', 'random'] = 'balanced',
        ignore_index: int | None = None,
        positions: Literal['grid', 'full'] = 'grid',
        memory_size: int = 0,
        num_classes: int | None = None,
    ) -> None:
        r"""Initialise the loss.

        Args:
            n_per_class: Pixels drawn per class present in the batch (the
                total for ``'random'`` is what ``'balanced'`` would draw).
            temperature: Softmax temperature :math:`\tau` (> 0).
            sampling: ``'balanced'`` (class-balanced, STARS) or ``'random'``
                (uniform, the ablation).
            ignore_index: Label never sampled, if any.
            positions: ``'grid'`` (labels nearest-resized to the embeddings'
                grid) or ``'full'`` (positions on the full-resolution mask,
                embeddings sampled bilinearly there).
            memory_size: Embeddings kept per modality and class from earlier
                steps as extra candidates (0: no memory).
            num_classes: Number of classes; needed when *memory_size* > 0
                (labels outside ``[0, num_classes)`` are not remembered).

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
        if positions not in ('grid', 'full'):
            raise ConfigurationError(
                f"PSALoss: positions is {positions!r}; give 'grid' or 'full'."
            )
        if memory_size < 0:
            raise ConfigurationError(
                f'PSALoss: memory_size is {memory_size}; give a number >= 0.'
            )
        if memory_size > 0 and (num_classes is None or num_classes < 1):
            raise ConfigurationError(
                f'PSALoss: memory_size is {memory_size} but num_classes is'
                f' {num_classes}; give the number of classes (>= 1).'
            )
        self.n_per_class = n_per_class
        self.temperature = temperature
        self.sampling = sampling
        self.ignore_index = ignore_index
        self.positions = positions
        self.memory_size = memory_size
        self.num_classes = num_classes
        # Built at the first call, when the modalities and D are known.
        self.register_buffer('memory', None, persistent=False)
        self.register_buffer('memory_count', None, persistent=False)
        self.register_buffer('memory_next', None, persistent=False)

    def forward(
        self,
        embeddings: dict[str, Tensor],
        mask: Tensor,
        available: Tensor,
        generator: torch.Generator | None = None,
        stride: float | None = None,
        single_view: bool = False,
    ) -> Tensor:
        """Compute the loss (and, in training mode, update the memory).

        Args:
            embeddings: Modality name to pixel embeddings ``(B, D, h, w)``, all
                of one shape; the dict's key order is the modality order of
                ``available``. With *single_view*, exactly one entry.
            mask: Integer labels ``(B, H, W)`` at any resolution.
            available: Boolean ``(B, M)`` availability, columns in the order
                of ``embeddings``; with *single_view*, of the model's
                modalities (any ``M``): only rows with none are left out.
            generator: Random source for the pixel sampling; the global one
                when ``None``.
            stride: Input pixels per embedding cell, for ``positions='full'``
                (the model's :attr:`SegmentationOutput.embedding_stride`);
                None: the map spans the mask exactly (``H / h``).
            single_view: Whether *embeddings* is one view to contrast within
                itself (the model's
                :attr:`~torchgeo_stars.models.SegmentationOutput.fused_embeddings`)
                rather than one view per modality.

        Returns:
            Scalar loss.

        Raises:
            ConfigurationError: If the shapes of ``embeddings``, ``mask`` and
                ``available`` do not agree, or the memory was built for
                other modalities or another ``D``.
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
        if single_view and len(names) != 1:
            raise ConfigurationError(
                f'PSALoss: single_view is set but embeddings has {len(names)}'
                f' entries {names}; give the one fused view.'
            )
        for name in names:
            if embeddings[name].shape != first.shape:
                raise ConfigurationError(
                    f'PSALoss: embeddings[{name!r}] has shape'
                    f' {tuple(embeddings[name].shape)} but embeddings[{names[0]!r}]'
                    f' has {tuple(first.shape)}; give all at one shape.'
                )
        batch = first.shape[0]
        columns = available.shape[-1] if single_view else len(names)
        if available.ndim != 2 or available.shape != (batch, columns):
            wanted = (
                f'({batch}, M), one column per modality of the model'
                if single_view
                else f'({batch}, {len(names)}), one column per modality {names}'
            )
            raise ConfigurationError(
                f'PSALoss: available has shape {tuple(available.shape)}; give {wanted}.'
            )
        if mask.ndim == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if mask.ndim != 3 or mask.shape[0] != batch:
            raise ConfigurationError(
                f'PSALoss: mask has shape {tuple(mask.shape)}; give ({batch}, H, W).'
            )
        if len(names) < 2 and not single_view:
            return zero

        available = available.bool()
        # In float32 with autocast off: in bfloat16 the cosine logits divided by
        # a temperature of 0.1 keep two or three significant digits, and the
        # log-sum-exp loses the small differences the loss is made of.
        with torch.autocast(first.device.type, enabled=False):
            sampled_labels, sample_of, features = self._sample(
                embeddings, mask, available, generator, stride
            )
            if single_view:  # the fused view exists where any modality does
                present = available.any(dim=1)[sample_of][None]  # (1, N)
            else:
                present = available[sample_of].T  # (M, N)
            memory = self._memory(names, first.shape[1], first.device)
            loss = self._contrast(
                features, sampled_labels, present, memory, zero, single_view
            )
        if memory is not None and self.training:
            self._remember(features, sampled_labels, present)
        return loss

    def _sample(
        self,
        embeddings: dict[str, Tensor],
        mask: Tensor,
        available: Tensor,
        generator: torch.Generator | None,
        stride: float | None,
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Draw positions and gather every modality's normalised embedding there.

        Args:
            embeddings: As in :meth:`forward`.
            mask: ``(B, H, W)`` labels.
            available: Boolean ``(B, M)``.
            generator: Random source.
            stride: Input pixels per embedding cell (``'full'`` only).

        Returns:
            Labels ``(N,)`` and batch index ``(N,)`` of the positions, and per
            modality the L2-normalised embeddings ``(N, D)``.
        """
        first = next(iter(embeddings.values()))
        _, dim, height, width = first.shape
        labels = (
            mask
            if self.positions == 'full'
            else _downsample_mask(mask, (height, width))
        )
        valid = available.any(dim=1)[:, None, None].expand_as(labels)
        sampler = (
            class_balanced_sample if self.sampling == 'balanced' else random_sample
        )
        index = sampler(labels, self.n_per_class, self.ignore_index, generator, valid)
        sampled_labels = labels.reshape(-1)[index]
        rows_h, cols_w = labels.shape[-2:]
        sample_of = index // (rows_h * cols_w)
        dtype = torch.promote_types(first.dtype, torch.float32)
        features = []
        if self.positions == 'full':
            within = index % (rows_h * cols_w)
            scale = (
                (float(stride), float(stride))
                if stride is not None
                else (rows_h / height, cols_w / width)
            )
            for embedding in embeddings.values():
                vectors = _sample_bilinear(
                    embedding, sample_of, within // cols_w, within % cols_w, scale
                )
                features.append(F.normalize(vectors.to(dtype), dim=1))
        else:
            for embedding in embeddings.values():
                flat = embedding.permute(0, 2, 3, 1).reshape(-1, dim)
                features.append(F.normalize(flat[index].to(dtype), dim=1))
        return sampled_labels, sample_of, features

    def _memory(
        self, names: list[str], dim: int, device: torch.device
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """The memory's embeddings, labels and fill flags, built if needed.

        Args:
            names: Modality names of this call.
            dim: Embedding size ``D``.
            device: Device of the embeddings.

        Returns:
            ``(M, K * Q, D)`` embeddings, ``(K * Q,)`` labels and ``(M, K *
            Q)`` flags of filled slots; None without a memory.

        Raises:
            ConfigurationError: If the memory holds another number of
                modalities or another ``D``.
        """
        if self.memory_size == 0 or self.num_classes is None:
            return None
        shape = (len(names), self.num_classes, self.memory_size, dim)
        if self.memory is None or self.memory_count is None:
            self.memory = torch.zeros(shape, device=device)
            self.memory_count = torch.zeros(shape[:2], dtype=torch.long, device=device)
            self.memory_next = torch.zeros(shape[:2], dtype=torch.long, device=device)
        if tuple(self.memory.shape) != shape:
            raise ConfigurationError(
                f'PSALoss: the memory holds {tuple(self.memory.shape)} (modalities,'
                f' classes, size, D) but this call gives {shape}; use one PSALoss'
                ' per model.'
            )
        slots = torch.arange(self.memory_size, device=device)
        filled = slots[None, None, :] < self.memory_count[:, :, None]  # (M, K, Q)
        labels = torch.arange(self.num_classes, device=device)
        labels = labels[:, None].expand(-1, self.memory_size).reshape(-1)
        return (
            self.memory.reshape(len(names), -1, dim),
            labels,
            filled.reshape(len(names), -1),
        )

    def _contrast(
        self,
        features: list[Tensor],
        labels: Tensor,
        present: Tensor,
        memory: tuple[Tensor, Tensor, Tensor] | None,
        zero: Tensor,
        single_view: bool,
    ) -> Tensor:
        """The SupCon mean over view pairs and anchors.

        Args:
            features: Per view (modality), ``(N, D)`` normalised embeddings.
            labels: ``(N,)`` labels of the positions.
            present: Boolean ``(M, N)``: the position's sample has the view.
            memory: What :meth:`_memory` returns, or None.
            zero: A zero connected to the embeddings' graph.
            single_view: Contrast the one view with itself, each anchor's own
                position excluded from its candidates, instead of every
                ordered pair of distinct views.

        Returns:
            Scalar loss.
        """
        dtype = features[0].dtype
        same_class = labels[:, None] == labels[None, :]
        if memory is not None:
            remembered, memory_labels, filled = memory
            same_class = torch.cat(
                [same_class, labels[:, None] == memory_labels[None, :]], dim=1
            )
        # A finite stand-in for -inf keeps rows without candidates finite, so
        # their (masked) gradients are zeros rather than NaN.
        fill = torch.finfo(dtype).min / 4
        total = zero.to(dtype)
        count = torch.zeros((), dtype=torch.long, device=labels.device)
        views = range(len(features))
        pairs = (
            [(0, 0)]
            if single_view
            else [(i, j) for i in views for j in views if i != j]
        )
        for i, j in pairs:
            keys, candidate = features[j], present[j]
            if memory is not None:
                keys = torch.cat([keys, remembered[j].to(dtype)])
                candidate = torch.cat([candidate, filled[j]])
            allowed = candidate[None, :]  # (1 or N, N + memory)
            if i == j:  # an anchor is never its own candidate
                itself = torch.eye(
                    len(labels), len(keys), dtype=torch.bool, device=labels.device
                )
                allowed = allowed & ~itself
            logits = features[i] @ keys.T / self.temperature
            positive = present[i][:, None] & allowed & same_class
            n_positive = positive.sum(dim=1)
            log_norm = torch.logsumexp(logits.masked_fill(~allowed, fill), dim=1)
            mean_positive = (logits * positive).sum(dim=1) / n_positive.clamp_min(1)
            anchor = n_positive > 0
            total = total + torch.where(anchor, log_norm - mean_positive, 0.0).sum()
            count = count + anchor.sum()
        return total / count.clamp_min(1)

    @torch.no_grad()
    def _remember(
        self, features: list[Tensor], labels: Tensor, present: Tensor
    ) -> None:
        """Push this step's embeddings into the per-class ring buffers.

        Per modality and class the newest *memory_size* embeddings of the
        positions present in the modality are written over the oldest ones.

        Args:
            features: Per modality, ``(N, D)`` normalised embeddings.
            labels: ``(N,)`` labels of the positions.
            present: Boolean ``(M, N)``.
        """
        memory, count, following = self.memory, self.memory_count, self.memory_next
        if memory is None or count is None or following is None:
            return
        size, classes = self.memory_size, int(memory.shape[1])
        known = (labels >= 0) & (labels < classes)
        for m, vectors in enumerate(features):
            keep = present[m] & known
            new_labels = labels[keep]
            if new_labels.numel() == 0:
                continue
            new = vectors[keep].detach().to(memory.dtype)
            order, ranks = _class_ranks(new_labels)
            sorted_labels = new_labels[order]
            counts = torch.bincount(new_labels, minlength=classes)
            # Past the memory size, the first of this step's are not kept.
            dropped = (counts - size).clamp_min(0)
            offset = ranks - dropped[sorted_labels]
            kept = offset >= 0
            slot = (following[m, sorted_labels] + offset) % size
            memory[m, sorted_labels[kept], slot[kept]] = new[order][kept]
            added = counts.clamp_max(size)
            following[m] = (following[m] + added) % size
            count[m] = (count[m] + added).clamp_max(size)

    def reset_memory(self) -> None:
        """Empty the memory (it is rebuilt at the next call)."""
        self.memory = None
        self.memory_count = None
        self.memory_next = None
