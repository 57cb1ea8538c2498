"""Segmentation scores derived from a confusion matrix.

One :class:`torchmetrics.classification.MulticlassConfusionMatrix` per scenario
holds the whole state (it is summed across processes under DDP), and every
score is derived from it, so overall accuracy, IoU and F1 always agree.

Definitions, for a confusion matrix ``C`` (rows: truth, columns: prediction):

* overall accuracy: ``trace(C) / sum(C)``;
* IoU of class k: ``C[k,k] / (row_k + col_k - C[k,k])``;
* F1 of class k: ``2 C[k,k] / (row_k + col_k)``;
* mIoU and mF1 (macro): the mean over the classes that occur in the truth or in
  the prediction; a class absent from both has no defined score (NaN) and is
  left out of the means.
"""

import sys
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one scenario.

    .. versionadded:: 0.1

    Attributes:
        overall_accuracy: Fraction of correctly classified labelled pixels.
        miou: Macro mean IoU over the classes that occur.
        mf1: Macro mean F1 over the classes that occur.
        iou: Per-class IoU, NaN for classes that never occur.
        f1: Per-class F1, NaN for classes that never occur.
    """

    overall_accuracy: float
    miou: float
    mf1: float
    iou: list[float]
    f1: list[float]


def scores_from_confusion(confusion: Tensor) -> SegmentationScores:
    """Derive overall accuracy, IoU and F1 from a confusion matrix.

    Args:
        confusion: ``(K, K)`` counts, rows the true class, columns the predicted.

    Returns:
        The scores; NaN everywhere if the matrix is empty.
    """
    matrix = confusion.double()
    true_positive = matrix.diagonal()
    truth = matrix.sum(dim=1)
    predicted = matrix.sum(dim=0)
    union = truth + predicted - true_positive
    occurs = union > 0
    nan = torch.full_like(true_positive, float('nan'))
    iou = torch.where(occurs, true_positive / union.clamp(min=1), nan)
    f1 = torch.where(occurs, 2 * true_positive / (truth + predicted).clamp(min=1), nan)
    total = matrix.sum()
    accuracy = (true_positive.sum() / total).item() if total > 0 else float('nan')
    miou = iou[occurs].mean().item() if occurs.any() else float('nan')
    mf1 = f1[occurs].mean().item() if occurs.any() else float('nan')
    return SegmentationScores(
        overall_accuracy=accuracy, miou=miou, mf1=mf1, iou=iou.tolist(), f1=f1.tolist()
    )


def format_scenario_table(
    scores: dict[str, SegmentationScores], class_names: list[str] | None = None
) -> str:
    """Format per-scenario scores as a plain-text table (in percent).

    Args:
        scores: Scenario name to its scores.
        class_names: Optional class names for the per-class IoU columns; when
            given, one IoU column per class is added.

    Returns:
        The table, one scenario per row.
    """
    if not scores:
        return '(no scenario evaluated)'
    width = max(len('scenario'), *(len(name) for name in scores))
    header = f'{"scenario":<{width}}  {"OA":>6}  {"mIoU":>6}  {"mF1":>6}'
    names = class_names or []
    for name in names:
        header += f'  {name[:10]:>10}'
    lines = [header, '-' * len(header)]
    for scenario, score in scores.items():
        row = (
            f'{scenario:<{width}}  {100 * score.overall_accuracy:6.2f}'
            f'  {100 * score.miou:6.2f}  {100 * score.mf1:6.2f}'
        )
        for index in range(len(names)):
            value = score.iou[index] if index < len(score.iou) else float('nan')
            row += f'  {100 * value:10.2f}'
        lines.append(row)
    return '\n'.join(lines)


def write_lines(text: str) -> None:
    """Write whole lines to standard output in one call, and flush.

    Lightning's rich progress bar proxies stdout, and in Jupyter a partial
    line in its buffer recurses without end (rich issue #3390); ``print()``
    writes the text and its newline separately, this writes them at once.

    Args:
        text: The text, ending with a newline.
    """
    sys.stdout.write(text)
    sys.stdout.flush()
