"""Evaluation metrics and decision-threshold calibration (pure functions of labels and scores)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from driftline_training.errors import TrainingError

Labels = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]


def classification_metrics(y: Labels, proba: Scores, threshold: float) -> dict[str, float]:
    """Threshold-free (AUC-ROC, average precision, log loss, Brier) and thresholded metrics."""
    predicted = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, proba)),
        "average_precision": float(average_precision_score(y, proba)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(y, proba)),
        "accuracy": float(np.mean(predicted == y)),
    }


def confusion(y: Labels, proba: Scores, threshold: float) -> npt.NDArray[np.int64]:
    """The 2x2 confusion matrix [[tn, fp], [fn, tp]] at a threshold."""
    matrix = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    return np.asarray(matrix, dtype=np.int64)


def choose_threshold(y: Labels, proba: Scores, target_precision: float | None = None) -> float:
    """Calibrate the decision threshold on validation scores.

    Without a target, the threshold maximising F1. With ``target_precision``, the lowest
    threshold whose precision reaches the target, which gives the highest recall at that
    precision. Raises when no threshold reaches the target.
    """
    precision, recall, thresholds = precision_recall_curve(y, proba)
    # The curve has one more (precision, recall) point than thresholds: the last is recall 0.
    precision, recall = precision[:-1], recall[:-1]
    if target_precision is None:
        denominator = precision + recall
        f1 = np.divide(
            2 * precision * recall,
            denominator,
            out=np.zeros_like(denominator),
            where=denominator > 0,
        )
        return float(thresholds[int(np.argmax(f1))])
    reaching = np.flatnonzero(precision >= target_precision)
    if reaching.size == 0:
        raise TrainingError(
            f"no threshold reaches precision {target_precision} on validation data"
            f" (best {precision.max():.4f})"
        )
    return float(thresholds[reaching[0]])


def summarise_folds(folds: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of each metric across CV folds."""
    return {
        name: {
            "mean": float(np.mean([f[name] for f in folds])),
            "std": float(np.std([f[name] for f in folds], ddof=1)) if len(folds) > 1 else 0.0,
        }
        for name in folds[0]
    }
