"""One variable of a window compared with its baseline: PSI, a distribution test, the shares.

Numeric variables (features and predicted probabilities): PSI over the baseline's quantile bins
plus a "missing" bin, and (by default) the two-sample KS test against the baseline's bounded
sample. Categorical features: PSI over category shares (categories the baseline never saw share
one "unseen" bucket) and (by default) a chi-squared homogeneity test whose reference counts are
reconstructed as baseline share x baseline count. Every test is looked up by name in
``driftline.stattests.STAT_TESTS``; the caller names the kind's test (``DEFAULT_TESTS``).
Everything is vectorised: one sort per numeric column, one ``value_counts`` per categorical
column.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftline.baseline import CategoricalReference, NumericReference
from driftline.drift_report import BinShare
from driftline.drift_window import UNSEEN_BUCKET, NumericWindow
from driftline.schema import MISSING_CATEGORY, FeatureKind
from driftline.stattests import (
    BINNED_TEST,
    MISSING_TEST,
    SCORE_TEST,
    Compares,
    Direction,
    StatTest,
    TestResult,
    stat_test,
)

MISSING_BIN = "(missing)"
# Why a variable was not tested; a reference with no values has nothing to compare against.
NO_REFERENCE_VALUES = "the reference has no values"
NO_CURRENT_ROWS = "the current data has no rows"
# A report lists at most this many categories of one feature; the rest are summed in one row.
MAX_REPORTED_CATEGORIES = 30


@dataclass(frozen=True)
class Comparison:
    """One variable against its baseline: PSI, a test (None: no values to test) and the shares.

    ``missing`` tests the missing share on its own (numeric variables with nulls on either
    side); ``untestable`` says why ``test`` is None when it is.
    """

    psi: TestResult
    test: TestResult | None
    reference: dict[str, str]
    count: int
    bins: tuple[BinShare, ...]
    missing: TestResult | None = None
    untestable: str = ""


def compare_numeric(
    baseline: NumericReference,
    window: NumericWindow,
    *,
    alpha: float,
    psi_threshold: float,
    test_name: str,
    where: str = "baseline",
) -> Comparison:
    """PSI over ``baseline``'s bins (and missing values) plus a sample test against its sample.

    ``window`` holds the current counts over the same bins and a sample of present values
    (``driftline.drift_window``); ``alpha`` is each test's level and ``psi_threshold`` the
    PSI's. ``test_name`` is a ``STAT_TESTS`` entry comparing numeric samples by p-value
    (``DEFAULT_TESTS`` names KS); ValueError when it is not one. ``where`` names the
    baseline's part in the ``reference`` descriptions. When either side has no present values
    the sample test cannot run: the bin counts, with the missing bin, go through
    ``BINNED_TEST`` (chi-squared) instead, so a column that turned all-null is still tested.
    """
    sample_test = stat_test(test_name, FeatureKind.NUMERIC, Compares.SAMPLES)
    score = _score_test(FeatureKind.NUMERIC)
    edges = np.asarray(baseline.edges, dtype=np.float64)
    if window.counts.size != edges.size + 2:
        raise ValueError(
            f"{where}: {window.counts.size} current counts for {edges.size + 1} bins + missing"
        )
    total, present = window.total, window.present
    current = window.counts / max(1, total)
    kept = 1.0 - baseline.null_fraction
    reference = np.append(np.asarray(baseline.proportions) * kept, baseline.null_fraction)
    described = {score.result_name: f"{where}.bins ({len(baseline.proportions)})"}
    rows = baseline.count / max(kept, 1e-12)
    test: TestResult | None = None
    missing: TestResult | None = None
    untestable = ""
    if not baseline.count:
        untestable = NO_REFERENCE_VALUES
    elif not total:
        untestable = NO_CURRENT_ROWS
    elif present and window.sample.size and baseline.sample:
        # On the window's grid, rounding is monotone: order kept, equal values kept equal.
        on_grid = np.asarray(baseline.sample).astype(window.grid).astype(np.float64)
        if window.weights is None:
            test = sample_test.function(on_grid, window.sample, alpha)
        elif sample_test.weighted is None:
            raise ValueError(f"test {test_name!r} cannot read a weighted sample (sketches)")
        else:
            test = sample_test.weighted(on_grid, window.sample, window.weights, alpha)
        described[sample_test.result_name] = f"{where}.sample ({len(baseline.sample)})"
        absent = total - present
        if baseline.null_fraction or absent:
            missing_test = _counts_test(MISSING_TEST, FeatureKind.NUMERIC)
            missing = missing_test.function(
                [round(rows - baseline.count), baseline.count], [absent, present], alpha
            )
            described[missing_test.result_name] = f"{where}.null_fraction x count ({round(rows)})"
    else:
        # The current values are all missing: the bins with the missing bin say so.
        binned = _counts_test(BINNED_TEST, FeatureKind.NUMERIC)
        test = binned.function(np.rint(reference * rows), window.counts, alpha)
        described[binned.result_name] = f"{where}.bins x count ({round(rows)})"
    labels = [*_bin_labels(edges), MISSING_BIN]
    return Comparison(
        psi=score.function(reference, current, psi_threshold),
        test=test,
        reference=described,
        count=present,
        bins=_shares(labels, reference, current, limit=None),
        missing=missing,
        untestable=untestable,
    )


def compare_categorical(
    baseline: CategoricalReference,
    counts: dict[str, int],
    *,
    alpha: float,
    psi_threshold: float,
    test_name: str,
    where: str = "baseline",
) -> Comparison:
    """PSI over category shares plus a counts test (such as chi-squared), against ``baseline``.

    ``counts`` are the current counts per category (nulls under the missing token, see
    ``category_counts``). Reference counts are reconstructed as share x ``baseline.count``.
    ``test_name`` is a ``STAT_TESTS`` entry comparing categorical counts by p-value
    (``DEFAULT_TESTS`` names chi-squared); ValueError when it is not one.
    """
    counts_test = _counts_test(test_name, FeatureKind.CATEGORICAL)
    score = _score_test(FeatureKind.CATEGORICAL)
    categories = sorted(baseline.proportions)
    known = set(categories)
    current_counts = np.array(
        [counts.get(c, 0) for c in categories]
        + [sum(n for c, n in counts.items() if c not in known)],
        dtype=np.float64,
    )
    reference = np.array([baseline.proportions[c] for c in categories] + [0.0])
    total = current_counts.sum()
    current = current_counts / max(1.0, total)
    untestable = ""
    if set(categories) <= {MISSING_CATEGORY}:
        untestable = NO_REFERENCE_VALUES
    elif not total:
        untestable = NO_CURRENT_ROWS
    test = (
        None
        if untestable
        else counts_test.function(np.rint(reference * baseline.count), current_counts, alpha)
    )
    return Comparison(
        psi=score.function(reference, current, psi_threshold),
        test=test,
        untestable=untestable,
        reference={
            score.result_name: f"{where}.proportions ({len(categories)} categories + unseen)",
            counts_test.result_name: f"{where}.proportions x count ({baseline.count})",
        },
        count=int(total),
        bins=_shares(
            [*categories, UNSEEN_BUCKET], reference, current, limit=MAX_REPORTED_CATEGORIES
        ),
    )


def _counts_test(name: str, kind: FeatureKind) -> StatTest:
    return stat_test(name, kind, Compares.COUNTS)


def _score_test(kind: FeatureKind) -> StatTest:
    """The score of aligned bin or category shares (``SCORE_TEST``: PSI)."""
    return stat_test(SCORE_TEST, kind, Compares.SHARES, Direction.STATISTIC_ABOVE)


def _bin_labels(edges: npt.NDArray[np.float64]) -> list[str]:
    if edges.size == 0:
        return ["all values"]
    text = [f"{e:.4g}" for e in edges]
    middle = [f"({low}, {high}]" for low, high in itertools.pairwise(text)]
    return [f"<= {text[0]}", *middle, f"> {text[-1]}"]


def _shares(
    labels: list[str],
    reference: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    limit: int | None,
) -> tuple[BinShare, ...]:
    """Rows for the report; beyond ``limit`` rows, the smallest are summed into one."""
    rows = list(zip(labels, reference.tolist(), current.tolist(), strict=True))
    if limit is not None and len(rows) > limit:
        rows.sort(key=lambda row: -max(row[1], row[2]))
        rest = rows[limit - 1 :]
        rows = rows[: limit - 1]
        rows.append((f"({len(rest)} others)", sum(r[1] for r in rest), sum(r[2] for r in rest)))
    return tuple(BinShare(label=label, reference=r, current=c) for label, r, c in rows)
