"""Synthetic multimodal scenes: optical, SAR and DSM GeoTIFFs with labels.

A generator of test and demonstration data, not a dataset: it writes rasters
that the package's datasets then read. :func:`make_synthetic_scene` (in
:mod:`torchgeo_stars.datasets.synthetic.scene`, with the classes and how each
modality separates them) is also the ``torchgeo-stars synthetic`` command.
The private modules build the ground truth (``_layout``), sample it on each
raster's grid (``_grids``) and render each modality (``_render``).

.. versionadded:: 0.1
"""

from .scene import (
    SYNTHETIC_CLASS_COLORS,
    SYNTHETIC_CLASSES,
    SyntheticScene,
    describe_scene,
    make_synthetic_scene,
    synthetic_class_names,
)

__all__ = [
    'SYNTHETIC_CLASSES',
    'SYNTHETIC_CLASS_COLORS',
    'SyntheticScene',
    'describe_scene',
    'make_synthetic_scene',
    'synthetic_class_names',
]
