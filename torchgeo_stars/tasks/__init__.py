"""Lightning tasks: STARS training and missing-modality evaluation."""

from .metrics import SegmentationScores, format_scenario_table, scores_from_confusion
from .scenarios import (
    modality_scenarios,
    scenario_availability,
    scenario_name,
    scenario_names,
)
from .segmentation import STARSSegmentationTask, modality_dropout

__all__ = [
    'STARSSegmentationTask',
    'SegmentationScores',
    'format_scenario_table',
    'modality_dropout',
    'modality_scenarios',
    'scenario_availability',
    'scenario_name',
    'scenario_names',
    'scores_from_confusion',
]
