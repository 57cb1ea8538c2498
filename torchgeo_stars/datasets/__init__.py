"""Multimodal geospatial datasets: per-modality rasters, pairing, normalisation."""

from .intersection import ModalityIntersection, collate_modalities
from .modalities import DSMRaster, MaskRaster, OpticalRaster, SARRaster
from .normalization import ModalityStatistics, NormalizeModalities, compute_statistics
from .pairing import PairedDataset, pair_modalities
from .rasters import ConfigurableRaster, ModalityRaster
from .synthetic import (
    SYNTHETIC_CLASS_COLORS,
    SYNTHETIC_CLASSES,
    SyntheticScene,
    describe_scene,
    make_synthetic_scene,
    synthetic_class_names,
)

__all__ = (
    'SYNTHETIC_CLASSES',
    'SYNTHETIC_CLASS_COLORS',
    'ConfigurableRaster',
    'DSMRaster',
    'MaskRaster',
    'ModalityIntersection',
    'ModalityRaster',
    'ModalityStatistics',
    'NormalizeModalities',
    'OpticalRaster',
    'PairedDataset',
    'SARRaster',
    'SyntheticScene',
    'collate_modalities',
    'compute_statistics',
    'describe_scene',
    'make_synthetic_scene',
    'pair_modalities',
    'synthetic_class_names',
)
