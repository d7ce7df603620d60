"""The report around the statistics: insufficient data, the 4 KiB summary, the HTML page."""

import numpy as np
import pandas as pd
import pytest

from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema, to_model_frame
from driftline.drift import DriftInputError, check_drift
from driftline.drift_report import (
    SUMMARY_MAX_BYTES,
    DriftReport,
    DriftStatus,
    FeatureDrift,
    PredictionDrift,
    summary,
)
from driftline.job_contracts import DriftCheckSummary, DriftThresholds, parse_message
from driftline.schema import MISSING_CATEGORY, FeatureKind
from driftline_training.drift_report_html import render_html


@pytest.fixture(scope="module")
def adult_baseline(adult: pd.DataFrame):
    schema = derive_schema(adult.iloc[:10_000], "income")
    proba = np.random.default_rng(0).uniform(size=3000)
    return schema, build_baseline(adult.iloc[:10_000], proba, schema)


def test_below_min_samples_the_answer_is_insufficient_data(adult: pd.DataFrame, adult_baseline):
    schema, baseline = adult_baseline
    thresholds = DriftThresholds(min_samples=500)
    # Even a blatant shift is not called with 499 rows, and not called "no drift" either.
    young = to_model_frame(adult[adult["age"] < 25].iloc[:499], schema)
    report = check_drift(baseline, young, np.zeros(499), thresholds)
    assert report.status is DriftStatus.INSUFFICIENT_DATA
    assert report.drifted is None and report.features == () and report.max_psi is None
    assert report.reason == "insufficient data: current has 499 rows < min_samples 500"
    assert not report.prediction.checked
    assert summary(report).drifted is None
    enough = check_drift(
        baseline,
        to_model_frame(adult[adult["age"] < 25].iloc[:500], schema),
        np.zeros(500),
        thresholds,
    )
    assert enough.status is DriftStatus.DRIFT and enough.drifted is True
    strict = check_drift(baseline, young, None, DriftThresholds(min_samples=20_000))
    assert "reference has 10000 rows" in strict.reason


def test_missing_features_and_unseen_categories(adult: pd.DataFrame, adult_baseline) -> None:
    schema, baseline = adult_baseline
    frame = to_model_frame(adult.iloc[20_000:22_000], schema)
    with pytest.raises(DriftInputError, match="lacks features: age, sex"):
        check_drift(baseline, frame.drop(columns=["age", "sex"]), None, DriftThresholds())
    # A category the baseline never saw lands in its own bucket and drives PSI up.
    frame.loc[frame.index[:600], "workclass"] = "Space-agency"
    report = check_drift(baseline, frame, None, DriftThresholds())
    workclass = next(f for f in report.features if f.name == "workclass")
    unseen = next(b for b in workclass.bins if b.label == "(unseen)")
    assert unseen.reference == 0.0 and unseen.current == pytest.approx(0.3)
    assert workclass.drifted and report.drifted
    assert report.prediction.note == "no predicted probabilities were given"


def test_a_numeric_column_that_turns_null_is_tested_on_its_bins(
    adult: pd.DataFrame, adult_baseline
) -> None:
    schema, baseline = adult_baseline
    frame = to_model_frame(adult.iloc[20_000:22_000], schema)
    frame["hours_per_week"] = np.nan
    report = check_drift(baseline, frame, None, DriftThresholds())
    hours = next(f for f in report.features if f.name == "hours_per_week")
    assert hours.test == "chi2" and "chi2" in hours.reference and hours.drifted
    assert hours.current_count == 0


def _feature(i: int, psi: float) -> FeatureDrift:
    return FeatureDrift(
        name=f"feature_with_a_rather_long_name_{i:04d}",
        kind=FeatureKind.NUMERIC,
        test="ks",
        statistic=0.1,
        psi=psi,
        p_value=1e-5,
        p_adjusted=2e-5,
        reference={"psi": "baseline.bins (10)", "ks": "baseline.sample (5000)"},
        drifted=psi > 0.2,
        current_count=1000,
    )


def test_summary_fits_in_4_kib_and_keeps_the_top_offenders() -> None:
    rng = np.random.default_rng(1)
    features = tuple(_feature(i, float(p)) for i, p in enumerate(rng.uniform(0, 1, 500)))
    report = DriftReport(
        status=DriftStatus.DRIFT,
        drifted=True,
        reason="x" * 5000,
        samples={"reference": 30_000, "current": 1000},
        thresholds=DriftThresholds(),
        features=features,
        prediction=PredictionDrift(checked=False, note="no model"),
        max_psi=max(f.psi for f in features),
        source={"mode": "files"},
    )
    out = summary(report)
    # The termination message is the summary's JSON, and what the operator reads back.
    size = len(out.model_dump_json().encode())
    assert size <= SUMMARY_MAX_BYTES
    kept = out.features
    assert 10 < len(kept) < 500
    assert out.features_omitted == 500 - len(kept)
    assert [f.psi for f in kept] == sorted((f.psi for f in kept), reverse=True)
    assert kept[0].psi == round(max(f.psi for f in features), 4)
    assert set(kept[0].model_dump()) == {"name", "test", "psi", "p_value", "p_adjusted", "drifted"}
    assert out.features_drifted == sum(f.drifted for f in features)
    assert {"drifted", "reason", "samples", "features", "prediction"} <= set(out.model_dump())
    assert parse_message(DriftCheckSummary, out.model_dump_json()) == out
    # Nothing is dropped when everything fits.
    small = report.model_copy(update={"features": features[:5], "reason": "drift"})
    assert summary(small).features_omitted == 0 and len(summary(small).features) == 5


def test_html_is_self_contained_and_escapes_names(adult: pd.DataFrame, adult_baseline) -> None:
    schema, baseline = adult_baseline
    frame = to_model_frame(adult[adult["age"] < 30].iloc[:2000], schema)
    report = check_drift(baseline, frame, np.full(2000, 0.1), DriftThresholds())
    page = render_html(report.model_copy(update={"source": {"model": "<b>adult</b>"}}))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http" not in page and "<link" not in page
    assert "&lt;b&gt;adult&lt;/b&gt;" in page
    for name in schema.names:
        assert f'id="f-{name.replace("_", "-")}"' in page
    assert page.count('class="bar current"') > 14 * 2
    assert "baseline.sample (5000)" in page


def test_to_model_frame_types_categories_from_the_schema(adult: pd.DataFrame) -> None:
    # A number in a categorical column loses the ".0" a reader's float guess gives it.
    schema = derive_schema(adult, "income")
    mixed = adult.iloc[:50].astype({"workclass": object})
    mixed.loc[mixed.index[0], "workclass"] = 3.0
    mixed.loc[mixed.index[1], "workclass"] = None
    frame = to_model_frame(mixed, schema)
    assert frame["workclass"].iloc[0] == "3" and frame["workclass"].iloc[1] == MISSING_CATEGORY
    rest = mixed["workclass"].iloc[2:].fillna(MISSING_CATEGORY)
    assert frame["workclass"].iloc[2:].tolist() == rest.tolist()
