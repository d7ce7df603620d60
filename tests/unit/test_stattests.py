import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftline import stattests
from driftline.coercion import derive_schema, to_model_frame
from driftline.schema import FeatureKind, FeatureSchema
from driftline.stattests import (
    DEFAULT_TESTS,
    STAT_TESTS,
    Compares,
    Direction,
    chi2_test,
    ks_test,
    stat_test,
)

# The registered tests that take two raw samples, per kind.
SAMPLE_TESTS = {FeatureKind.NUMERIC: "ks", FeatureKind.CATEGORICAL: "chi2"}


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
        assert kind in STAT_TESTS[SAMPLE_TESTS[kind]].kinds


def test_a_test_is_looked_up_by_what_it_compares() -> None:
    ks = stat_test("ks", FeatureKind.NUMERIC, Compares.SAMPLES)
    assert ks.function is ks_test and ks.result_name == "ks"
    assert stat_test("chi2_counts", FeatureKind.CATEGORICAL, Compares.COUNTS).result_name == "chi2"
    psi = stat_test("psi", FeatureKind.NUMERIC, Compares.SHARES, Direction.STATISTIC_ABOVE)
    assert psi.result_name == "psi"
    with pytest.raises(ValueError, match="takes samples"):
        stat_test("ks", FeatureKind.CATEGORICAL, Compares.COUNTS)
    with pytest.raises(ValueError, match="no statistical test 'wasserstein'"):
        stat_test("wasserstein", FeatureKind.NUMERIC, Compares.SAMPLES)


def _per_feature(
    reference: pd.DataFrame, current: pd.DataFrame, schema: FeatureSchema, alpha: float
) -> dict[str, stattests.TestResult]:
    """Each schema feature of two frames through its kind's two-sample test."""
    ref, cur = to_model_frame(reference, schema), to_model_frame(current, schema)
    return {
        spec.name: STAT_TESTS[SAMPLE_TESTS[spec.kind]].function(
            ref[spec.name], cur[spec.name], alpha
        )
        for spec in schema.features
    }


def test_random_halves_of_adult_show_no_shift(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    shuffled = adult.sample(frac=1.0, random_state=3)
    half = len(shuffled) // 2
    results = _per_feature(shuffled.iloc[:half], shuffled.iloc[half:], schema, alpha=0.001)
    assert len(results) == 14
    assert not any(r.drifted for r in results.values())


def test_a_sub_population_is_flagged_on_its_features(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    young = adult[adult["age"] < 30].sample(3000, random_state=1)
    results = _per_feature(adult.sample(5000, random_state=2), young, schema, alpha=0.05)
    most_significant = min(results, key=lambda n: (results[n].p_value, -results[n].statistic))
    assert most_significant in {"age", "marital_status", "relationship"}
    assert {"age", "marital_status"} <= {n for n, r in results.items() if r.drifted}
