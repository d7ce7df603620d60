"""Drift sketches against the row-level check on the same UCI Adult requests.

Counts merge exactly, so PSI, chi-squared and the missing-share tests must equal the row-level
values whatever the pods and buckets; the KS tests see a merged uniform sample, whose statistic
must stay within the stated DKW bound of the row-level one, and equal it when no bucket was cut.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from driftline.baseline import Baseline
from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema, to_model_frame
from driftline.drift import check_drift, decide
from driftline.drift_compare import compare_numeric
from driftline.drift_report import DriftReport
from driftline.drift_window import NumericWindow, numeric_window
from driftline.job_contracts import DriftThresholds
from driftline.schema import FeatureKind, FeatureSchema
from driftline.sketch import (
    BucketChunk,
    Sketcher,
    WindowSketch,
    sketch_layout,
)
from driftline.sketch_frames import bucket_from_frame
from tests.sketching import sample_key, served_values, sketched

THRESHOLDS = DriftThresholds()


@dataclass(frozen=True)
class Window:
    schema: FeatureSchema
    baseline: Baseline
    frame: pd.DataFrame
    probabilities: np.ndarray

    def sketched(self, **options: int) -> WindowSketch:
        return sketched(self.baseline, self.schema, self.frame, self.probabilities, **options)

    def rows(self) -> DriftReport:
        current = to_model_frame(self.frame, self.schema)
        return check_drift(self.baseline, current, self.probabilities, THRESHOLDS)


@pytest.fixture(scope="module")
def window(adult: pd.DataFrame) -> Window:
    shuffled = adult.sample(frac=1.0, random_state=2).reset_index(drop=True)
    train, current = shuffled.iloc[:8000], shuffled.iloc[8000:14000]
    schema = derive_schema(train, "income")
    rng = np.random.default_rng(0)
    # Probabilities that depend on the features, so their bins and sample mean something.
    score = lambda f: 1 / (1 + np.exp(-(f["age"] - 38) / 8 + rng.normal(0, 0.3, len(f))))  # noqa: E731
    baseline = build_baseline(train, score(train), schema)
    young = current[current["age"] < 35]
    shifted = pd.concat([current.iloc[:3000], young]).reset_index(drop=True)
    return Window(schema, baseline, shifted, score(shifted).to_numpy())


@pytest.mark.parametrize(("pods", "buckets"), [(1, 1), (3, 4), (20, 15)])
def test_counts_give_the_row_level_psi_and_chi_squared_exactly(
    window: Window, pods: int, buckets: int
) -> None:
    rows = window.rows()
    sketch = decide(
        window.baseline, window.sketched(pods=pods, buckets=buckets).summary(), THRESHOLDS
    )
    assert sketch.samples == rows.samples
    for a, b in zip(rows.features, sketch.features, strict=True):
        assert a.name == b.name
        assert b.psi == pytest.approx(a.psi, rel=1e-12)
        assert [x.current for x in b.bins] == pytest.approx([x.current for x in a.bins], rel=1e-12)
        assert b.current_count == a.current_count
        if a.kind is FeatureKind.CATEGORICAL:
            assert b.statistic == pytest.approx(a.statistic, rel=1e-9)
            assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)
        if a.missing is not None:
            assert b.missing is not None and b.missing.p_value == pytest.approx(a.missing.p_value)
    assert sketch.prediction.psi == pytest.approx(rows.prediction.psi, rel=1e-12)
    assert sketch.window is not None and sketch.window.mode == "sketch"
    assert sketch.window.pods == pods and sketch.window.buckets == pods * buckets
    assert sketch.window.rows == len(window.frame)
    predicted = int((window.probabilities >= 0.5).sum())
    assert sketch.window.positive_rate == pytest.approx(predicted / len(window.frame))


def test_ks_from_the_merged_sample_is_within_its_stated_bound(window: Window) -> None:
    rows = window.rows()
    merged = window.sketched(pods=20, buckets=15)
    report = decide(window.baseline, merged.summary(), THRESHOLDS)
    assert report.window is not None and report.window.ks_error is not None
    # 300 buckets of ~23 rows keep 128 each: nothing was cut, so the sample is every row.
    assert report.window.ks_sample == len(window.frame) and report.window.ks_error == 0
    for a, b in zip(rows.features, report.features, strict=True):
        if a.test == "ks":
            assert b.statistic == pytest.approx(a.statistic, abs=1e-6)
    cut = window.sketched(pods=2, buckets=2, sample_rows=300)
    small = decide(window.baseline, cut.summary(), THRESHOLDS)
    assert small.window is not None and small.window.ks_error is not None
    assert 0 < small.window.ks_sample < len(window.frame)
    for a, b in zip(rows.features, small.features, strict=True):
        if a.test == "ks":
            assert abs(b.statistic - a.statistic) <= small.window.ks_error, a.name
    assert abs(small.prediction.statistic - rows.prediction.statistic) <= small.window.ks_error


def test_buckets_of_very_different_sizes_keep_a_large_unbiased_sample(window: Window) -> None:
    """One busy bucket must not set everyone's sampling rate (a bottom-k merge would).

    60 buckets of ~80 requests and one of the rest: the sample keeps nearly every row of the
    small ones, the busy one's rows weigh more, and KS stays within the stated bound.
    """
    layout = sketch_layout(window.baseline)
    values = served_values(window.frame, window.schema)
    small, busy = Sketcher(layout, window.schema, sample_rows=128), Sketcher(layout, window.schema)
    for i, (row, p) in enumerate(zip(values, window.probabilities, strict=True)):
        if i < 4800:
            small.add(60.0 * (i % 60), sample_key(f"r{i}"), row, float(p), 0)
        else:
            busy.add(0.0, sample_key(f"r{i}"), row, float(p), 0)
    merged = WindowSketch(layout)
    merged.merge(BucketChunk.of(small.seal(), layout.digest, "small"))
    merged.merge(BucketChunk.of(busy.seal(), layout.digest, "busy"))
    _, weights = merged.sample()
    assert weights.sum() == pytest.approx(len(values), rel=1e-9)
    report = decide(window.baseline, merged.summary(), THRESHOLDS)
    assert report.window is not None and report.window.ks_error is not None
    assert report.window.ks_sample == 4800 + 128 and report.window.ks_effective < 4928
    rows = window.rows()
    for a, b in zip(rows.features, report.features, strict=True):
        if a.test == "ks":
            assert abs(b.statistic - a.statistic) <= report.window.ks_error, a.name


def test_a_bounded_merge_keeps_its_size_and_estimates_the_total(window: Window) -> None:
    layout = sketch_layout(window.baseline)
    pods = [Sketcher(layout, window.schema, sample_rows=100) for _ in range(4)]
    values = served_values(window.frame, window.schema)
    for i, (row, p) in enumerate(zip(values, window.probabilities, strict=True)):
        pods[i % 4].add(60.0 * (i // 4 % 3), sample_key(f"r{i}"), row, float(p), 0)
    merged = WindowSketch(layout, sample_size=300)
    for n, pod in enumerate(pods):
        merged.merge(BucketChunk.of(pod.seal(), layout.digest, f"pod-{n}"))
    rows, weights = merged.sample()
    assert len(rows) == 300 and merged.tau > 0
    # Priority sampling's weights estimate the window's rows without bias.
    assert weights.sum() == pytest.approx(len(values), rel=0.15)


def test_the_vectorised_bucket_counts_what_serving_counts_row_by_row(window: Window) -> None:
    layout = sketch_layout(window.baseline)
    keys = [sample_key(f"req-{i}") for i in range(len(window.frame))]
    sketcher = Sketcher(layout, window.schema, bucket_seconds=3600, sample_rows=50)
    for row, p, k in zip(
        served_values(window.frame, window.schema), window.probabilities, keys, strict=True
    ):
        sketcher.add(7200.0, k, row, float(p), 0)
    (served,) = sketcher.seal()
    current = to_model_frame(window.frame, window.schema)
    table = bucket_from_frame(layout, current, window.probabilities, keys, sample_rows=50)
    assert table.counts == served.counts
    assert table.sample_bound == served.sample_bound
    by_key = lambda raw: np.sort(np.frombuffer(raw, np.float32).reshape(-1, layout.sample_width), 0)  # noqa: E731
    assert np.array_equal(by_key(table.sample), by_key(served.sample), equal_nan=True)


def test_text_is_counted_as_the_row_level_check_types_it(window: Window) -> None:
    layout = sketch_layout(window.baseline)
    frame = window.frame.head(50).copy()
    frame["sex"] = "  " + frame["sex"].astype(str) + " "
    frame.loc[frame.index[:5], "workclass"] = "   "
    probabilities = window.probabilities[:50]
    sketcher = Sketcher(layout, window.schema)
    for i, row in enumerate(served_values(frame, window.schema)):
        sketcher.add(0.0, sample_key(str(i)), row, float(probabilities[i]), 0)
    (served,) = sketcher.seal()
    table = bucket_from_frame(
        layout, to_model_frame(frame, window.schema), probabilities, [0.5] * 50, sample_rows=1
    )
    assert served.counts == table.counts


def test_buckets_of_another_baseline_are_skipped_and_counted(window: Window) -> None:
    layout = sketch_layout(window.baseline)
    other = window.baseline.model_copy(update={"bins": 5})
    assert sketch_layout(other).digest == layout.digest  # the bins count, not the setting
    changed = build_baseline(window.frame, window.probabilities, window.schema, bins=5)
    assert sketch_layout(changed).digest != layout.digest
    sketcher = Sketcher(layout, window.schema)
    sketcher.add(0.0, 0.1, served_values(window.frame.head(1), window.schema)[0], 0.3, 0)
    bucket = sketcher.seal()
    merged = WindowSketch(sketch_layout(changed))
    merged.merge(BucketChunk.of(bucket, layout.digest, "pod"))
    assert merged.skipped == 1 and merged.requests == 0


def test_a_sketch_sample_in_float32_meets_the_reference_on_its_grid() -> None:
    """0.1 kept as float32 is 0.10000000149: it must still tie with the reference's 0.1."""
    values = np.tile([0.1, 0.2, 0.3, 0.7], 500)
    reference = build_baseline(
        pd.DataFrame({"rate": values}), values, derive_schema(pd.DataFrame({"rate": values}), None)
    )
    ref = reference.numeric["rate"]
    kept = np.sort(values.astype(np.float32).astype(np.float64))
    counts = numeric_window(values, ref.edges).counts
    on_grid = compare_numeric(
        ref, NumericWindow(counts, kept, "float32"), alpha=0.05, psi_threshold=0.2, test_name="ks"
    )
    assert on_grid.test is not None and on_grid.test.statistic == 0.0
    off_grid = compare_numeric(
        ref, NumericWindow(counts, kept), alpha=0.05, psi_threshold=0.2, test_name="ks"
    )
    assert off_grid.test is not None and off_grid.test.statistic > 0.2  # what the grid prevents
