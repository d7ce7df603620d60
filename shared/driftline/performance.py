"""Classification performance of served predictions: realised (labels) and estimated (none).

Pure numpy on columns: ``label`` and ``prediction`` as 0/1 arrays, ``probability`` the positive
class's probability, one entry per served request.

Realised metrics come with 95% confidence intervals. The AUC's is DeLong's (DeLong, DeLong and
Clarke-Pearson 1988, in the fast midrank form of Sun and Xu 2014, as R's pROC computes it); the
others' are percentile intervals of a Poisson bootstrap (Hanley and MacGibbon 2006; Chamandy et
al. 2012, the form used at scale because a replicate is a weight vector over the one sorted
order, so no resample is sorted or copied).

Estimated metrics are confidence-based performance estimation (CBPE, as NannyML computes it):
were the probabilities calibrated, a row predicted positive is right with probability ``p``
and one predicted negative with ``1 - p``; the expected confusion matrix gives accuracy,
precision, recall and F1, and the expected true and false positive rates at every threshold
give the ROC AUC. They need no labels, so they are known as soon as predictions are served;
set next to realised figures on the same rows they show how far the calibration assumption
holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from driftline.job_contracts import PerformanceRule, PerformanceSummary, VariantPerformance
from driftline.registry_conventions import CHAMPION

# Equal-width bins of the expected calibration error (Guo et al. 2017 use 15; 10 is the
# common reporting choice and Evidently's).
ECE_BINS = 10
BOOTSTRAP_ROWS = 100_000
# Figures in the drift summary (a 4 KiB termination message) keep four decimals.
ROUNDING = 4
REALISED = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "log_loss",
    "brier",
    "ece",
    "average_precision",
)
ESTIMATED = ("roc_auc", "accuracy", "precision", "recall", "f1")


@dataclass(frozen=True)
class Interval:
    """A figure and its confidence interval.

    All three are None where the figure is undefined on the rows (precision with no positive
    prediction, AUC with one class).
    """

    value: float | None
    low: float | None
    high: float | None


def realised(
    label: np.ndarray,
    probability: np.ndarray,
    prediction: np.ndarray,
    *,
    confidence: float = 0.95,
    replicates: int = 200,
    seed: int = 0,
) -> dict[str, Interval]:
    """Every realised metric of labelled rows, with its interval.

    ``roc_auc`` (DeLong), and each of ``REALISED`` (bootstrap percentile, ``replicates``
    Poisson(1) weight vectors from ``seed``, over at most ``BOOTSTRAP_ROWS`` rows). Accuracy,
    precision, recall and F1 are those of ``prediction``, the class served at the model's
    threshold; log loss clips probabilities to [eps, 1 - eps] like scikit-learn. Point values
    equal scikit-learn's on the same rows. Raises ValueError on empty or mismatched inputs.
    """
    y, p, yhat = _columns(label, probability, prediction)
    out = {"roc_auc": delong_auc(y, p, confidence)}
    full = _Ordered(y, p, yhat)
    point = full.metrics(np.ones(len(y)))
    rng = np.random.default_rng(seed)
    # Above BOOTSTRAP_ROWS the replicates weigh a uniform subsample of m rows and the spread
    # is scaled by sqrt(m / n), the m-out-of-n bootstrap (Bickel, Gotze and van Zwet 1997):
    # these figures are means or smooth functions of means, so their spread shrinks as
    # 1/sqrt(n), and a 1M-row window costs what a 100k-row one does.
    ordered, centre, size = full, point, len(y)
    if len(y) > BOOTSTRAP_ROWS:
        rows = np.sort(rng.choice(len(y), BOOTSTRAP_ROWS, replace=False))
        ordered, size = _Ordered(y[rows], p[rows], yhat[rows]), BOOTSTRAP_ROWS
        centre = ordered.metrics(np.ones(size))
    scale = np.sqrt(size / len(y))
    draws = np.empty((replicates, len(REALISED)))
    for r in range(replicates):
        replicate = ordered.metrics(rng.poisson(1.0, size).astype(np.float64))
        draws[r] = [np.nan if replicate[name] is None else replicate[name] for name in REALISED]
    tail = (1.0 - confidence) / 2.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: undefined figure
        lows = np.nanquantile(draws, tail, axis=0)
        highs = np.nanquantile(draws, 1.0 - tail, axis=0)
    for i, name in enumerate(REALISED):
        value, middle = point[name], centre[name]
        if value is None or middle is None:
            out[name] = Interval(None, None, None)
            continue
        ceiling = np.inf if name == "log_loss" else 1.0
        low = max(0.0, value - (middle - lows[i]) * scale)
        high = min(ceiling, value + (highs[i] - middle) * scale)
        out[name] = Interval(value, _finite(low), _finite(high))
    return out


def delong_auc(label: np.ndarray, probability: np.ndarray, confidence: float = 0.95) -> Interval:
    """ROC AUC with DeLong's interval (normal, clipped to [0, 1]); None with one class only.

    The AUC equals ``sklearn.metrics.roc_auc_score``; its variance is S10/m + S01/n from the
    structural components (placement values) of the m positives and n negatives.
    """
    from scipy import stats

    y = np.asarray(label)
    p = np.asarray(probability, dtype=np.float64)
    positives, negatives = p[y == 1], p[y == 0]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        return Interval(None, None, None)
    combined = stats.rankdata(np.concatenate([positives, negatives]))
    within_pos = stats.rankdata(positives)
    within_neg = stats.rankdata(negatives)
    v10 = (combined[:m] - within_pos) / n
    v01 = 1.0 - (combined[m:] - within_neg) / m
    auc = float(v10.mean())
    variance = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = float(stats.norm.ppf(0.5 + confidence / 2.0)) * float(np.sqrt(variance))
    return Interval(auc, max(0.0, auc - half), min(1.0, auc + half))


def paired_differences(
    label: np.ndarray,
    first: tuple[np.ndarray, np.ndarray],
    second: tuple[np.ndarray, np.ndarray],
    metrics: Sequence[str],
    *,
    confidence: float = 0.95,
    replicates: int = 200,
    seed: int = 0,
) -> dict[str, tuple[float, float, Interval]]:
    """Two models on the same labelled rows: per metric, each one's value and ``second - first``.

    ``first`` and ``second`` are (probability, prediction) columns. The difference's interval
    is DeLong's for correlated ROC curves for ``roc_auc`` (DeLong, DeLong and Clarke-Pearson
    1988: the covariance of the two AUCs from the same placement values), else the percentile
    interval of a paired Poisson bootstrap (one weight vector per replicate for both models).
    A metric undefined on the rows (one class, no positive prediction) is left out. Raises
    ValueError on mismatched columns or an unknown metric.
    """
    unknown = sorted(set(metrics) - {"roc_auc", *REALISED})
    if unknown:
        raise ValueError(f"unknown metrics {unknown}")
    y = np.asarray(label, dtype=np.int8)
    (p1, yhat1), (p2, yhat2) = first, second
    one = _Ordered(*_columns(y, p1, yhat1))
    two = _Ordered(*_columns(y, p2, yhat2))
    out: dict[str, tuple[float, float, Interval]] = {}
    if "roc_auc" in metrics and 2 <= int(y.sum()) <= len(y) - 2:
        out["roc_auc"] = _delong_paired(
            y, one.p[np.argsort(one.order)], two.p[np.argsort(two.order)], confidence
        )
    names = [m for m in metrics if m != "roc_auc"]
    ones = np.ones(len(y))
    a, b = one.metrics(ones), two.metrics(ones)
    names = [m for m in names if a[m] is not None and b[m] is not None]
    if not names:
        return out
    rng = np.random.default_rng(seed)
    draws = np.full((replicates, len(names)), np.nan)
    for r in range(replicates):
        w = rng.poisson(1.0, len(y)).astype(np.float64)
        x, z = one.metrics(w), two.metrics(w)
        for i, name in enumerate(names):
            left, right = x[name], z[name]
            if left is not None and right is not None:
                draws[r, i] = right - left
    tail = (1.0 - confidence) / 2.0
    lows = np.nanquantile(draws, tail, axis=0)
    highs = np.nanquantile(draws, 1.0 - tail, axis=0)
    for i, name in enumerate(names):
        first_value, second_value = float(a[name] or 0.0), float(b[name] or 0.0)
        out[name] = (
            first_value,
            second_value,
            Interval(second_value - first_value, float(lows[i]), float(highs[i])),
        )
    return out


def _delong_paired(
    y: np.ndarray, p1: np.ndarray, p2: np.ndarray, confidence: float
) -> tuple[float, float, Interval]:
    from scipy import stats

    m, n = int((y == 1).sum()), int((y == 0).sum())
    v10, v01 = [], []
    for p in (p1, p2):
        positives, negatives = p[y == 1], p[y == 0]
        combined = stats.rankdata(np.concatenate([positives, negatives]))
        v10.append((combined[:m] - stats.rankdata(positives)) / n)
        v01.append(1.0 - (combined[m:] - stats.rankdata(negatives)) / m)
    first, second = float(v10[0].mean()), float(v10[1].mean())
    # Var(A2 - A1) from the 2x2 covariances of the structural components.
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n
    half = float(stats.norm.ppf(0.5 + confidence / 2.0)) * float(np.sqrt(max(variance, 0.0)))
    difference = second - first
    return first, second, Interval(difference, difference - half, difference + half)


def estimated(probability: np.ndarray, prediction: np.ndarray) -> dict[str, float | None]:
    """CBPE figures of served rows (no labels): each of ``ESTIMATED``; None on no rows."""
    p = np.asarray(probability, dtype=np.float64)
    yhat = np.asarray(prediction, dtype=np.float64)
    if len(p) == 0:
        return dict.fromkeys(ESTIMATED)
    true_pos = float(np.sum(yhat * p))
    predicted_pos = float(yhat.sum())
    expected_pos = float(p.sum())
    order = np.argsort(-p, kind="stable")
    ends = _group_ends(p[order])
    tpr = np.concatenate([[0.0], np.cumsum(p[order])[ends]])
    fpr = np.concatenate([[0.0], np.cumsum(1.0 - p[order])[ends]])
    auc = None
    if tpr[-1] > 0 and fpr[-1] > 0:
        auc = float(np.trapezoid(tpr / tpr[-1], fpr / fpr[-1]))
    return {
        "roc_auc": auc,
        "accuracy": float(np.mean(yhat * p + (1.0 - yhat) * (1.0 - p))),
        "precision": true_pos / predicted_pos if predicted_pos > 0 else None,
        "recall": true_pos / expected_pos if expected_pos > 0 else None,
        # 2TP / (2TP + FP + FN), with FP + TP = predicted positives and FN + TP = expected ones.
        "f1": 2.0 * true_pos / (predicted_pos + expected_pos)
        if predicted_pos + expected_pos
        else None,
    }


def delay_quantiles(delays: np.ndarray) -> dict[str, float | None]:
    """p50, p90, p99 and max of label delays (seconds from serving to the label's arrival)."""
    d = np.asarray(delays, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.quantile(d, [0.5, 0.9, 0.99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(d.max())}


class _Ordered:
    """Labelled rows sorted once by descending probability; ``metrics`` weighs them.

    Weights are given in the rows' original order, so two models' ``_Ordered`` of the same
    rows take the same weight vector (a paired bootstrap).
    """

    def __init__(self, y: np.ndarray, p: np.ndarray, yhat: np.ndarray) -> None:
        order = np.argsort(-p, kind="stable")
        self.order = order
        self.y = y[order].astype(np.float64)
        self.p = p[order]
        self.yhat = yhat[order].astype(np.float64)
        self.ends = _group_ends(self.p)
        eps = np.finfo(np.float64).eps
        clipped = np.clip(self.p, eps, 1.0 - eps)
        self.loss = -(self.y * np.log(clipped) + (1.0 - self.y) * np.log(1.0 - clipped))
        self.squared = (self.p - self.y) ** 2
        self.correct = (self.y == self.yhat).astype(np.float64)
        self.bins = np.minimum((self.p * ECE_BINS).astype(np.int64), ECE_BINS - 1)
        self.gap = self.y - self.p

    def metrics(self, weights: np.ndarray) -> dict[str, float | None]:
        w = weights[self.order]
        total = w.sum()
        if total == 0:
            return dict.fromkeys(REALISED)
        wy = w * self.y
        positives = wy.sum()
        tp = float(np.dot(wy, self.yhat))
        fp = float(np.dot(w - wy, self.yhat))
        fn = float(positives - tp)
        gaps = np.bincount(self.bins, weights=w * self.gap, minlength=ECE_BINS)
        return {
            "accuracy": float(np.dot(w, self.correct) / total),
            "precision": tp / (tp + fp) if tp + fp > 0 else None,
            "recall": tp / positives if positives > 0 else None,
            "f1": 2.0 * tp / (2.0 * tp + fp + fn) if tp + fp + fn > 0 else None,
            "log_loss": float(np.dot(w, self.loss) / total),
            "brier": float(np.dot(w, self.squared) / total),
            "ece": float(np.abs(gaps).sum() / total),
            "average_precision": self._average_precision(w, wy, positives),
        }

    def _average_precision(self, w: np.ndarray, wy: np.ndarray, positives: float) -> float | None:
        # sklearn's step-wise sum: precision at each distinct threshold times the recall gained.
        if positives <= 0:
            return None
        tp = np.cumsum(wy)[self.ends]
        seen = np.cumsum(w)[self.ends]
        precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
        gained = np.diff(tp, prepend=0.0) / positives
        return float(np.dot(gained, precision))


def _group_ends(descending: np.ndarray) -> np.ndarray:
    """Index of the last row of each run of equal values (thresholds at distinct values)."""
    if len(descending) == 0:
        return np.empty(0, dtype=np.int64)
    change = np.flatnonzero(np.diff(descending) != 0)
    return np.append(change, len(descending) - 1)


def _columns(
    label: np.ndarray, probability: np.ndarray, prediction: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(label, dtype=np.int8)
    p = np.asarray(probability, dtype=np.float64)
    yhat = np.asarray(prediction, dtype=np.int8)
    if not len(y) == len(p) == len(yhat):
        raise ValueError(f"columns differ in length: {len(y)}, {len(p)}, {len(yhat)}")
    if len(y) == 0:
        raise ValueError("no labelled rows")
    return y, p, yhat


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class GroupPerformance:
    """One version and variant over a window: served, labelled, realised and estimated.

    ``status`` is "ok", or "insufficient_labels" below the minimum (``realised`` then None).
    ``estimated`` covers every served row; ``estimated_labelled`` the labelled ones only, the
    rows ``realised`` is measured on, so the two can be compared.
    """

    version: str
    variant: str
    served: int
    labelled: int
    coverage: float
    status: str
    realised: dict[str, Interval] | None
    estimated: dict[str, float | None]
    estimated_labelled: dict[str, float | None]
    label_delay_seconds: dict[str, float | None]


def assess(
    version: np.ndarray,
    variant: np.ndarray,
    probability: np.ndarray,
    prediction: np.ndarray,
    label: np.ndarray,
    delay: np.ndarray,
    *,
    min_labels: int,
    confidence: float = 0.95,
    replicates: int = 200,
    seed: int = 0,
) -> list[GroupPerformance]:
    """Performance per (version, variant) of served rows, sorted by version then variant.

    ``label`` is -1 where no label arrived; ``delay`` the seconds from serving to the label
    (NaN without one). Raises ValueError when the columns differ in length or ``min_labels``
    is below 1.
    """
    if min_labels < 1:
        raise ValueError(f"min_labels must be at least 1, got {min_labels}")
    columns = (version, variant, probability, prediction, label, delay)
    if len({len(c) for c in columns}) > 1:
        raise ValueError(f"columns differ in length: {[len(c) for c in columns]}")
    keys = sorted({(str(v), str(w)) for v, w in zip(version, variant, strict=True)})
    groups = []
    for key_version, key_variant in keys:
        rows = (version == key_version) & (variant == key_variant)
        y, p, yhat = label[rows], probability[rows], prediction[rows]
        has = y >= 0
        labelled = int(has.sum())
        enough = labelled >= min_labels
        figures = None
        if enough:
            figures = realised(
                y[has], p[has], yhat[has], confidence=confidence, replicates=replicates, seed=seed
            )
        groups.append(
            GroupPerformance(
                version=key_version,
                variant=key_variant,
                served=int(rows.sum()),
                labelled=labelled,
                coverage=labelled / int(rows.sum()),
                status="ok" if enough else "insufficient_labels",
                realised=figures,
                estimated=estimated(p, yhat),
                estimated_labelled=estimated(p[has], yhat[has]),
                label_delay_seconds=delay_quantiles(delay[rows]),
            )
        )
    return groups


def judge(
    groups: list[GroupPerformance],
    rule: PerformanceRule,
    version: str,
    reference: float | None,
    variant: str = CHAMPION,
) -> PerformanceSummary:
    """The rule's answer on ``version``'s ``variant`` rows, and every group's brief figures.

    It breaches when the upper end of the metric's interval lies below the limit: the higher
    of ``rule.floor`` and ``reference - rule.max_drop`` (``reference`` is the version's
    training test score of the metric). Judging the interval, not the point, keeps a few
    unlucky labels from starting a retraining. Raises ValueError when ``rule.max_drop`` is set
    without a reference and no floor.
    """
    limits = [rule.floor] if rule.floor is not None else []
    if rule.max_drop is not None and reference is not None:
        limits.append(reference - rule.max_drop)
    if not limits:
        raise ValueError(f"maxDrop needs the training test {rule.metric} of version {version}")
    limit = round(max(limits), ROUNDING)
    briefs = [_brief(g) for g in groups]
    judged = next((g for g in groups if (g.version, g.variant) == (version, variant)), None)
    common = {
        "metric": rule.metric,
        "version": version,
        "limit": limit,
        "reference": None if reference is None else round(reference, ROUNDING),
        "variants": briefs,
    }
    figure = judged.realised.get(rule.metric) if judged and judged.realised else None
    if judged is None or figure is None or figure.value is None:
        labelled = judged.labelled if judged else 0
        why = (
            f"no predictions of version {version} served as {variant} in the window"
            if judged is None
            else f"{labelled} labelled rows of version {version}, {rule.min_labels} needed"
            if judged.realised is None
            else f"{rule.metric} is undefined on the labelled rows (one class only)"
        )
        return PerformanceSummary(
            status="insufficient_labels", breached=None, reason=why, value=None, low=None,
            high=None, labelled=labelled, **common,
        )  # fmt: skip
    value, low, high = (_rounded(x) for x in (figure.value, figure.low, figure.high))
    breached = figure.high is not None and figure.high < limit
    where = "below" if breached else "reaches"
    return PerformanceSummary(
        status="breach" if breached else "ok",
        breached=breached,
        reason=f"{rule.metric} {value} of version {version} on {judged.labelled} labelled rows:"
        f" its 95% interval, {low} to {high}, {where} the limit {limit}",
        value=value, low=low, high=high, labelled=judged.labelled, **common,
    )  # fmt: skip


def _brief(group: GroupPerformance) -> VariantPerformance:
    realised = group.realised or {}
    return VariantPerformance(
        version=group.version,
        variant=group.variant,
        served=group.served,
        labelled=group.labelled,
        coverage=round(group.coverage, ROUNDING),
        roc_auc=_rounded(realised["roc_auc"].value) if "roc_auc" in realised else None,
        accuracy=_rounded(realised["accuracy"].value) if "accuracy" in realised else None,
        roc_auc_estimated=_rounded(group.estimated["roc_auc"]),
        accuracy_estimated=_rounded(group.estimated["accuracy"]),
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, ROUNDING)
