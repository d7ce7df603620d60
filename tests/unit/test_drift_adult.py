"""The drift decision on real UCI Adult: no false alarms, shifts caught, culprits ranked first.

A quick XGBoost model is trained on a 7,000-row split; the baseline is built from that split
(features) and a held-out split (predicted probabilities), as the trainer does. Windows come from
the remaining 40,000 rows. Every scenario runs twice: on the rows, and on the drift sketches of
the same requests served by two pods over two one-minute buckets (500 requests a bucket, 128
sample rows kept in each, so the KS tests see about 500 of the 2,000 rows).
"""

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from driftline.baseline import Baseline
from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema, to_model_frame
from driftline.drift import check_drift, decide
from driftline.drift_report import DriftReport, DriftStatus
from driftline.job_contracts import DriftThresholds
from driftline.schema import FeatureSchema
from driftline_training.pipeline import XGBParams, build_pipeline
from tests.sketching import sketched

WINDOW = 2000
THRESHOLDS = DriftThresholds()


@dataclass(frozen=True)
class Setup:
    schema: FeatureSchema
    model: Pipeline
    baseline: Baseline
    rest: pd.DataFrame
    read: str = "rows"

    def check(self, window: pd.DataFrame) -> DriftReport:
        frame = to_model_frame(window, self.schema)
        probabilities = self.model.predict_proba(frame)[:, 1]
        if self.read == "rows":
            return check_drift(self.baseline, frame, probabilities, THRESHOLDS)
        merged = sketched(self.baseline, self.schema, window, probabilities, pods=2, buckets=2)
        return decide(self.baseline, merged.summary(), THRESHOLDS)


@pytest.fixture(scope="module")
def trained(adult: pd.DataFrame) -> Setup:
    shuffled = adult.sample(frac=1.0, random_state=11).reset_index(drop=True)
    train, held_out, rest = shuffled.iloc[:7000], shuffled.iloc[7000:8842], shuffled.iloc[8842:]
    schema = derive_schema(train, "income")
    model = build_pipeline(schema, XGBParams().with_rounds(200), seed=0, threads=2)
    model.fit(to_model_frame(train, schema), train["income"].to_numpy())
    held_out_proba = model.predict_proba(to_model_frame(held_out, schema))[:, 1]
    baseline = build_baseline(train, held_out_proba, schema)
    return Setup(schema, model, baseline, rest.reset_index(drop=True))


@pytest.fixture(params=["rows", "sketch"])
def setup(trained: Setup, request: pytest.FixtureRequest) -> Setup:
    return replace(trained, read=request.param)


def test_twenty_windows_without_shift_raise_at_most_one_alarm(setup: Setup) -> None:
    assert len(setup.rest) >= 20 * WINDOW
    reports = [setup.check(setup.rest.iloc[i * WINDOW : (i + 1) * WINDOW]) for i in range(20)]
    assert all(r.status is not DriftStatus.INSUFFICIENT_DATA for r in reports)
    alarms = [r.reason for r in reports if r.drifted]
    assert len(alarms) <= 1, alarms
    assert all(r.prediction.checked for r in reports)
    assert all(len(r.features) == 14 for r in reports)


@pytest.mark.parametrize(
    ("name", "select", "culprits"),
    [
        ("one age range", lambda f: f["age"].between(20, 29), {"age"}),
        (
            "one education level",
            lambda f: f["education"] == "HS-grad",
            {"education", "education_num"},
        ),
        (
            "one occupation group",
            lambda f: f["occupation"].isin(["Exec-managerial", "Prof-specialty"]),
            {"occupation"},
        ),
    ],
)
def test_a_sub_population_is_flagged_with_its_features_first(
    setup: Setup, name: str, select, culprits: set[str]
) -> None:
    rows = setup.rest[select(setup.rest)]
    report = setup.check(rows.sample(WINDOW, random_state=5))
    assert report.status is DriftStatus.DRIFT, name
    ranked = [f.name for f in report.ranked_features()]
    assert set(ranked[: len(culprits)]) == culprits, ranked
    drifted = {f.name for f in report.features if f.drifted}
    assert culprits <= drifted
    for feature in report.features:
        if feature.name in culprits:
            assert feature.psi > THRESHOLDS.psi
            assert feature.p_adjusted is not None and feature.p_adjusted <= THRESHOLDS.p_value


def test_a_gradual_mix_is_flagged_from_some_level_on(setup: Setup) -> None:
    young = setup.rest[setup.rest["age"].between(20, 29)]
    levels = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    reports = []
    for level in levels:
        mixed = int(WINDOW * level)
        window = pd.concat(
            [
                setup.rest.sample(WINDOW - mixed, random_state=3),
                young.sample(mixed, random_state=4),
            ]
        )
        reports.append(setup.check(window))
    flags = [bool(r.drifted) for r in reports]
    age_psi = [next(f.psi for f in r.features if f.name == "age") for r in reports]
    # Age PSI grows with the mix; once flagged, every larger mix stays flagged.
    assert age_psi == sorted(age_psi)
    first = flags.index(True)
    assert not any(flags[:first]) and all(flags[first:])
    assert levels[first] in (0.3, 0.4, 0.5, 0.6), list(zip(levels, flags, age_psi, strict=True))
    assert not flags[0] and not flags[1]
    print(f"gradual mix of ages 20-29: first flagged at {levels[first]:.0%}")


def test_a_shift_that_moves_predictions_is_caught_by_prediction_drift(setup: Setup) -> None:
    married = setup.rest[setup.rest["marital_status"] == "Married-civ-spouse"]
    report = setup.check(married.sample(WINDOW, random_state=6))
    prediction = report.prediction
    assert prediction.checked and prediction.drifted
    assert prediction.psi is not None and prediction.psi > THRESHOLDS.prediction_psi
    assert prediction.p_value is not None and prediction.p_value < 1e-6
    assert prediction.reference == {
        "psi": "baseline.prediction.bins (10)",
        "ks": f"baseline.prediction.sample ({len(setup.baseline.prediction.sample)})",
    }
    assert "predictions drifted" in report.reason


def test_a_shift_in_a_feature_the_model_ignores_leaves_predictions_alone(setup: Setup) -> None:
    heavy = setup.rest[setup.rest["fnlwgt"] > setup.rest["fnlwgt"].quantile(0.75)]
    report = setup.check(heavy.sample(WINDOW, random_state=7))
    assert [f.name for f in report.features if f.drifted] == ["fnlwgt"]
    assert report.prediction.checked and not report.prediction.drifted


def test_references_name_what_each_test_used(setup: Setup) -> None:
    report = setup.check(setup.rest.iloc[:WINDOW])
    by_name = {f.name: f for f in report.features}
    assert by_name["age"].test == "ks"
    assert by_name["age"].reference == {
        "psi": "baseline.bins (10)",
        "ks": "baseline.sample (5000)",
    }
    # capital_gain is mostly zero: tied quantiles collapse into fewer bins, and the name says so.
    bins = len(setup.baseline.numeric["capital_gain"].proportions)
    assert bins < 10
    assert by_name["capital_gain"].reference["psi"] == f"baseline.bins ({bins})"
    assert by_name["sex"].test == "chi2"
    assert by_name["sex"].reference["chi2"] == "baseline.proportions x count (7000)"
    assert report.samples == {"reference": 7000, "current": WINDOW}
    age_bins = by_name["age"].bins
    assert sum(b.reference for b in age_bins) == pytest.approx(1.0)
    assert sum(b.current for b in age_bins) == pytest.approx(1.0)
    assert np.isfinite([f.psi for f in report.features]).all()


def test_rows_and_sketches_decide_alike_window_by_window(trained: Setup) -> None:
    """The same 20 stable windows, 7 mixes and 4 shifts: the same drifted features either way.

    PSI is exact in both, so only a KS p-value near the line could split them; none does here.
    """
    sketch = replace(trained, read="sketch")
    rest = trained.rest
    young = rest[rest["age"].between(20, 29)]
    windows = [rest.iloc[i * WINDOW : (i + 1) * WINDOW] for i in range(20)]
    windows += [
        pd.concat([rest.sample(WINDOW - m, random_state=3), young.sample(m, random_state=4)])
        for m in range(0, 1400, 200)
    ]
    windows += [
        rest[rest["education"] == "HS-grad"].sample(WINDOW, random_state=5),
        rest[rest["marital_status"] == "Married-civ-spouse"].sample(WINDOW, random_state=6),
        rest[rest["fnlwgt"] > rest["fnlwgt"].quantile(0.75)].sample(WINDOW, random_state=7),
        young.sample(WINDOW, random_state=8),
    ]
    for i, window in enumerate(windows):
        rows, sketched_ = trained.check(window), sketch.check(window)
        assert sketched_.window is not None and sketched_.window.ks_sample < WINDOW
        flagged = {f.name for f in rows.features if f.drifted}
        assert {f.name for f in sketched_.features if f.drifted} == flagged, i
        assert sketched_.prediction.drifted == rows.prediction.drifted, i
