"""torchgeo-stars: missing-modality multimodal segmentation for TorchGeo.

STARS (Shared-specific Translation and Alignment for missing-modality Remote
Sensing) segments co-registered optical, SAR and DSM rasters and keeps working
when any of them is missing at inference time.
"""

from typing import TYPE_CHECKING

__version__ = '0.1.0.dev0'

if TYPE_CHECKING:
    from .tasks import STARSSegmentationTask

__all__ = ['STARSSegmentationTask', '__version__']


def __getattr__(name: str) -> object:
    """Import the task on first use.

    The command line's help and its tools that need no Lightning then start
    without importing it (PEP 562).
    """
    if name == 'STARSSegmentationTask':
        from .tasks import STARSSegmentationTask

        return STARSSegmentationTask
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
