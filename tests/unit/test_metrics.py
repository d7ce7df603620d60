import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score

from driftline_training.errors import TrainingError
from driftline_training.metrics import (
    choose_threshold,
    classification_metrics,
    confusion,
    summarise_folds,
)


@pytest.fixture()
def scored():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=2000)
    proba = np.clip(0.35 * y + rng.uniform(0, 0.65, size=2000), 0, 1)
    return y, proba


def test_f1_threshold_is_the_best_on_the_grid(scored) -> None:
    y, proba = scored
    threshold = choose_threshold(y, proba)
    best = f1_score(y, proba >= threshold)
    for candidate in np.unique(proba)[::10]:
        assert f1_score(y, proba >= candidate) <= best + 1e-12


def test_target_precision_threshold_is_the_lowest_reaching_it(scored) -> None:
    y, proba = scored
    threshold = choose_threshold(y, proba, target_precision=0.9)
    assert precision_score(y, proba >= threshold) >= 0.9
    below = np.unique(proba)[np.unique(proba) < threshold]
    assert precision_score(y, proba >= below[-1]) < 0.9


def test_unreachable_precision_is_an_error(scored) -> None:
    y, _ = scored
    with pytest.raises(TrainingError, match="no threshold reaches precision"):
        choose_threshold(y, np.full(len(y), 0.5), target_precision=0.99)


def test_metrics_and_confusion(scored) -> None:
    y, proba = scored
    metrics = classification_metrics(y, proba, 0.5)
    assert set(metrics) >= {"roc_auc", "average_precision", "f1", "precision", "recall"}
    assert 0.5 < metrics["roc_auc"] <= 1.0
    matrix = confusion(y, proba, 0.5)
    assert matrix.sum() == len(y)
    assert matrix[1, 1] / (matrix[1, 1] + matrix[0, 1]) == pytest.approx(metrics["precision"])


def test_fold_summary() -> None:
    summary = summarise_folds([{"auc": 0.9}, {"auc": 0.92}, {"auc": 0.94}])
    assert summary["auc"]["mean"] == pytest.approx(0.92)
    assert summary["auc"]["std"] == pytest.approx(0.02)
