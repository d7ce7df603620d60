"""Two-sample statistical tests as a small explicit registry.

Each test is one pure function returning the statistic, the p-value (or score), the threshold it
was judged against and the decision; a frozen descriptor says which feature kinds it applies to,
what it compares and which way it points. The drift comparison (``driftline.drift_compare``) looks
its tests up here by feature kind and role, so adding a test is one function and one entry in
``STAT_TESTS`` (and naming it in ``DEFAULT_TESTS`` to make it the default of a kind).
``benjamini_hochberg`` corrects the p-values of many such tests at once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.drift_window import bin_counts, effective_size
from driftline.schema import FeatureKind

# An empty bin gets this share in PSI so that ln(current / reference) stays finite. 1e-4 is the
# usual choice (credit-scoring practice, Evidently): one empty reference bin against 1% of current
# data adds (0.01 - 0.0001) * ln(100) = 0.046 to the index, so a new value region counts without
# swamping the 0.2 threshold on its own.
PSI_EPSILON = 1e-4
# Up to this many values in the larger sample, scipy's exact KS p-value is cheap: use scipy as is.
KS_EXACT_MAX = 10_000


@dataclass(frozen=True)
class TestResult:
    """The outcome of one test on one feature: small enough to put in a summary.

    ``p_value`` is NaN for scores that have none (PSI).
    """

    test: str
    statistic: float
    p_value: float
    threshold: float
    drifted: bool


TestFunction = Callable[[npt.ArrayLike, npt.ArrayLike, float], TestResult]
# A sample test whose current sample comes with a weight per value (sketch merges).
WeightedFunction = Callable[[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, float], TestResult]


class Direction(StrEnum):
    """Which number a test's decision reads, and which way."""

    P_VALUE_BELOW = "p_value_below"
    STATISTIC_ABOVE = "statistic_above"


class Compares(StrEnum):
    """What a test function takes as its two arguments."""

    SAMPLES = "samples"
    COUNTS = "counts"
    SHARES = "shares"


@dataclass(frozen=True)
class StatTest:
    """A registered test: its name, the feature kinds it fits, its inputs and the function.

    ``reports_as`` is the ``TestResult.test`` of its results when that is not ``name``: one
    statistic computed from other inputs (chi-squared on raw values or on counts) reports the
    same name.
    """

    name: str
    kinds: frozenset[FeatureKind]
    description: str
    function: TestFunction
    compares: Compares = Compares.SAMPLES
    direction: Direction = Direction.P_VALUE_BELOW
    reports_as: str = ""
    # The same test on a weighted current sample, when it has one.
    weighted: WeightedFunction | None = None

    @property
    def result_name(self) -> str:
        """The name its results carry: ``reports_as`` when set, else ``name``."""
        return self.reports_as or self.name


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test on numeric samples; drift when p < alpha.

    Statistic and p-value equal ``scipy.stats.ks_2samp`` (two-sided, method "auto"). Above
    ``KS_EXACT_MAX`` values scipy uses the asymptotic distribution, and so do we, but the statistic
    comes from ``ks_statistic``, which does not sort the larger sample.
    """
    ref = _finite(reference)
    cur = _finite(current)
    if max(ref.size, cur.size) <= KS_EXACT_MAX:
        with warnings.catch_warnings():
            # "Exact calculation unsuccessful, switching to asymp": scipy's documented
            # fallback, the value we want; the warning would only reach the user's stderr.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            result = _scipy_stats().ks_2samp(ref, cur)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        statistic = ks_statistic(ref, cur)
        large, small = max(ref.size, cur.size), min(ref.size, cur.size)
        effective = float(large) * float(small) / (float(large) + float(small))
        p_value = float(np.clip(_scipy_stats().kstwo.sf(statistic, np.round(effective)), 0.0, 1.0))
    return TestResult("ks", statistic, p_value, alpha, p_value < alpha)


def ks_statistic(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """The two-sample KS statistic sup |F1 - F2|, evaluated only at the smaller sample's points.

    Between two consecutive points of the smaller sample its empirical CDF is flat and the other
    one is monotone, so the supremum is reached at those points, taken from the right or from the
    left. The larger sample is sorted once (numpy's sort is several times faster than binary
    searches of unsorted values) and searched for each point: no arrays of the combined size.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    small, large = (a, b) if a.size <= b.size else (b, a)
    if small.size == 0:
        raise ValueError("the KS statistic needs two non-empty samples")
    points, ties = np.unique(small, return_counts=True)
    small_at_or_below = np.cumsum(ties)
    small_below = small_at_or_below - ties
    ordered = np.sort(large)
    large_at_or_below = np.searchsorted(ordered, points, "right")
    large_below = np.searchsorted(ordered, points, "left")
    # Same expression as scipy (count / n, then the difference) so the float result is identical.
    right = small_at_or_below / small.size - large_at_or_below / large.size
    left = small_below / small.size - large_below / large.size
    return float(max(np.max(np.abs(right)), np.max(np.abs(left))))


def ks_weighted_test(
    reference: npt.ArrayLike, current: npt.ArrayLike, weights: npt.ArrayLike, alpha: float
) -> TestResult:
    """Two-sample KS against a weighted current sample; drift when p < alpha.

    The current CDF is the weighted empirical one, sum of the weights at or below x over their
    total (a Horvitz-Thompson estimate of the window's CDF from an unequal-probability
    sample). The statistic is sup |F_ref - F_cur|, reached at a jump of either step function;
    the p-value is the asymptotic two-sample one (``scipy.stats.kstwo``) with the current
    side's size replaced by Kish's effective sample size, (sum w)^2 / sum w^2. Equal weights
    give ``ks_test``'s statistic. Raises ValueError for weights that do not match the sample
    or are not positive.
    """
    ref = np.sort(_finite(reference))
    cur = np.asarray(current, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != cur.shape or np.any(w <= 0):
        raise ValueError("a weighted sample needs one positive weight per value")
    keep = np.isfinite(cur)
    cur, w = cur[keep], w[keep]
    order = np.argsort(cur, kind="stable")
    cur, w = cur[order], w[order]
    points = np.union1d(ref, cur)
    ref_cdf = np.searchsorted(ref, points, "right") / ref.size
    cumulative = np.concatenate([[0.0], np.cumsum(w)]) / w.sum()
    cur_cdf = cumulative[np.searchsorted(cur, points, "right")]
    statistic = float(np.max(np.abs(ref_cdf - cur_cdf)))
    effective = effective_size(w)
    combined = ref.size * effective / (ref.size + effective)
    p_value = float(np.clip(_scipy_stats().kstwo.sf(statistic, max(1, round(combined))), 0, 1))
    return TestResult("ks", statistic, p_value, alpha, p_value < alpha)


def chi2_test(reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float) -> TestResult:
    """Chi-squared test of homogeneity of category counts; drift when p < alpha.

    Categories seen in only one sample are part of the table, so an unseen category in current
    data counts as evidence of a shift.
    """
    ref = np.asarray(reference, dtype=object).astype(str)
    cur = np.asarray(current, dtype=object).astype(str)
    categories = np.union1d(ref, cur)
    return chi2_counts_test(_counts(ref, categories), _counts(cur, categories), alpha)


def chi2_counts_test(reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float) -> TestResult:
    """Chi-squared test of homogeneity on two count vectors aligned by category.

    A 2 x K contingency table without continuity correction; categories counted in neither
    sample are dropped. Fewer than two categories left is no evidence of anything.
    """
    table = np.vstack([np.asarray(reference, dtype=np.float64), np.asarray(current, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return TestResult("chi2", 0.0, 1.0, alpha, False)
    result = _scipy_stats().chi2_contingency(table, correction=False)
    p_value = float(result.pvalue)
    return TestResult("chi2", float(result.statistic), p_value, alpha, p_value < alpha)


def missing_share_test(
    reference: npt.ArrayLike, current: npt.ArrayLike, alpha: float
) -> TestResult:
    """Two-proportion test of the missing share; drift when p < alpha.

    ``reference`` and ``current`` are ``(missing, present)`` counts. The statistic is the
    chi-squared of that 2 x 2 table without continuity correction, which equals the square of
    the pooled two-proportion z statistic (Agresti, Categorical Data Analysis, 3rd ed., 3.2.4),
    so the p-value is the two-sided z-test's. KS and PSI bins see values only; this test sees
    the nulls.
    """
    return replace(chi2_counts_test(reference, current, alpha), test="missing_share")


def psi_test(reference: npt.ArrayLike, current: npt.ArrayLike, threshold: float) -> TestResult:
    """Population stability index of two share vectors over the same bins; drift when > threshold.

    PSI = sum((c - r) * ln(c / r)), with shares below ``PSI_EPSILON`` raised to it. It is a
    score, not a test: the p-value is NaN.
    """
    ref = np.maximum(np.asarray(reference, dtype=np.float64), PSI_EPSILON)
    cur = np.maximum(np.asarray(current, dtype=np.float64), PSI_EPSILON)
    if ref.shape != cur.shape:
        raise ValueError(f"PSI needs aligned bins: {ref.size} reference vs {cur.size} current")
    value = float(np.sum((cur - ref) * np.log(cur / ref)))
    return TestResult("psi", value, math.nan, threshold, value > threshold)


def benjamini_hochberg(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    p_adj(i) = min over k >= rank(i) of p_(k) * m / k, capped at 1; a hypothesis is rejected at
    level q when its adjusted p-value is <= q. NaN entries are not tests: they stay NaN and do not
    count in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    if present.size == 0:
        return adjusted
    order = present[np.argsort(p[present], kind="stable")]
    ranked = p[order] * present.size / np.arange(1, present.size + 1)
    adjusted[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return adjusted


def quantile_edges(values: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.float64]:
    """Interior quantile edges of ``bins`` bins; ties collapse, so discrete data has fewer bins.

    No values give no edges: one bin holds everything.
    """
    if values.size == 0:
        return np.empty(0, dtype=np.float64)
    # "lower" keeps edges on observed values, so ties in discrete data collapse cleanly.
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    return np.unique(quantiles)


def bin_proportions(
    values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Share of values in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    return bin_counts(values, edges) / max(1, values.size)


def sample_psi(reference: npt.ArrayLike, current: npt.ArrayLike, bins: int = 10) -> float:
    """PSI of two samples over ``bins`` quantile bins of ``reference`` (as a baseline bins them).

    Raises ValueError when either sample has no finite value.
    """
    ref, cur = _finite(reference), _finite(current)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("PSI needs two samples with finite values")
    edges = quantile_edges(ref, bins)
    return psi_test(bin_proportions(ref, edges), bin_proportions(cur, edges), math.inf).statistic


def _scipy_stats() -> Any:
    # Imported on first use: the tests that need p-values run in the trainer image; the
    # operator's rollout analysis uses the scores only (PSI, the KS statistic) and its image
    # has no scipy.
    from scipy import stats

    return stats


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
        "ks",
        frozenset({FeatureKind.NUMERIC}),
        "two-sample Kolmogorov-Smirnov",
        ks_test,
        weighted=ks_weighted_test,
    ),
    "chi2": StatTest(
        "chi2", frozenset({FeatureKind.CATEGORICAL}), "chi-squared homogeneity", chi2_test
    ),
    "chi2_counts": StatTest(
        "chi2_counts",
        frozenset({FeatureKind.NUMERIC, FeatureKind.CATEGORICAL}),
        "chi-squared homogeneity of aligned bin or category counts",
        chi2_counts_test,
        Compares.COUNTS,
        reports_as="chi2",
    ),
    "missing_share": StatTest(
        "missing_share",
        frozenset({FeatureKind.NUMERIC}),
        "two-proportion test of the missing share on (missing, present) counts",
        missing_share_test,
        Compares.COUNTS,
    ),
    "psi": StatTest(
        "psi",
        frozenset({FeatureKind.NUMERIC, FeatureKind.CATEGORICAL}),
        "population stability index over aligned bin or category shares",
        psi_test,
        Compares.SHARES,
        Direction.STATISTIC_ABOVE,
    ),
}

# The test each feature kind gets in a drift check unless the caller names another. A baseline
# keeps a bounded sample of each numeric feature but only the shares of a categorical one, so
# numeric values are compared as samples and categories as counts (reconstructed from shares).
DEFAULT_TESTS: dict[FeatureKind, str] = {
    FeatureKind.NUMERIC: "ks",
    FeatureKind.CATEGORICAL: "chi2_counts",
}
# The score every variable gets beside its test, over aligned bin or category shares.
SCORE_TEST = "psi"
# A numeric variable's missing share, tested on (missing, present) counts.
MISSING_TEST = "missing_share"
# A numeric variable with no current value to sample: its bin counts, the missing bin included.
BINNED_TEST = "chi2_counts"


def stat_test(
    name: str,
    kind: FeatureKind,
    compares: Compares,
    direction: Direction = Direction.P_VALUE_BELOW,
) -> StatTest:
    """The registered test ``name``, checked to fit a ``kind`` of variable and the inputs at hand.

    ``compares`` is what the caller can pass (samples, counts or shares) and ``direction`` what
    it reads (a p-value for the Benjamini-Hochberg family, or a score). Raises ValueError naming
    the test when it is not in ``STAT_TESTS`` or does not fit.
    """
    test = STAT_TESTS.get(name)
    if test is None:
        raise ValueError(f"no statistical test {name!r}; registered: {', '.join(STAT_TESTS)}")
    if kind not in test.kinds or test.compares is not compares or test.direction is not direction:
        raise ValueError(
            f"test {name!r} takes {test.compares.value} ({test.direction.value}) of"
            f" {'/'.join(sorted(test.kinds))} variables, not {compares.value}"
            f" ({direction.value}) of a {kind.value} one"
        )
    return test
