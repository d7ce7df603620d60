"""A window of current data reduced to what the drift decision reads (pure).

The decision (``driftline.drift``) never needs rows: per numeric variable the counts over the
baseline's frozen bins plus a missing bin and a sample of the present values for the KS test;
per categorical feature the counts per category. A window of rows is reduced here exactly (the
sample is every present value); merged drift sketches (``driftline.sketch``) give the same
counts and a bounded uniform sample. Either way the decision code is the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from driftline.drift_report import DriftWindow

if TYPE_CHECKING:
    # Types only: serving merges nothing but imports this module without pandas.
    import pandas as pd

    from driftline.baseline import Baseline

# Label of the bucket holding the categories the baseline never saw (merged sketches count
# them in it; rows count each category and the comparison sums the unseen ones into it).
UNSEEN_BUCKET = "(unseen)"
# Confidence of the error bound stated for a sampled empirical CDF.
BOUND_CONFIDENCE = 0.95


@dataclass(frozen=True)
class NumericWindow:
    """One numeric variable of a window: counts over the baseline's bins, then missing.

    ``counts`` has ``len(edges) + 2`` entries: the bins (-inf, e0], (e0, e1], ..., (e_last,
    inf) and the missing values. ``sample`` holds sorted present values for the sample test:
    all of them for rows, a uniform sample of them for sketches. ``grid`` is the precision the
    sample was kept in (a sketch keeps float32): the reference sample is rounded to it before
    a test, or an equal value on both sides (0.1) would sort apart and look like drift.
    ``weights`` (aligned with ``sample``) are the rows each sampled value stands for when the
    sample is not uniform (sketch buckets of different sizes); None means equal weights.
    """

    counts: npt.NDArray[np.int64]
    sample: npt.NDArray[np.float64]
    grid: str = "float64"
    weights: npt.NDArray[np.float64] | None = None

    @property
    def present(self) -> int:
        """Present (finite) values in the window."""
        return int(self.counts[:-1].sum())

    @property
    def total(self) -> int:
        """Values in the window, missing ones included."""
        return int(self.counts.sum())


@dataclass(frozen=True)
class WindowSummary:
    """A window as the decision reads it; ``prediction`` None when there is no model."""

    rows: int
    numeric: Mapping[str, NumericWindow]
    categorical: Mapping[str, Mapping[str, int]]
    prediction: NumericWindow | None
    window: DriftWindow


def bin_counts(values: npt.ArrayLike, edges: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts of finite ``values`` in the bins (-inf, e0], (e0, e1], ..., (e_last, inf).

    The one binning rule of baselines, windows and sketches (serving's per-request
    ``Sketcher.add`` applies it with ``bisect_left``, tested equal). ``len(edges) + 1`` counts.
    """
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    return np.bincount(index, minlength=np.size(edges) + 1).astype(np.int64)


def numeric_window(values: npt.ArrayLike, edges: npt.ArrayLike) -> NumericWindow:
    """Bin ``values`` (NaN for missing) over ``edges`` (``bin_counts``), keeping them sorted."""
    array = np.asarray(values, dtype=np.float64)
    ordered = np.sort(array[np.isfinite(array)])
    counts = bin_counts(ordered, edges)
    return NumericWindow(np.append(counts, array.size - ordered.size), ordered)


def category_counts(values: pd.Series) -> dict[str, int]:
    """Counts per category of a model-frame column (see ``coercion.to_model_frame``)."""
    counted = values.value_counts(sort=False, dropna=False)
    return {str(k): int(v) for k, v in counted.items()}


def summarise_rows(
    baseline: Baseline, current: pd.DataFrame, probabilities: npt.ArrayLike | None
) -> WindowSummary:
    """A frame of rows (a model frame with the baseline's features) reduced exactly.

    Raises KeyError for a feature the frame lacks.
    """
    prediction = None
    if probabilities is not None:
        prediction = numeric_window(probabilities, baseline.prediction.edges)
    return WindowSummary(
        rows=len(current),
        numeric={
            name: numeric_window(current[name].to_numpy(), ref.edges)
            for name, ref in baseline.numeric.items()
        },
        categorical={name: category_counts(current[name]) for name in baseline.categorical},
        prediction=prediction,
        window=DriftWindow(mode="rows", rows=len(current)),
    )


def effective_size(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size of weighted values: (sum w)^2 / sum w^2 (0 for none)."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w**2)) if w.size else 0.0


def dkw_bound(sample_size: int, confidence: float = BOUND_CONFIDENCE) -> float | None:
    """Largest gap, at ``confidence``, between a uniform sample's CDF and the population's.

    The Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant: P(sup |F_n - F| > e)
    <= 2 exp(-2 n e^2), so e = sqrt(ln(2 / (1 - confidence)) / (2 n)). None for no sample.
    A KS statistic from the sample is within this of the one on every row.
    """
    if sample_size <= 0:
        return None
    return math.sqrt(math.log(2 / (1 - confidence)) / (2 * sample_size))
