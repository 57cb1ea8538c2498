"""Lightning tasks: STARS training and missing-modality evaluation."""

from .metrics import SegmentationScores, format_scenario_table, scores_from_confusion
from .objective import LossTerms, compose_losses
from .scenarios import (
    ScenarioMetrics,
    modality_scenarios,
    scenario_availability,
    scenario_name,
    scenario_names,
)
from .segmentation import STARSSegmentationTask

__all__ = [
    'LossTerms',
    'STARSSegmentationTask',
    'ScenarioMetrics',
    'SegmentationScores',
    'compose_losses',
    'format_scenario_table',
    'modality_scenarios',
    'scenario_availability',
    'scenario_name',
    'scenario_names',
    'scores_from_confusion',
]
