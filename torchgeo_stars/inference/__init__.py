"""Sliding-window inference on georeferenced rasters of any size.

:func:`predict_geotiff` segments any non-empty subset of a model's modalities
into a Cloud Optimized GeoTIFF class map; :func:`join_shards` joins the parts
of a sharded run; :func:`load_predictor` reads a STARS checkpoint, or the
model file :func:`~torchgeo_stars.inference.export.export_model` writes from
one (``torchgeo-stars export``), for the command line (:func:`main`,
``torchgeo-stars predict-geotiff``).
"""

from .checkpoint import Predictor, load_predictor, read_checkpoint
from .cli import join_main, main
from .engine import predict_geotiff, resolve_device
from .grid import OutputGrid
from .output import NODATA, PROBABILITY_SCALE, probabilities_path
from .shards import join_shards, shard_rows
from .window import window_weight

__all__ = [
    'NODATA',
    'PROBABILITY_SCALE',
    'OutputGrid',
    'Predictor',
    'join_main',
    'join_shards',
    'load_predictor',
    'main',
    'predict_geotiff',
    'probabilities_path',
    'read_checkpoint',
    'resolve_device',
    'shard_rows',
    'window_weight',
]
