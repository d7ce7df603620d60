"""The drift decision: compare a window of data with a model version's baseline.

Rule: a feature drifts when its PSI exceeds ``thresholds.psi`` AND its distribution test is
significant after the Benjamini-Hochberg correction across features (adjusted p <=
``thresholds.p_value``). PSI alone flags harmless shifts in small windows; a test alone flags
negligible shifts in large ones; together they ask for a shift that is both real and big. The
predictions drift when their PSI exceeds ``thresholds.prediction_psi`` and their numeric test's
(KS) p-value is <= ``thresholds.p_value`` (one test, no correction). The tests are
``driftline.stattests.DEFAULT_TESTS`` of each kind. The window drifts when any feature or the
predictions drift. Fewer than ``thresholds.min_samples`` rows (current or reference) give
"insufficient data", never "no drift".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftline.baseline import Baseline
from driftline.drift_compare import Comparison, compare_categorical, compare_numeric
from driftline.drift_report import (
    DriftReport,
    DriftStatus,
    FeatureDrift,
    MissingShare,
    PredictionDrift,
)
from driftline.drift_window import NumericWindow, WindowSummary, summarise_rows
from driftline.job_contracts import DriftThresholds
from driftline.schema import FeatureKind
from driftline.stattests import DEFAULT_TESTS, benjamini_hochberg

# How many feature names a one-line reason lists.
REASON_NAMES = 5


class DriftInputError(ValueError):
    """The current data cannot be compared with the baseline (for example missing features)."""


def check_drift(
    baseline: Baseline,
    current: pd.DataFrame,
    probabilities: npt.ArrayLike | None,
    thresholds: DriftThresholds,
    *,
    prediction_note: str = "no predicted probabilities were given",
) -> DriftReport:
    """Compare ``current`` (a model frame, see ``coercion.to_model_frame``) with ``baseline``.

    ``probabilities`` are the predicted probabilities of the same rows, or None when there is
    no model (``prediction_note`` then says why in the report). Raises DriftInputError when
    the frame lacks a feature of the baseline.
    """
    names = [*baseline.numeric, *baseline.categorical]
    missing = [name for name in names if name not in current.columns]
    if missing:
        raise DriftInputError("current data lacks features: " + ", ".join(missing))
    window = summarise_rows(baseline, current, probabilities)
    return decide(baseline, window, thresholds, prediction_note=prediction_note)


def decide(
    baseline: Baseline,
    window: WindowSummary,
    thresholds: DriftThresholds,
    *,
    prediction_note: str = "no predicted probabilities were given",
) -> DriftReport:
    """The drift decision on a window reduced to counts and samples (rows or sketches).

    ``window.prediction`` None means no model: ``prediction_note`` says why in the report.
    """
    samples = {"reference": reference_rows(baseline), "current": window.rows}
    short = [f"{side} has {n} rows" for side, n in samples.items() if n < thresholds.min_samples]
    if short:
        return DriftReport(
            status=DriftStatus.INSUFFICIENT_DATA,
            drifted=None,
            reason=f"insufficient data: {' and '.join(short)} < min_samples"
            f" {thresholds.min_samples}",
            samples=samples,
            thresholds=thresholds,
            features=(),
            prediction=PredictionDrift(checked=False, note="insufficient data"),
            max_psi=None,
            window=window.window,
        )
    features = _feature_drift(baseline, window, thresholds)
    prediction = _prediction_drift(baseline, window.prediction, thresholds, prediction_note)
    drifted = any(f.drifted for f in features) or bool(prediction.drifted)
    return DriftReport(
        status=DriftStatus.DRIFT if drifted else DriftStatus.NO_DRIFT,
        drifted=drifted,
        reason=_reason(features, prediction, thresholds),
        samples=samples,
        thresholds=thresholds,
        features=features,
        prediction=prediction,
        max_psi=max((f.psi for f in features if f.testable), default=None),
        window=window.window,
    )


def reference_rows(baseline: Baseline) -> int:
    """Rows of the data the baseline was built from (numeric counts exclude nulls)."""
    rows = [ref.count for ref in baseline.categorical.values()]
    rows += [
        round(ref.count / (1 - ref.null_fraction))
        for ref in baseline.numeric.values()
        if ref.null_fraction < 1
    ]
    return max(rows, default=0)


def _feature_drift(
    baseline: Baseline, window: WindowSummary, thresholds: DriftThresholds
) -> tuple[FeatureDrift, ...]:
    alpha, psi = thresholds.p_value, thresholds.psi
    # Each kind's test comes from the registry (``driftline.stattests``) by name.
    numeric_test = DEFAULT_TESTS[FeatureKind.NUMERIC]
    categorical_test = DEFAULT_TESTS[FeatureKind.CATEGORICAL]
    compared: list[tuple[str, FeatureKind, Comparison]] = []
    for name, numeric in baseline.numeric.items():
        result = compare_numeric(
            numeric, window.numeric[name], alpha=alpha, psi_threshold=psi, test_name=numeric_test
        )
        compared.append((name, FeatureKind.NUMERIC, result))
    for name, categorical in baseline.categorical.items():
        result = compare_categorical(
            categorical,
            dict(window.categorical[name]),
            alpha=alpha,
            psi_threshold=psi,
            test_name=categorical_test,
        )
        compared.append((name, FeatureKind.CATEGORICAL, result))
    # One Benjamini-Hochberg family: each feature's test, then each missing-share test.
    p_values = [c.test.p_value if c.test else np.nan for _, _, c in compared]
    p_values += [c.missing.p_value if c.missing else np.nan for _, _, c in compared]
    adjusted = benjamini_hochberg(p_values).tolist()
    out = []
    for (name, kind, c), p_adjusted, p_missing in zip(
        compared, adjusted[: len(compared)], adjusted[len(compared) :], strict=True
    ):
        significant = any(not np.isnan(p) and p <= alpha for p in (p_adjusted, p_missing))
        out.append(
            FeatureDrift(
                name=name,
                kind=kind,
                test=c.test.test if c.test else "none",
                statistic=c.test.statistic if c.test else None,
                psi=c.psi.statistic,
                p_value=c.test.p_value if c.test else None,
                p_adjusted=None if np.isnan(p_adjusted) else p_adjusted,
                reference=c.reference,
                drifted=c.psi.drifted and significant,
                current_count=c.count,
                bins=c.bins,
                missing=_missing_share(c, p_missing),
                note=c.untestable,
            )
        )
    return tuple(out)


def _missing_share(c: Comparison, p_adjusted: float) -> MissingShare | None:
    if c.missing is None:
        return None
    missing_bin = c.bins[-1]
    return MissingShare(
        reference=missing_bin.reference,
        current=missing_bin.current,
        p_value=c.missing.p_value,
        p_adjusted=None if np.isnan(p_adjusted) else p_adjusted,
    )


def _prediction_drift(
    baseline: Baseline,
    window: NumericWindow | None,
    thresholds: DriftThresholds,
    note: str,
) -> PredictionDrift:
    if window is None:
        return PredictionDrift(checked=False, note=note)
    c = compare_numeric(
        baseline.prediction,
        window,
        alpha=thresholds.p_value,
        psi_threshold=thresholds.prediction_psi,
        # Predicted probabilities are a numeric variable: they get the numeric test.
        test_name=DEFAULT_TESTS[FeatureKind.NUMERIC],
        where="baseline.prediction",
    )
    if c.test is None:
        return PredictionDrift(checked=False, note="no finite predicted probabilities")
    return PredictionDrift(
        checked=True,
        note=f"{c.count} predicted probabilities",
        test=c.test.test,
        psi=c.psi.statistic,
        statistic=c.test.statistic,
        p_value=c.test.p_value,
        reference=c.reference,
        drifted=c.psi.drifted and c.test.p_value <= thresholds.p_value,
        bins=c.bins,
    )


def _reason(
    features: tuple[FeatureDrift, ...], prediction: PredictionDrift, thresholds: DriftThresholds
) -> str:
    ranked = sorted((f for f in features if f.testable), key=lambda f: -f.psi)
    drifted = [_named(f, thresholds.p_value) for f in ranked if f.drifted]
    parts = []
    if drifted:
        shown = ", ".join(drifted[:REASON_NAMES]) + (", ..." if len(drifted) > REASON_NAMES else "")
        parts.append(f"{len(drifted)} of {len(features)} features drifted ({shown})")
    if prediction.drifted:
        parts.append(f"predictions drifted (PSI {prediction.psi:.3f})")
    if not parts:
        top = f"max PSI {ranked[0].psi:.3f} on {ranked[0].name}" if ranked else "no features"
        loud = [f.name for f in ranked if f.psi > thresholds.psi]
        if loud:
            top += (
                f"; PSI above {thresholds.psi} but not significant: "
                f"{', '.join(loud[:REASON_NAMES])}"
            )
        parts.append(f"no drift ({top})")
    untested = [f"{f.name} ({f.note})" for f in features if f.note]
    if untested:
        parts.append("not testable: " + ", ".join(untested[:REASON_NAMES]))
    return "; ".join(parts)


def _named(feature: FeatureDrift, alpha: float) -> str:
    """The feature's name, with its missing share when that test is what flagged it."""
    missing = feature.missing
    if missing is None or missing.p_adjusted is None or missing.p_adjusted > alpha:
        return feature.name
    return f"{feature.name}: missing {missing.reference:.1%} -> {missing.current:.1%}"
