"""Multimodal geospatial datasets: per-modality rasters, pairing, normalisation."""

from .intersection import ModalityIntersection, collate_modalities
from .normalization import ModalityStatistics, NormalizeModalities, compute_statistics
from .pairing import PairedDataset, pair_modalities
from .rasters import (
    ConfigurableRaster,
    DSMRaster,
    MaskRaster,
    ModalityRaster,
    OpticalRaster,
    SARRaster,
)

# synthetic scene generator: exported by the lead

__all__ = (
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
    'collate_modalities',
    'compute_statistics',
    'pair_modalities',
)
