import math

import numpy as np
import pytest
import torch

from torchgeo_stars.tasks import format_scenario_table, scores_from_confusion


def numpy_scores(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int
) -> tuple[float, float, float]:
    """Slow reference: OA, mIoU and mF1 over classes that occur."""
    ious, f1s = [], []
    for k in range(num_classes):
        tp = np.sum((truth == k) & (predicted == k))
        fp = np.sum((truth != k) & (predicted == k))
        fn = np.sum((truth == k) & (predicted != k))
        if tp + fp + fn == 0:
            continue
        ious.append(tp / (tp + fp + fn))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    accuracy = float(np.mean(truth == predicted))
    return accuracy, float(np.mean(ious)), float(np.mean(f1s))


def confusion(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int
) -> torch.Tensor:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return torch.from_numpy(matrix)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_scores_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_classes = 5
    truth = rng.integers(0, num_classes - 1, size=500)  # class 4 never true
    predicted = np.where(rng.random(500) < 0.6, truth, rng.integers(0, 4, 500))
    scores = scores_from_confusion(confusion(truth, predicted, num_classes))
    accuracy, miou, mf1 = numpy_scores(truth, predicted, num_classes)
    assert scores.overall_accuracy == pytest.approx(accuracy, abs=1e-12)
    assert scores.miou == pytest.approx(miou, abs=1e-12)
    assert scores.mf1 == pytest.approx(mf1, abs=1e-12)
    assert math.isnan(scores.iou[4])
    assert math.isnan(scores.f1[4])


def test_perfect_prediction_scores_one() -> None:
    truth = np.array([0, 0, 1, 2, 2, 2])
    scores = scores_from_confusion(confusion(truth, truth, 3))
    assert scores.overall_accuracy == 1.0
    assert scores.miou == 1.0
    assert scores.mf1 == 1.0


def test_empty_matrix_is_nan() -> None:
    scores = scores_from_confusion(torch.zeros(3, 3, dtype=torch.long))
    assert math.isnan(scores.overall_accuracy)
    assert math.isnan(scores.miou)


def test_table_lists_every_scenario() -> None:
    truth = np.array([0, 1, 1, 0])
    scores = {
        'optical+sar': scores_from_confusion(confusion(truth, truth, 2)),
        'sar': scores_from_confusion(confusion(truth, 1 - truth, 2)),
    }
    table = format_scenario_table(scores, ['water', 'land'])
    lines = table.splitlines()
    assert lines[0].split() == ['scenario', 'OA', 'mIoU', 'mF1', 'water', 'land']
    assert lines[2].split()[:3] == ['optical+sar', '100.00', '100.00']
    assert lines[3].split()[:3] == ['sar', '0.00', '0.00']
