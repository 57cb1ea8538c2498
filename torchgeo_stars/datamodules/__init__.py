"""Lightning datamodules over paired multimodal rasters."""

from .augmentation import JointFlipRotate
from .benchmark import BenchmarkDataModule
from .benchmarks import (
    EarthMissDataModule,
    PotsdamDataModule,
    VaihingenDataModule,
    WHUOPTSARDataModule,
)
from .multimodal import MODALITY_CLASSES, MultimodalDataModule

__all__ = [
    'MODALITY_CLASSES',
    'BenchmarkDataModule',
    'EarthMissDataModule',
    'JointFlipRotate',
    'MultimodalDataModule',
    'PotsdamDataModule',
    'VaihingenDataModule',
    'WHUOPTSARDataModule',
]
