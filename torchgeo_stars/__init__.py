"""torchgeo-stars: missing-modality multimodal segmentation for TorchGeo.

STARS (Shared-specific Translation and Alignment for missing-modality Remote
Sensing) segments co-registered optical, SAR and DSM rasters and keeps working
when any of them is missing at inference time.
"""

__version__ = '0.1.0.dev0'

from .tasks import STARSSegmentationTask

__all__ = ['STARSSegmentationTask', '__version__']
