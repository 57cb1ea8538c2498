"""STARS: shared-specific translation and alignment network."""

from collections.abc import Mapping

from .decoder import FPNSegmentationDecoder, PaddingMode
from .embedding import FUSED_VIEW, EmbeddingHeads, PSAFeatures
from .encoders import SpecificEncoders, build_shared_encoder
from .fusion import SCSEFusion
from .shared_specific import SharedSpecificSegmenter
from .translation import CrossModalTranslation


class STARS(SharedSpecificSegmenter):
    """STARS segmentation network for co-registered modalities, any of them missing.

    Parts, assembled as segmentation-models-pytorch assembles its models:

    1. specific encoders ``E_m`` (:class:`SpecificEncoders`), one backbone per
       modality with its band count, giving ``s_m`` at the four decoder scales;
    2. a shared encoder ``E_sh`` giving ``h_m`` (see *shared_encoder*);
    3. translators ``T_ij`` (:class:`CrossModalTranslation`) for every ordered
       pair, at every decoder scale;
    4. recovery: for a sample where ``j`` is missing (unavailable or dropped),
       ``s_j := mean_i T_ij(s_i)`` and ``h_j := mean_i h_i`` over the
       modalities ``i`` the sample can use;
    5. per-scale fusion of ``[s_1, h_1, ..., s_M, h_M]`` by a 1x1 conv and SCSE
       attention (:class:`SCSEFusion`);
    6. smp's FPN decoder and segmentation head (:class:`FPNSegmentationDecoder`).

    Inputs of any size are padded (bottom/right) to the encoder's stride and
    the logits cropped back. In training mode (or with
    ``return_alignment=True``) the output also carries, for the translation
    and PSA losses, the real specific features, the translated features of
    every ordered pair and per-modality L2-normalised pixel embeddings (one
    1x1 conv - ReLU - 1x1 conv head per modality on ``s_m`` at
    *alignment_level*; with ``psa_features='decoder'``, a single head on the
    decoder's segmentation-block output, the features the class head reads,
    taken from the same decoder pass as the logits). In evaluation mode only
    the logits are computed: a missing modality's encoder does not run,
    translators run only for the samples that miss a modality, and no sample
    depends on its batch-mates.

    Shared encoder (*shared_encoder*): by default ``'light'``, a small
    plain-conv pyramid (:class:`SharedConvPyramid`: per-modality stride-2
    stems, then four stride-2 conv - BN - ReLU stages shared by all
    modalities) run on the images, all modalities stacked along the batch in
    one pass. An encoder name of segmentation-models-pytorch / timm (e.g.
    ``'tu-lcnet_050'``) puts that encoder behind the stems instead,
    ``'backbone'`` a shared copy of the specific encoders' architecture, and
    ``'projection'`` replaces the shared backbone by per-scale 1x1 conv - BN -
    ReLU projections of the specific features. ``'light'`` is the default: the
    cheapest shared encoder on the images (a full shared backbone runs ``2 M``
    backbones per step instead of ``M``) and, on the accuracy benchmark, the
    most accurate. For the same
    reason the translators are light inverted bottlenecks (1x1, depthwise
    3x3, 1x1) rather than dense 3x3 blocks. How the choices compare in
    accuracy and step time is measured in :doc:`/benchmarks`; the method is
    :doc:`/method`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        modalities: Mapping[str, int],
        num_classes: int,
        backbone: str = 'resnet18',
        weights: str | None = None,
        shared_encoder: str = 'light',
        encoder_depth: int = 5,
        decoder_channels: int = 256,
        decoder_segmentation_channels: int = 128,
        translator_channels: int = 64,
        translator_blocks: int = 1,
        embedding_dim: int = 64,
        alignment_level: int = 1,
        psa_features: PSAFeatures = 'specific',
        dropout: float = 0.2,
        translation: bool = True,
        stem_channels: int = 16,
        padding_mode: PaddingMode = 'reflect',
    ) -> None:
        """Build a STARS network.

        Args:
            modalities: Modality name to band count, in the order of the
                ``available`` columns (e.g. ``{'optical': 4, 'sar': 2,
                'dsm': 1}``); at least two.
            num_classes: Number of classes ``K``.
            backbone: Encoder name of segmentation-models-pytorch
                (``'resnet18'``, ``'efficientnet-b0'``, ``'tu-<timm name>'``...),
                used for every specific encoder.
            weights: Pretrained encoder weights (``'imagenet'``; ``True`` for
                ``tu-`` encoders) or None for random initialisation.
            shared_encoder: ``'light'`` (default: a small shared conv
                pyramid on the images), an encoder name for the shared
                backbone (e.g. ``'tu-lcnet_050'``), ``'backbone'`` (a shared
                copy of the specific encoders' architecture) or
                ``'projection'`` (shared 1x1 projections of the specific
                features, no second backbone).
            encoder_depth: Encoder stages, 4 or 5; the decoder reads the last
                four.
            decoder_channels: FPN pyramid width.
            decoder_segmentation_channels: FPN segmentation-block width.
            translator_channels: Maximum hidden width of a translator (the
                scale's channel count when smaller).
            translator_blocks: Depthwise 3x3 conv - BN - ReLU blocks per translator and
                scale.
            embedding_dim: Size ``D`` of the PSA pixel embeddings.
            alignment_level: Decoder scale of the embeddings, 0 = finest
                (stride 4 with ``encoder_depth=5``); default 1 (stride 8),
                chosen on the accuracy benchmark (:doc:`/benchmarks`). Not
                used with ``psa_features='decoder'``.
            psa_features: Features the PSA embedding heads read: the
                specific ``s_m`` or the shared ``h_m`` (one head and view per
                modality, ``'specific'`` or ``'shared'``), or the decoder's
                merged segmentation-block output, which the class head reads
                (``'decoder'``: one head, one fused view at the finest
                decoder scale, stride 4 with ``encoder_depth=5``; PSA then
                contrasts the positions of that view among themselves, see
                :class:`~torchgeo_stars.losses.PSALoss`).
            dropout: Spatial dropout of the FPN decoder.
            translation: False builds no translators: a missing modality's
                specific features are zero-filled (the no-translation
                ablation, as in ShaSpec).
            stem_channels: Stem width of a shared backbone or pyramid.
            padding_mode: ``'reflect'``, ``'replicate'`` or ``'constant'``
                padding of inputs to the encoder stride.

        Raises:
            ConfigurationError: If an argument is invalid (fewer than two
                modalities, unknown encoder, bad depth or level).
        """
        super().__init__(modalities, num_classes, padding_mode, 'STARS')
        self.set_alignment(alignment_level, psa_features)
        names = self.modality_names
        self.specific_encoders = SpecificEncoders(
            self.modalities, backbone, encoder_depth, weights
        )
        channels = self.specific_encoders.out_channels
        self.shared_encoder = build_shared_encoder(
            shared_encoder,
            self.modalities,
            backbone,
            encoder_depth,
            weights,
            channels,
            stem_channels,
            self.output_stride,
        )
        shared_channels = self.shared_encoder.out_channels
        if translation:
            self.translation = CrossModalTranslation(
                names, channels, translator_channels, translator_blocks
            )
        self.fusion = SCSEFusion(len(names), channels, shared_channels)
        if psa_features == 'decoder':
            self.embedding_heads = EmbeddingHeads(
                [FUSED_VIEW], decoder_segmentation_channels, embedding_dim
            )
        else:
            embedded = channels if psa_features == 'specific' else shared_channels
            self.embedding_heads = EmbeddingHeads(
                names, embedded[self.alignment_level], embedding_dim
            )
        self.decoder = FPNSegmentationDecoder(
            self.fusion.out_channels,
            num_classes,
            decoder_channels,
            decoder_segmentation_channels,
            dropout,
        )
