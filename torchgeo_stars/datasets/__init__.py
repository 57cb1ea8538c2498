"""Multimodal geospatial datasets: per-modality rasters, pairing, normalisation."""

from .benchmark import BenchmarkDataset
from .earthmiss import EarthMiss
from .intersection import ModalityIntersection, collate_modalities
from .labels import ColourMaskRaster, decode_colours, decode_values
from .modalities import DSMRaster, MaskRaster, OpticalRaster, SARRaster
from .normalization import ModalityStatistics, NormalizeModalities, compute_statistics
from .pairing import PairedDataset, pair_modalities
from .plotting import plot_sample, quicklook, rgb_band_indexes
from .potsdam import Potsdam
from .rasters import ConfigurableRaster, ModalityRaster
from .synthetic import (
    SYNTHETIC_CLASS_COLORS,
    SYNTHETIC_CLASSES,
    SyntheticScene,
    describe_scene,
    make_synthetic_scene,
    synthetic_class_names,
)
from .tiles import GridTileSampler, RandomTileSampler, TileDataset, TileWindow
from .vaihingen import Vaihingen
from .whu_opt_sar import WHUOPTSAR

__all__ = (
    'SYNTHETIC_CLASSES',
    'SYNTHETIC_CLASS_COLORS',
    'WHUOPTSAR',
    'BenchmarkDataset',
    'ColourMaskRaster',
    'ConfigurableRaster',
    'DSMRaster',
    'EarthMiss',
    'GridTileSampler',
    'MaskRaster',
    'ModalityIntersection',
    'ModalityRaster',
    'ModalityStatistics',
    'NormalizeModalities',
    'OpticalRaster',
    'PairedDataset',
    'Potsdam',
    'RandomTileSampler',
    'SARRaster',
    'SyntheticScene',
    'TileDataset',
    'TileWindow',
    'Vaihingen',
    'collate_modalities',
    'compute_statistics',
    'decode_colours',
    'decode_values',
    'describe_scene',
    'make_synthetic_scene',
    'pair_modalities',
    'plot_sample',
    'quicklook',
    'rgb_band_indexes',
    'synthetic_class_names',
)
