"""Shared-specific segmentation: the pipeline common to STARS and ShaSpec."""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ..errors import ConfigurationError, DataError
from .availability import Availability, resolve_availability
from .base import SegmentationModel
from .batching import row_index, scatter_rows, take_rows
from .decoder import FPNSegmentationDecoder, PaddingMode, crop_to, pad_to_multiple
from .embedding import FUSED_VIEW, EmbeddingHeads, PSAFeatures
from .encoders import NUM_DECODER_SCALES, SharedEncoder, SpecificEncoders
from .fusion import ResidualFusion, SCSEFusion
from .outputs import SegmentationOutput
from .recovery import fill_missing, masked_mean
from .translation import CrossModalTranslation

Pyramid = list[Tensor]


def _full_batch(
    features: Mapping[str, Pyramid], index: Mapping[str, Tensor | None], batch: int
) -> dict[str, Pyramid]:
    """Place each modality's sub-batch features back into a zero-filled batch.

    Args:
        features: Per modality, features of its encoded rows per scale.
        index: Per modality, its encoded row indices (None: all rows).
        batch: Batch size ``B``.

    Returns:
        Per modality, ``(B, ...)`` features per scale, zeros on other rows.
    """
    return {
        name: [scatter_rows(f, index[name], batch) for f in pyramid]
        for name, pyramid in features.items()
    }


class SharedSpecificSegmenter(SegmentationModel):
    """Specific + shared encoders, optional translation, fusion, FPN decoder.

    The pipeline shared by :class:`~torchgeo_stars.models.STARS` and
    :class:`~torchgeo_stars.models.ShaSpec`, which build its parts; use
    those. Per sample, a modality is *available* (in the data) and *usable*
    (available and not dropped by modality dropout); the fusion sees real
    features of usable modalities and recovered ones for the others:

    * specific features: with translation, the mean over usable ``i`` of
      ``T_ij(s_i)``; without, zeros;
    * shared features: the mean over usable ``i`` of ``h_i``.

    A modality's specific encoder runs only on the samples that have it
    (usable ones in evaluation; every available one, dropped included, when
    alignment outputs are requested), so a missing modality costs nothing and
    cannot influence a sample.

    .. versionadded:: 0.1

    Attributes:
        modalities: Modality name to band count, in the model's order.
        specific_encoders: The specific encoders ``E_m``.
        shared_encoder: The shared encoder ``E_sh``.
        translation: The translators ``T_ij``, or None.
        fusion: The per-scale fusion.
        embedding_heads: The PSA embedding heads, or None.
        alignment_level: Decoder scale the embedding heads read (0 = finest).
        psa_features: Features the embedding heads read, ``'specific'``,
            ``'shared'`` (one head per modality) or ``'decoder'`` (one head
            on the decoder's segmentation-block output).
        decoder: FPN decoder and segmentation head.
    """

    specific_encoders: SpecificEncoders
    shared_encoder: SharedEncoder
    fusion: SCSEFusion | ResidualFusion
    decoder: FPNSegmentationDecoder

    def __init__(
        self,
        modalities: Mapping[str, int],
        num_classes: int,
        padding_mode: PaddingMode,
        name: str,
    ) -> None:
        """Check the arguments every shared-specific model takes.

        Subclasses then build ``specific_encoders``, ``shared_encoder``,
        ``fusion`` and ``decoder``, and optionally ``translation`` and
        ``embedding_heads`` (with :meth:`set_alignment`).

        Args:
            modalities: Modality name to band count, ordered; at least two.
            num_classes: Number of classes.
            padding_mode: How inputs are padded to the encoder stride.
            name: Model name, for messages.

        Raises:
            ConfigurationError: If an argument is out of range.
        """
        super().__init__(modalities, num_classes, 2, name)
        self.padding_mode: PaddingMode = padding_mode
        self.translation: CrossModalTranslation | None = None
        self.embedding_heads: EmbeddingHeads | None = None
        self.alignment_level = 0
        self.psa_features: PSAFeatures = 'specific'

    def set_alignment(self, level: int, features: PSAFeatures) -> None:
        """Choose the scale and the features the PSA embedding heads read.

        Args:
            level: Decoder scale, 0 = finest (negative counts from the
                coarsest); not used with ``'decoder'``, whose features are at
                the finest decoder scale.
            features: ``'specific'`` (``s_m``), ``'shared'`` (``h_m``) or
                ``'decoder'`` (the fused features the class head reads).

        Raises:
            ConfigurationError: If *level* or *features* is invalid.
        """
        if not -NUM_DECODER_SCALES <= level < NUM_DECODER_SCALES:
            raise ConfigurationError(
                f'alignment_level must index one of the {NUM_DECODER_SCALES} decoder '
                f'scales (0 = finest), got {level}.'
            )
        if features not in ('specific', 'shared', 'decoder'):
            raise ConfigurationError(
                "psa_features must be 'specific', 'shared' or 'decoder', got"
                f' {features!r}.'
            )
        self.alignment_level = level % NUM_DECODER_SCALES
        self.psa_features = features

    @property
    def output_stride(self) -> int:
        """Stride of the coarsest encoder scale; inputs are padded to a multiple."""
        return self.specific_encoders.output_stride

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        available: Tensor | None = None,
        dropped: Tensor | None = None,
        return_alignment: bool | None = None,
    ) -> SegmentationOutput:
        """Segment a batch in which any modality may be missing per sample.

        Args:
            inputs: Modality name to images ``(B, C_m, H, W)``; a modality
                absent here is missing for every sample. ``H`` and ``W`` are
                free (inputs are padded to the encoder stride internally).
            available: Optional boolean ``(B, M)`` availability in the model's
                modality order (None: every modality in *inputs* available).
            dropped: Optional boolean ``(B, M)`` modalities the fusion must
                treat as missing (modality dropout); their real features are
                still computed for the alignment outputs.
            return_alignment: Whether to fill the alignment fields of the
                output (real specific features, translations, embeddings,
                for the translation and PSA losses; with
                ``psa_features='decoder'`` the embeddings come from the
                decoder's features of this very pass). None (default): in
                training mode only. False saves their cost in training when
                no alignment loss is used; True computes them in evaluation.

        Returns:
            The :class:`SegmentationOutput`.

        Raises:
            DataError: If the inputs or flags are invalid, or a sample has no
                usable modality.
        """
        state = resolve_availability(inputs, self.modalities, available, dropped)
        if return_alignment is None:
            return_alignment = self.training
        alignment = self.embedding_heads is not None and return_alignment
        # In training, dropped modalities are encoded too (their features are
        # not fused): the alignment losses need them, and encoder batches then
        # stay as large as the data allows, which batch norm needs on small
        # patches (one sample at 1 x 1 cannot be normalised).
        training = alignment or self.training
        encoded = state.available if training else state.usable
        specific_sub, shared_sub, index = self._encode(inputs, encoded)
        specific = _full_batch(specific_sub, index, state.batch_size)
        shared = _full_batch(shared_sub, index, state.batch_size)
        translated = self._translate(state, specific, specific_sub, index, training)
        logits, decoded = self._segment(state, specific, shared, translated)
        output = SegmentationOutput(logits=logits, available=state.available)
        if alignment:
            embedded = shared_sub if self.psa_features == 'shared' else specific_sub
            self._fill_alignment(
                output, state, specific, embedded, index, translated, decoded
            )
        return output

    def forward_scenarios(
        self,
        inputs: Mapping[str, Tensor],
        available: Tensor | None,
        scenarios: Sequence[Tensor],
    ) -> list[Tensor]:
        """Logits of one batch under several availabilities, encoding it once.

        Evaluating every missing-modality scenario with :meth:`forward` runs
        each modality's encoder once per scenario that keeps it; here each
        runs once and only translation, fusion and decoding are repeated. In
        evaluation mode a sample's specific and shared features do not depend
        on the other modalities or on its batch-mates, so the result equals
        calling :meth:`forward` per scenario.

        Args:
            inputs: Modality name to images ``(B, C_m, H, W)``.
            available: Optional boolean ``(B, M)`` availability (None: every
                modality in *inputs*).
            scenarios: Boolean ``(B, M)`` masks of the modalities each
                scenario uses, each within the availability.

        Returns:
            Per scenario, the logits ``(R, K, H, W)`` of the ``R`` rows whose
            mask has a True entry (in batch order): those of
            ``forward(inputs restricted to these rows, mask[rows]).logits``.

        Raises:
            ConfigurationError: If the model is in training mode.
            DataError: If the inputs or flags are invalid, or a mask marks a
                modality that is not available.
        """
        if self.training:
            raise ConfigurationError(
                'forward_scenarios is for evaluation: call model.eval() first.'
            )
        state = resolve_availability(inputs, self.modalities, available, None)
        specific_sub, shared_sub, index = self._encode(inputs, state.available)
        specific = _full_batch(specific_sub, index, state.batch_size)
        shared = _full_batch(shared_sub, index, state.batch_size)
        names = self.modality_names
        results = []
        for mask in scenarios:
            mask = mask.to(torch.bool)
            if tuple(mask.shape) != tuple(state.available.shape) or bool(
                (mask & ~state.available).any()
            ):
                raise DataError(
                    'forward_scenarios: every scenario mask must be a (batch, '
                    f'{len(names)}) boolean within the availability.'
                )
            rows = mask.any(dim=1)
            rows_index = row_index(rows)
            count = int(rows.sum())
            used = [n for column, n in enumerate(names) if bool(mask[:, column].any())]
            if count == 0:
                reference = next(iter(inputs.values()))
                results.append(
                    reference.new_zeros(
                        (0, self.num_classes, state.height, state.width)
                    )
                )
                continue
            usable = take_rows(mask, rows_index)
            sub_state = Availability(usable, usable, count, state.height, state.width)
            sub_specific = {
                n: [take_rows(f, rows_index) for f in specific[n]] for n in used
            }
            sub_shared = {
                n: [take_rows(f, rows_index) for f in shared[n]] for n in used
            }
            translated = self._translate(sub_state, sub_specific, {}, {}, False)
            results.append(
                self._segment(sub_state, sub_specific, sub_shared, translated)[0]
            )
        return results

    def _segment(
        self,
        state: Availability,
        specific: Mapping[str, Pyramid],
        shared: Mapping[str, Pyramid],
        translated: Mapping[tuple[str, str], Pyramid],
    ) -> tuple[Tensor, Tensor]:
        """Recover the missing features, fuse every modality's and decode.

        Args:
            state: The batch's availability.
            specific: Full-batch specific features per encoded modality.
            shared: Full-batch shared features per encoded modality.
            translated: Translated features (see :meth:`_translate`).

        Returns:
            Logits ``(B, K, H, W)`` and the features the class head read
            (see :meth:`FPNSegmentationDecoder.decode`).
        """
        fused_specific, fused_shared = self._recover(
            state, specific, shared, translated
        )
        return self.decoder.decode(
            self.fusion(fused_specific, fused_shared),
            self._padded_size(state),
            (state.height, state.width),
        )

    def _padded_size(self, state: Availability) -> tuple[int, int]:
        """Input size padded to the encoder stride."""
        s = self.output_stride
        return (-(-state.height // s) * s, -(-state.width // s) * s)

    def _encode(
        self, inputs: Mapping[str, Tensor], encoded: Tensor
    ) -> tuple[dict[str, Pyramid], dict[str, Pyramid], dict[str, Tensor | None]]:
        """Run each specific encoder on its rows and the shared encoder on all.

        Args:
            inputs: The input images.
            encoded: Boolean ``(B, M)``: the rows each modality is encoded for.

        Returns:
            Per encoded modality: specific features of its rows, shared
            features of its rows, and the row indices (None: all rows).
        """
        names: list[str] = []
        images: list[Tensor] = []
        specific: list[Pyramid] = []
        index: dict[str, Tensor | None] = {}
        for column, name in enumerate(self.modality_names):
            rows = encoded[:, column]
            if not bool(rows.any()):
                continue
            index[name] = row_index(rows)
            image = pad_to_multiple(
                take_rows(inputs[name], index[name]),
                self.output_stride,
                self.padding_mode,
            )
            names.append(name)
            images.append(image)
            specific.append(self.specific_encoders(image, name))
        shared = self.shared_encoder(images, specific, names)
        return (
            dict(zip(names, specific, strict=True)),
            dict(zip(names, shared, strict=True)),
            index,
        )

    def _translate(
        self,
        state: Availability,
        specific: Mapping[str, Pyramid],
        specific_sub: Mapping[str, Pyramid],
        index: Mapping[str, Tensor | None],
        every_row: bool,
    ) -> dict[tuple[str, str], Pyramid]:
        """Translate specific features between modalities where needed.

        In training (and for alignment outputs), every encoded source is
        translated on all its rows: the translation loss needs them, and the
        translators' batch norm needs full batches (a single recovered row is
        one value per channel at the coarsest scale). Otherwise a source is
        translated only on the rows where it is usable and some other modality
        is not (what recovery needs): with every modality present, translators
        do not run.

        Args:
            state: The batch's availability.
            specific: Full-batch specific features per encoded modality.
            specific_sub: The same, on the encoded rows only.
            index: Encoded row indices per modality.
            every_row: Translate every encoded row (training or alignment
                outputs).

        Returns:
            ``(source, target)`` to ``T_source,target(s_source)`` per scale,
            full batch, zeros on rows not translated.
        """
        if self.translation is None:
            return {}
        batch = state.batch_size
        usable = state.usable
        translated: dict[tuple[str, str], Pyramid] = {}
        for column, source in enumerate(self.modality_names):
            if source not in specific:
                continue
            if every_row:
                rows_index = index[source]
                features = specific_sub[source]
            else:
                others = torch.cat([usable[:, :column], usable[:, column + 1 :]], 1)
                rows = usable[:, column] & ~others.all(dim=1)
                if not bool(rows.any()):
                    continue
                rows_index = row_index(rows)
                features = [take_rows(f, rows_index) for f in specific[source]]
            for target, pyramid in self.translation(features, source).items():
                translated[source, target] = [
                    scatter_rows(f, rows_index, batch) for f in pyramid
                ]
        return translated

    def _recover(
        self,
        state: Availability,
        specific: Mapping[str, Pyramid],
        shared: Mapping[str, Pyramid],
        translated: Mapping[tuple[str, str], Pyramid],
    ) -> tuple[list[Pyramid], list[Pyramid]]:
        """Specific and shared features of every modality, real or recovered.

        Args:
            state: The batch's availability.
            specific: Full-batch specific features per encoded modality.
            shared: Full-batch shared features per encoded modality.
            translated: Translated features (see :meth:`_translate`).

        Returns:
            Per modality (model order): specific and shared features per scale,
            real where the sample's modality is usable, recovered elsewhere.
        """
        names = self.modality_names
        usable = state.usable
        reference = next(iter(specific.values()))
        shared_reference = next(iter(shared.values()))
        encoded = [
            (column, name) for column, name in enumerate(names) if name in shared
        ]
        out_specific: list[Pyramid] = []
        out_shared: list[Pyramid] = []
        for target_column, target in enumerate(names):
            keep = usable[:, target_column]
            real_s = specific.get(target)
            real_h = shared.get(target)
            if real_s is not None and real_h is not None and bool(keep.all()):
                out_specific.append(real_s)
                out_shared.append(real_h)
                continue
            fused_s: Pyramid = []
            fused_h: Pyramid = []
            for scale in range(NUM_DECODER_SCALES):
                sources = [
                    (translated[source, target][scale], usable[:, column])
                    for column, source in encoded
                    if (source, target) in translated
                ]
                recovered_s = (
                    masked_mean([v for v, _ in sources], [w for _, w in sources])
                    if sources
                    else torch.zeros_like(reference[scale])
                )
                recovered_h = masked_mean(
                    [shared[name][scale] for _, name in encoded],
                    [usable[:, column] for column, _ in encoded],
                )
                s = real_s[scale] if real_s is not None else reference[scale]
                h = real_h[scale] if real_h is not None else shared_reference[scale]
                # A modality never encoded has keep False on every row.
                fused_s.append(fill_missing(s, recovered_s, keep))
                fused_h.append(fill_missing(h, recovered_h, keep))
            out_specific.append(fused_s)
            out_shared.append(fused_h)
        return out_specific, out_shared

    def _fill_alignment(
        self,
        output: SegmentationOutput,
        state: Availability,
        specific: Mapping[str, Pyramid],
        embedded: Mapping[str, Pyramid],
        index: Mapping[str, Tensor | None],
        translated: Mapping[tuple[str, str], Pyramid],
        decoded: Tensor,
    ) -> None:
        """Fill the alignment fields of *output*, cropped to the input extent.

        Feature maps cover the padded input; they are cropped to
        ``ceil(H / stride) x ceil(W / stride)``, the cells that overlap the
        unpadded input. Modalities absent from the whole batch get zeros.

        Args:
            output: The output to complete.
            state: The batch's availability.
            specific: Full-batch specific features per encoded modality.
            embedded: The per-modality features the PSA heads read (specific
                or shared), on the encoded rows only.
            index: Encoded row indices per modality.
            translated: Translated features per ordered pair.
            decoded: The decoder's features the class head read (the one
                view embedded with ``psa_features='decoder'``).
        """
        heads = self.embedding_heads
        if heads is None:
            return
        padded_height, padded_width = self._padded_size(state)
        reference = next(iter(specific.values()))

        def crop(x: Tensor) -> Tensor:
            stride_h = padded_height // x.shape[-2]
            stride_w = padded_width // x.shape[-1]
            return crop_to(x, -(-state.height // stride_h), -(-state.width // stride_w))

        level = self.alignment_level
        zeros = [torch.zeros_like(f) for f in reference]
        fused = self.psa_features == 'decoder'
        if fused:
            output.embeddings[FUSED_VIEW] = crop(heads(decoded, FUSED_VIEW))
            output.embedding_stride = padded_height // decoded.shape[-2]
            output.fused_embeddings = True
        else:
            output.embedding_stride = padded_height // reference[level].shape[-2]
        for name in self.modality_names:
            output.specific[name] = [crop(f) for f in specific.get(name, zeros)]
            if fused:
                continue
            if name in embedded:
                embedding = scatter_rows(
                    heads(embedded[name][level], name), index[name], state.batch_size
                )
            else:
                shape = reference[level].shape
                embedding = reference[level].new_zeros(
                    (shape[0], heads.dim, *shape[2:])
                )
            output.embeddings[name] = crop(embedding)
        if self.translation is None:
            return
        for source in self.modality_names:
            for target in self.modality_names:
                if source != target:
                    pyramid = translated.get((source, target), zeros)
                    output.translated[source, target] = [crop(f) for f in pyramid]
