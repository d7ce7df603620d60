"""Two-sample statistical tests as a small explicit registry.

Each test is one pure function returning the statistic, the p-value, the threshold it was judged
against and the decision; a frozen descriptor says which feature kinds it applies to. Drift
detection and the training-serving skew check both draw from this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from driftline.schema import FeatureKind


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test on one feature: small enough to put in a summary."""

    test: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool


TestFunction = Callable[[npt.ArrayLike, npt.ArrayLike, float], TestResult]


@dataclass(frozen=True)
class StatTest:
    """A registered test: its name, the feature kinds it fits, and the function."""

    name: str
    kinds: frozenset[FeatureKind]
    description: str
    function: TestFunction


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test on numeric samples; drift when p < alpha."""
    ref = _finite(reference)
    cur = _finite(current)
    result = stats.ks_2samp(ref, cur)
    p_value = float(result.pvalue)
    return TestResult("ks", float(result.statistic), p_value, alpha, p_value < alpha)


def chi2_test(reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float) -> TestResult:
    """Chi-squared test of homogeneity of category counts; drift when p < alpha.

    Categories seen in only one sample are part of the table, so an unseen category in current
    data counts as evidence of a shift.
    """
    ref = np.asarray(reference, dtype=object).astype(str)
    cur = np.asarray(current, dtype=object).astype(str)
    categories = np.union1d(ref, cur)
    if categories.size < 2:
        return TestResult("chi2", 0.0, 1.0, alpha, False)
    table = np.vstack(
        [
            _counts(ref, categories),
            _counts(cur, categories),
        ]
    )
    result = stats.chi2_contingency(table, correction=False)
    p_value = float(result.pvalue)
    return TestResult("chi2", float(result.statistic), p_value, alpha, p_value < alpha)


def _finite(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    finite: npt.NDArray[np.float64] = array[np.isfinite(array)]
    return finite


def _counts(
    values: npt.NDArray[np.str_], categories: npt.NDArray[np.str_]
) -> npt.NDArray[np.int64]:
    index = np.searchsorted(categories, values)
    return np.bincount(index, minlength=categories.size).astype(np.int64)


STAT_TESTS: dict[str, StatTest] = {
    "ks": StatTest(
        "ks", frozenset({FeatureKind.NUMERIC}), "two-sample Kolmogorov-Smirnov", ks_test
    ),
    "chi2": StatTest(
        "chi2", frozenset({FeatureKind.CATEGORICAL}), "chi-squared homogeneity", chi2_test
    ),
}

# The test each feature kind gets unless the caller chooses another.
DEFAULT_TESTS: dict[FeatureKind, str] = {
    FeatureKind.NUMERIC: "ks",
    FeatureKind.CATEGORICAL: "chi2",
}
