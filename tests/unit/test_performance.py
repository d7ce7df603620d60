"""Realised and estimated performance: scikit-learn's values, nominal coverage, CBPE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from driftline import performance
from driftline.job_contracts import PerformanceRule
from driftline.performance import (
    assess,
    delong_auc,
    estimated,
    judge,
    paired_differences,
    realised,
)


def _calibrated(n: int, seed: int, threshold: float = 0.4):
    """Probabilities with ties (rounded) and labels drawn from them: calibrated by design."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.beta(2, 5, n), 2)
    y = (rng.random(n) < p).astype(np.int8)
    return y, p, (p >= threshold).astype(np.int8)


def test_point_values_equal_scikit_learn() -> None:
    y, p, yhat = _calibrated(3000, seed=1)
    figures = realised(y, p, yhat, replicates=20)
    expected = {
        "roc_auc": metrics.roc_auc_score(y, p),
        "accuracy": metrics.accuracy_score(y, yhat),
        "precision": metrics.precision_score(y, yhat),
        "recall": metrics.recall_score(y, yhat),
        "f1": metrics.f1_score(y, yhat),
        "log_loss": metrics.log_loss(y, p),
        "brier": metrics.brier_score_loss(y, p),
        "average_precision": metrics.average_precision_score(y, p),
    }
    for name, value in expected.items():
        assert figures[name].value == pytest.approx(value, abs=1e-12), name
        assert figures[name].low <= figures[name].value <= figures[name].high, name


def test_expected_calibration_error_is_the_binned_gap() -> None:
    y, p, yhat = _calibrated(2000, seed=2)
    bins = np.minimum((p * 10).astype(int), 9)
    gap = sum(abs(y[bins == b].sum() - p[bins == b].sum()) for b in range(10)) / len(y)
    assert realised(y, p, yhat, replicates=10)["ece"].value == pytest.approx(gap)


def test_delong_interval_covers_the_true_auc_at_about_its_nominal_rate() -> None:
    # Binormal scores: positives N(d, 1), negatives N(0, 1), so the true AUC is Phi(d / sqrt 2).
    d, runs = 1.0, 400
    true_auc = stats.norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(runs):
        y = (rng.random(300) < 0.3).astype(np.int8)
        score = rng.normal(d * y, 1.0)
        interval = delong_auc(y, score)
        covered += interval.low <= true_auc <= interval.high
    # 95% nominal; 400 runs put the observed rate within about +-2.2 points of it.
    assert 0.92 <= covered / runs <= 0.98


def test_bootstrap_interval_of_accuracy_covers_at_about_its_nominal_rate() -> None:
    runs, covered = 150, 0
    for seed in range(runs):
        y, p, yhat = _calibrated(400, seed=100 + seed)
        true_accuracy = np.mean(np.where(yhat == 1, p, 1 - p))  # the population's, given p
        interval = realised(y, p, yhat, replicates=200, seed=seed)["accuracy"]
        covered += interval.low <= true_accuracy <= interval.high
    assert 0.89 <= covered / runs <= 0.99


def test_one_class_and_no_positive_prediction_are_undefined_not_errors() -> None:
    y = np.zeros(50, dtype=np.int8)
    p = np.linspace(0.01, 0.3, 50)
    figures = realised(y, p, np.zeros(50, dtype=np.int8), replicates=10)
    assert figures["roc_auc"].value is None
    assert figures["precision"].value is None
    assert figures["recall"].value is None
    assert figures["average_precision"].value is None
    assert figures["accuracy"].value == 1.0


def test_a_large_window_bootstraps_a_subsample_with_the_same_spread(monkeypatch) -> None:
    y, p, yhat = _calibrated(20_000, seed=4)
    full = realised(y, p, yhat, replicates=300)
    monkeypatch.setattr(performance, "BOOTSTRAP_ROWS", 5_000)
    sub = realised(y, p, yhat, replicates=300)
    for name in ("accuracy", "brier", "f1", "average_precision"):
        assert sub[name].value == full[name].value
        width_full = full[name].high - full[name].low
        width_sub = sub[name].high - sub[name].low
        assert width_sub == pytest.approx(width_full, rel=0.3), name


def test_cbpe_estimates_realised_performance_when_probabilities_are_calibrated() -> None:
    y, p, yhat = _calibrated(50_000, seed=5)
    guess, truth = estimated(p, yhat), realised(y, p, yhat, replicates=50)
    for name in ("roc_auc", "accuracy", "precision", "recall", "f1"):
        assert guess[name] == pytest.approx(truth[name].value, abs=0.01), name


def test_cbpe_misses_when_the_model_is_overconfident() -> None:
    # Labels follow a flatter curve than the served probabilities: CBPE is too optimistic,
    # which is why the check prints it beside the realised figure.
    y, p, yhat = _calibrated(50_000, seed=6)
    sharp = np.clip(0.5 + 1.6 * (p - 0.5), 0.0, 1.0)
    guess, truth = estimated(sharp, yhat), realised(y, sharp, yhat, replicates=20)
    assert guess["accuracy"] > truth["accuracy"].value + 0.02


def test_assess_groups_by_version_and_variant_and_counts_labels() -> None:
    y, p, yhat = _calibrated(900, seed=7)
    version = np.array(["3"] * 600 + ["4"] * 300, dtype=object)
    variant = np.array(["champion"] * 600 + ["challenger"] * 300, dtype=object)
    label = y.copy()
    label[::3] = -1  # a third of the labels have not arrived
    delay = np.where(label >= 0, 60.0, np.nan)
    groups = assess(version, variant, p, yhat, label, delay, min_labels=250, replicates=20)
    assert [(g.version, g.variant) for g in groups] == [("3", "champion"), ("4", "challenger")]
    champion, challenger = groups
    assert (champion.served, champion.labelled, champion.status) == (600, 400, "ok")
    assert challenger.labelled == 200
    assert challenger.status == "insufficient_labels"
    assert challenger.realised is None
    assert challenger.estimated["accuracy"] is not None
    assert champion.coverage == pytest.approx(400 / 600)
    assert champion.label_delay_seconds["p50"] == 60.0
    rows = slice(0, 600)
    has = label[rows] >= 0
    assert champion.realised["roc_auc"].value == pytest.approx(
        metrics.roc_auc_score(y[rows][has], p[rows][has])
    )


def test_bad_inputs_are_value_errors() -> None:
    with pytest.raises(ValueError, match="no labelled rows"):
        realised(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="differ in length"):
        realised(np.array([1]), np.array([0.5, 0.2]), np.array([1]))
    with pytest.raises(ValueError, match="min_labels"):
        assess(*[np.array([])] * 6, min_labels=0)


def _groups(auc_shift: float = 0.0, labelled_every: int = 1):
    y, p, yhat = _calibrated(2000, seed=8)
    label = y.copy()
    if auc_shift:
        label = 1 - label  # labels flipped: the model is now wrong where it was right
    label[np.arange(len(label)) % labelled_every != 0] = -1
    version = np.array(["3"] * 2000, dtype=object)
    variant = np.array(["champion"] * 1500 + ["shadow"] * 500, dtype=object)
    delay = np.where(label >= 0, 5.0, np.nan)
    return assess(version, variant, p, yhat, label, delay, min_labels=300, replicates=50)


def test_judge_breaches_only_when_the_whole_interval_is_below_the_limit() -> None:
    groups = _groups()
    auc = next(g for g in groups if g.variant == "champion").realised["roc_auc"]
    below = PerformanceRule(floor=round(auc.high + 0.01, 4))
    inside = PerformanceRule(floor=round((auc.low + auc.high) / 2, 4))
    assert judge(groups, below, "3", None).status == "breach"
    answer = judge(groups, inside, "3", None)
    assert (answer.status, answer.breached) == ("ok", False)
    assert answer.value == round(auc.value, 4)
    assert [(v.version, v.variant) for v in answer.variants] == [
        ("3", "champion"), ("3", "shadow"),
    ]  # fmt: skip


def test_judge_limit_is_the_higher_of_floor_and_reference_minus_drop() -> None:
    groups = _groups()
    assert judge(groups, PerformanceRule(floor=0.5, max_drop=0.05), "3", 0.9).limit == 0.85
    assert judge(groups, PerformanceRule(floor=0.88, max_drop=0.05), "3", 0.9).limit == 0.88
    assert judge(groups, PerformanceRule(floor=0.5, max_drop=0.05), "3", None).limit == 0.5
    with pytest.raises(ValueError, match="maxDrop needs the training test roc_auc"):
        judge(groups, PerformanceRule(max_drop=0.05), "3", None)


def test_judge_flipped_labels_breach_and_few_labels_are_insufficient() -> None:
    rule = PerformanceRule(floor=0.6)
    assert judge(_groups(auc_shift=1.0), rule, "3", None).status == "breach"
    few = judge(_groups(labelled_every=10), rule, "3", None)
    assert (few.status, few.breached, few.labelled) == ("insufficient_labels", None, 150)
    absent = judge(_groups(), rule, "4", None)
    assert absent.status == "insufficient_labels" and "version 4" in absent.reason


def test_paired_differences_of_a_model_with_itself_are_exactly_zero() -> None:
    y, p, yhat = _calibrated(3000, seed=9)
    paired = paired_differences(y, (p, yhat), (p, yhat), ["roc_auc", "accuracy", "f1"])
    for name, (first, second, interval) in paired.items():
        assert first == second, name
        assert (interval.value, interval.low, interval.high) == (0.0, 0.0, 0.0), name


def test_paired_auc_interval_finds_a_better_model_and_matches_scikit_learn() -> None:
    rng = np.random.default_rng(10)
    y = (rng.random(4000) < 0.3).astype(np.int8)
    shared = rng.normal(size=4000)
    weak = 1 / (1 + np.exp(-(0.8 * y + shared + rng.normal(scale=0.5, size=4000))))
    strong = 1 / (1 + np.exp(-(1.2 * y + shared + rng.normal(scale=0.5, size=4000))))
    paired = paired_differences(
        y, (weak, (weak > 0.6).astype(np.int8)), (strong, (strong > 0.6).astype(np.int8)),
        ["roc_auc", "accuracy"],
    )  # fmt: skip
    first, second, interval = paired["roc_auc"]
    assert first == pytest.approx(metrics.roc_auc_score(y, weak))
    assert second == pytest.approx(metrics.roc_auc_score(y, strong))
    assert interval.value == pytest.approx(second - first)
    assert 0 < interval.low < interval.value < interval.high
    # Pairing removes the shared noise: the interval is narrower than the unpaired one.
    unpaired = delong_auc(y, weak)
    assert interval.high - interval.low < unpaired.high - unpaired.low
    assert paired["accuracy"][2].low < paired["accuracy"][2].value < paired["accuracy"][2].high
