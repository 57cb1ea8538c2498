"""STARS network, baselines and the parts they are assembled from."""

from .availability import Availability, modality_dropout, resolve_availability
from .base import SegmentationModel, to_channels_last
from .baselines import EarlyFusion, ShaSpec
from .decoder import FPNSegmentationDecoder, pad_to_multiple
from .embedding import FUSED_VIEW, EmbeddingHeads
from .encoders import (
    EncoderPyramid,
    SharedBackbone,
    SharedConvPyramid,
    SharedProjection,
    SpecificEncoders,
    build_shared_encoder,
)
from .fusion import ResidualFusion, SCSEFusion, SCSEFusionBlock
from .outputs import SegmentationOutput
from .recovery import fill_missing, masked_mean
from .registry import MODELS, build_model
from .shared_specific import SharedSpecificSegmenter
from .stars import STARS
from .translation import CrossModalTranslation, TranslatorBank

__all__ = [
    'FUSED_VIEW',
    'MODELS',
    'STARS',
    'Availability',
    'CrossModalTranslation',
    'EarlyFusion',
    'EmbeddingHeads',
    'EncoderPyramid',
    'FPNSegmentationDecoder',
    'ResidualFusion',
    'SCSEFusion',
    'SCSEFusionBlock',
    'SegmentationModel',
    'SegmentationOutput',
    'ShaSpec',
    'SharedBackbone',
    'SharedConvPyramid',
    'SharedProjection',
    'SharedSpecificSegmenter',
    'SpecificEncoders',
    'TranslatorBank',
    'build_model',
    'build_shared_encoder',
    'fill_missing',
    'masked_mean',
    'modality_dropout',
    'pad_to_multiple',
    'resolve_availability',
    'to_channels_last',
]
