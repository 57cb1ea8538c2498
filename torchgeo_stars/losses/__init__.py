"""Losses of STARS: segmentation, translation alignment and PSA."""

from .psa import PSALoss
from .sampling import class_balanced_sample, random_sample
from .segmentation import SegmentationLoss, median_frequency_weights
from .translation import TranslationAlignmentLoss

__all__ = [
    'PSALoss',
    'SegmentationLoss',
    'TranslationAlignmentLoss',
    'class_balanced_sample',
    'median_frequency_weights',
    'random_sample',
]
