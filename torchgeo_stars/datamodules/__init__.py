"""Lightning datamodules over paired multimodal rasters."""

from .augmentation import JointFlipRotate
from .multimodal import MODALITY_CLASSES, MultimodalDataModule

__all__ = ['MODALITY_CLASSES', 'JointFlipRotate', 'MultimodalDataModule']
