import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftline.coercion import derive_schema
from driftline.schema import FeatureKind
from driftline.skew import skew_report
from driftline.stattests import DEFAULT_TESTS, STAT_TESTS, chi2_test, ks_test


def test_ks_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=3000), rng.normal(0.1, 1.0, size=2000)
    ours = ks_test(a, b, 0.05)
    reference = stats.ks_2samp(a, b)
    assert ours.statistic == pytest.approx(reference.statistic)
    assert ours.p_value == pytest.approx(reference.pvalue)
    assert ours.drifted == (reference.pvalue < 0.05)
    assert ours.threshold == 0.05


def test_chi2_equals_scipy_on_a_contingency_table() -> None:
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 20 + ["b"] * 30 + ["c"] * 40 + ["d"] * 10
    ours = chi2_test(reference, current, 0.01)
    table = np.array([[50, 30, 20, 0], [20, 30, 40, 10]])
    expected = stats.chi2_contingency(table, correction=False)
    assert ours.statistic == pytest.approx(expected.statistic)
    assert ours.p_value == pytest.approx(expected.pvalue)
    assert ours.drifted


def test_a_single_category_is_no_evidence() -> None:
    result = chi2_test(["x"] * 10, ["x"] * 5, 0.05)
    assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)


def test_registry_covers_every_kind() -> None:
    for kind in FeatureKind:
        assert kind in STAT_TESTS[DEFAULT_TESTS[kind]].kinds


def test_random_halves_of_adult_show_no_skew(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    shuffled = adult.sample(frac=1.0, random_state=3)
    half = len(shuffled) // 2
    report = skew_report(shuffled.iloc[:half], shuffled.iloc[half:], schema, alpha=0.001)
    assert len(report) == 14
    assert not any(r.result.drifted for r in report)


def test_a_sub_population_is_flagged_with_its_features_first(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    young = adult[adult["age"] < 30].sample(3000, random_state=1)
    report = skew_report(adult.sample(5000, random_state=2), young, schema)
    assert report[0].feature in {"age", "marital_status", "relationship"}
    assert {"age", "marital_status"} <= {r.feature for r in report if r.result.drifted}
