"""Missing-modality scenarios (every non-empty subset of the modalities) and their scores."""

from collections.abc import Mapping, Sequence
from itertools import combinations

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix

from ..models import SegmentationModel
from .metrics import SegmentationScores, format_scenario_table, scores_from_confusion


def modality_scenarios(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """List every non-empty subset of *modalities*, largest first.

    With optical, SAR and DSM this gives the seven scenarios: all three, the
    three pairs (one modality missing) and the three single modalities.

    Args:
        modalities: Modality names in the model's order.

    Returns:
        Subsets as tuples keeping the order of *modalities*.
    """
    return [
        subset
        for size in range(len(modalities), 0, -1)
        for subset in combinations(modalities, size)
    ]


def scenario_name(subset: Sequence[str]) -> str:
    """Name a scenario by the modalities it keeps, e.g. ``optical+sar``.

    Args:
        subset: The modalities present in the scenario.

    Returns:
        The names joined with ``+``.
    """
    return '+'.join(subset)


def scenario_availability(
    available: Tensor, modalities: Sequence[str], subset: Sequence[str]
) -> Tensor:
    """Restrict a batch's availability to the modalities of one scenario.

    Args:
        available: Boolean ``(B, M)`` availability found in the data.
        modalities: Modality names, in the column order of *available*.
        subset: Modalities the scenario keeps; the others are removed.

    Returns:
        Boolean ``(B, M)``: available in the data and kept by the scenario.
    """
    keep = torch.tensor(
        [name in subset for name in modalities],
        dtype=torch.bool,
        device=available.device,
    )
    return available & keep


def scenario_names(modalities: Sequence[str]) -> list[str]:
    """Names of every missing-modality scenario, largest first.

    Args:
        modalities: Modality names.

    Returns:
        Scenario names such as ``optical+sar+dsm`` ... ``dsm``.
    """
    return [scenario_name(subset) for subset in modality_scenarios(modalities)]


class ScenarioMetrics(nn.Module):
    """One confusion matrix per (stage, scenario), and the scores derived from them.

    Per scenario ``S`` (modality names joined with ``+``) the scores are
    ``{stage}/{S}/OA``, ``/mIoU``, ``/mF1`` and per class ``/IoU/{class}`` and
    ``/F1/{class}``; ``{stage}_mIoU`` is the mean of the scenarios' mIoU and
    ``{stage}_mIoU_full`` the mIoU with every modality present.

    .. versionadded:: 0.1

    Attributes:
        scenarios: The scenarios, largest first (:func:`modality_scenarios`).
        stage_metrics: Stage to its :class:`~torchmetrics.MetricCollection` of
            confusion matrices, one per scenario name.
        scores: Stage to the scores of its last :meth:`compute`, per scenario.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        num_classes: int,
        ignore_index: int | None,
        stages: Sequence[str] = ('val', 'test'),
    ) -> None:
        """Build the confusion matrices.

        Args:
            modalities: Modality names in the model's order.
            num_classes: Number of classes.
            ignore_index: Label value that is not a class, or None.
            stages: Stages that evaluate.
        """
        super().__init__()
        self.modalities = list(modalities)
        self.scenarios = modality_scenarios(self.modalities)
        self.stage_metrics = nn.ModuleDict(
            {
                stage: MetricCollection(
                    {
                        scenario_name(subset): MulticlassConfusionMatrix(
                            num_classes=num_classes, ignore_index=ignore_index
                        )
                        for subset in self.scenarios
                    },
                    compute_groups=False,
                )
                for stage in stages
            }
        )
        self.scores: dict[str, dict[str, SegmentationScores]] = {}

    def masks(self, available: Tensor) -> list[Tensor]:
        """Per scenario, the ``(B, M)`` modalities it uses in a batch.

        Args:
            available: Boolean ``(B, M)`` availability found in the data.

        Returns:
            One mask per scenario, in the order of :attr:`scenarios`.
        """
        return [
            scenario_availability(available, self.modalities, subset)
            for subset in self.scenarios
        ]

    def evaluate(
        self,
        stage: str,
        model: SegmentationModel,
        inputs: Mapping[str, Tensor],
        available: Tensor,
        target: Tensor,
    ) -> dict[str, Tensor]:
        """Run *model* on a batch under every scenario and add its predictions.

        Args:
            stage: ``'val'`` or ``'test'``.
            model: The model (its :meth:`forward_scenarios` runs).
            inputs: Modality name to images ``(B, C_m, H, W)``.
            available: Boolean ``(B, M)`` availability.
            target: ``(B, H, W)`` labels.

        Returns:
            Scenario name to the prediction of the batch's first sample, for
            the scenarios that keep it.
        """
        masks = self.masks(available)
        logits = model.forward_scenarios(inputs, available, masks)
        return self.update(stage, masks, logits, target)

    def update(
        self,
        stage: str,
        masks: Sequence[Tensor],
        logits: Sequence[Tensor],
        target: Tensor,
    ) -> dict[str, Tensor]:
        """Add one batch's predictions under every scenario.

        Args:
            stage: ``'val'`` or ``'test'``.
            masks: Per scenario, its ``(B, M)`` mask (:meth:`masks`).
            logits: Per scenario, the logits of the rows its mask keeps
                (:meth:`~torchgeo_stars.models.SegmentationModel.forward_scenarios`).
            target: ``(B, H, W)`` labels.

        Returns:
            Scenario name to the prediction of the batch's first sample, for
            the scenarios that keep it.
        """
        metrics: MetricCollection = self.stage_metrics[stage]  # type: ignore[assignment]
        predictions: dict[str, Tensor] = {}
        for subset, keep, scores in zip(self.scenarios, masks, logits, strict=True):
            name = scenario_name(subset)
            rows = keep.any(dim=1)
            if not rows.any():
                continue
            predicted = scores.argmax(dim=1)
            metrics[name].update(predicted, target[rows])
            if bool(rows[0]):
                predictions[name] = predicted[0]
        return predictions

    def compute(self, stage: str, class_names: Sequence[str]) -> dict[str, float]:
        """Compute and reset every scenario's scores of *stage*.

        The scores of the scenarios that saw data are kept in :attr:`scores`
        (unchanged when none did).

        Args:
            stage: ``'val'`` or ``'test'``.
            class_names: Name per class, for the per-class keys.

        Returns:
            The values to log by key (empty when no scenario saw data).
        """
        metrics: MetricCollection = self.stage_metrics[stage]  # type: ignore[assignment]
        scores: dict[str, SegmentationScores] = {}
        values: dict[str, float] = {}
        for subset in self.scenarios:
            name = scenario_name(subset)
            metric = metrics[name]
            if not metric.update_called:
                continue
            score = scores_from_confusion(metric.compute())
            scores[name] = score
            values[f'{stage}/{name}/OA'] = score.overall_accuracy
            values[f'{stage}/{name}/mIoU'] = score.miou
            values[f'{stage}/{name}/mF1'] = score.mf1
            for class_name, iou, f1 in zip(
                class_names, score.iou, score.f1, strict=True
            ):
                values[f'{stage}/{name}/IoU/{class_name}'] = iou
                values[f'{stage}/{name}/F1/{class_name}'] = f1
        metrics.reset()
        if not scores:
            return {}
        mious = torch.tensor([score.miou for score in scores.values()])
        values[f'{stage}_mIoU'] = float(mious.nanmean())
        full = scenario_name(self.modalities)
        if full in scores:
            values[f'{stage}_mIoU_full'] = scores[full].miou
        self.scores[stage] = scores
        return values

    def table(self, stage: str, class_names: list[str]) -> str:
        """Format the last computed scores of *stage* as a table.

        Args:
            stage: ``'val'`` or ``'test'``.
            class_names: Name per class.

        Returns:
            A plain-text table (percent), one row per scenario.
        """
        return format_scenario_table(self.scores.get(stage, {}), class_names)
