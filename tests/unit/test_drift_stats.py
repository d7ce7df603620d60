"""Known values of the drift statistics: KS against SciPy, PSI and Benjamini-Hochberg by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftline.stattests import (
    PSI_EPSILON,
    STAT_TESTS,
    Compares,
    Direction,
    benjamini_hochberg,
    chi2_counts_test,
    ks_statistic,
    ks_test,
    psi_test,
)


def _pairs(adult: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(4)
    age = adult["age"].to_numpy(dtype=float)
    hours = adult["hours_per_week"].to_numpy(dtype=float)
    return [
        # Continuous, both sizes past scipy's exact limit (the fast path).
        (rng.normal(size=5000), rng.normal(0.03, 1.0, size=200_000)),
        # Heavy ties (integer ages), reference = the baseline's sample size.
        (rng.choice(age, 5000), rng.choice(age[age < 40], 30_001)),
        # Mostly one value (capital gain-like), larger sample first.
        (rng.choice(hours, 40_000), rng.choice(hours, 12_345)),
        # Small samples: scipy's exact p-value.
        (rng.choice(age, 300), rng.choice(age, 2000)),
    ]


def test_ks_equals_scipy_ks_2samp_on_adult_columns(adult: pd.DataFrame) -> None:
    for reference, current in _pairs(adult):
        ours = ks_test(reference, current, 0.05)
        expected = stats.ks_2samp(reference, current)
        assert ours.statistic == expected.statistic
        assert ours.p_value == expected.pvalue
        assert ours.drifted == (expected.pvalue < 0.05)


def test_ks_statistic_is_symmetric_and_ignores_order() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.exponential(size=700), rng.exponential(1.2, size=20_000)
    expected = stats.ks_2samp(a, b).statistic
    assert ks_statistic(a, b) == expected
    assert ks_statistic(b[::-1], a) == expected
    with pytest.raises(ValueError, match="non-empty"):
        ks_statistic([], b)


def test_psi_by_hand() -> None:
    result = psi_test([0.5, 0.3, 0.2], [0.3, 0.3, 0.4], 0.2)
    # (0.3-0.5) ln(0.3/0.5) + 0 + (0.4-0.2) ln(0.4/0.2)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(2.0)
    assert expected == pytest.approx(0.2407945, abs=1e-7)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.drifted and result.threshold == 0.2 and math.isnan(result.p_value)
    assert psi_test([0.5, 0.3, 0.2], [0.5, 0.3, 0.2], 0.2).statistic == 0.0


def test_psi_gives_empty_bins_the_documented_epsilon() -> None:
    result = psi_test([0.5, 0.5, 0.0], [0.5, 0.4, 0.1], 0.2)
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - PSI_EPSILON) * math.log(0.1 / PSI_EPSILON)
    assert PSI_EPSILON == 1e-4
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.statistic == pytest.approx(0.7124, abs=1e-4)
    with pytest.raises(ValueError, match="aligned bins"):
        psi_test([0.5, 0.5], [1.0], 0.2)


def test_benjamini_hochberg_by_hand() -> None:
    # Sorted: 0.005 0.01 0.03 0.04 0.5 -> p*m/rank: 0.025 0.025 0.05 0.05 0.5 (already monotone).
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005, 0.5])
    assert adjusted.tolist() == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    # Step-up: 0.04*2/1 = 0.08 is lowered to the next rank's 0.041*2/2.
    assert benjamini_hochberg([0.04, 0.041]).tolist() == pytest.approx([0.041, 0.041])
    # Capped at 1; a NaN is not a test and does not count in m.
    capped = benjamini_hochberg([0.9, float("nan"), 0.8])
    assert capped[0] == pytest.approx(0.9) and capped[2] == pytest.approx(0.9)
    assert math.isnan(capped[1])
    assert benjamini_hochberg([0.7, 0.6, 0.65]).max() <= 1.0


def test_chi2_on_counts_equals_scipy_and_drops_empty_categories() -> None:
    reference, current = [500, 300, 200, 0, 0], [150, 120, 200, 30, 0]
    ours = chi2_counts_test(reference, current, 0.05)
    expected = stats.chi2_contingency([[500, 300, 200, 0], [150, 120, 200, 30]], correction=False)
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert ours.test == "chi2" and ours.drifted
    nothing = chi2_counts_test([10, 0], [5, 0], 0.05)
    assert (nothing.statistic, nothing.p_value, nothing.drifted) == (0.0, 1.0, False)


def test_registry_describes_inputs_and_direction() -> None:
    assert STAT_TESTS["psi"].compares is Compares.SHARES
    assert STAT_TESTS["psi"].direction is Direction.STATISTIC_ABOVE
    assert STAT_TESTS["ks"].direction is Direction.P_VALUE_BELOW
    assert STAT_TESTS["chi2_counts"].compares is Compares.COUNTS
    for name, test in STAT_TESTS.items():
        assert test.name == name and test.kinds
