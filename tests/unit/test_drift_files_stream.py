"""Files mode streams: the same decision as the whole tables give, from batches.

The reference, read batch by batch, must give the baseline ``build_baseline`` gives on the
whole table (same schema, edges, shares and KS sample); the current table, reduced into a
drift sketch batch by batch, must give the row-level PSI and chi-squared exactly and KS within
the DKW bound the report states. Small batches (``BATCH_ROWS`` patched) make a few thousand
rows span many batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema, to_model_frame
from driftline.drift import check_drift
from driftline.job_contracts import DriftThresholds
from driftline.schema import FeatureKind
from driftline_training import drift_files
from driftline_training.adult import load_table
from driftline_training.drift_check import run_check
from driftline_training.drift_files import FilesOptions, files_inputs
from driftline_training.errors import DriftInputError

THRESHOLDS = DriftThresholds()


def score(frame: pd.DataFrame) -> np.ndarray:
    """A deterministic probability that depends on the features, so its bins mean something."""
    return 1 / (1 + np.exp(-(frame["age"].to_numpy() - 38) / 8))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(drift_files, "BATCH_ROWS", 1_000)
    return 1_000


def messy_reference(adult: pd.DataFrame) -> pd.DataFrame:
    """Adult with what exports hold: blanks, '?' cells, codes as text, a label as text."""
    frame = adult.iloc[:6_000].copy()
    frame["workclass"] = frame["workclass"].astype(object)
    frame.loc[frame.index % 11 == 0, "workclass"] = " ?"
    frame.loc[frame.index % 13 == 0, "hours_per_week"] = np.nan
    # Categories first seen in a late batch; numbers as text; text with a few numbers, whose
    # kind depends on how many rows hold each (derived from every row).
    frame["region"] = [f"r{i % 4 + 1}" for i in range(len(frame))]
    frame.loc[5_500, "region"] = "r9"
    frame["rating"] = np.where(frame.index % 3 == 0, "0.1", "0.2")
    frame["grade"] = np.where(frame.index % 10 == 0, "3", np.where(frame.index % 2, "A", "B"))
    frame["score"] = score(frame)
    frame["Class"] = np.where(frame.pop("income") == 1, " >50K.", "<=50K")
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_streamed_reference_gives_build_baselines_baseline(
    adult: pd.DataFrame, tmp_path: Path, small_batches: int, suffix: str
) -> None:
    path = tmp_path / f"reference{suffix}"
    frame = messy_reference(adult)
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    whole = load_table(path)
    options = FilesOptions(target="income", prediction_column="score", seed=3)
    inputs = files_inputs(path, path, options)

    schema = derive_schema(whole.drop(columns=["income", "score"]), "income")
    expected = build_baseline(whole, whole["score"], schema, seed=3)
    assert inputs.baseline == expected
    # The schema (kinds, categories, bounds, null shares) derive_schema gives the whole table.
    table = drift_files._file_table(path)
    columns, _, _ = drift_files._read_reference(table, schema.names, None)
    assert tuple(columns[name].spec() for name in schema.names) == schema.features
    assert inputs.baseline.categorical["region"].proportions["r9"] == 1 / len(whole)
    assert schema.feature("rating").kind is FeatureKind.NUMERIC
    assert set(inputs.baseline.categorical["grade"].proportions) == {"3", "A", "B"}
    assert inputs.source["target"] == "income (left out)"


def test_a_large_current_file_gives_the_row_level_psi_and_chi_squared(
    adult: pd.DataFrame, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    reference = adult.iloc[rng.integers(0, len(adult), 20_000)].reset_index(drop=True)
    weights = np.where(adult["age"].to_numpy() < 35, 2.0, 1.0)
    rows = rng.choice(len(adult), 300_000, p=weights / weights.sum())
    current = adult.iloc[rows].reset_index(drop=True)
    for frame in (reference, current):
        frame["score"] = score(frame)
        frame.to_parquet(tmp_path / f"{'current' if frame is current else 'reference'}.parquet")
    options = FilesOptions(target="income", prediction_column="score")
    inputs = files_inputs(tmp_path / "reference.parquet", tmp_path / "current.parquet", options)
    streamed = run_check(inputs, THRESHOLDS)

    schema = derive_schema(reference.drop(columns=["income", "score"]), "income")
    baseline = build_baseline(reference, reference["score"], schema)
    rows_report = check_drift(
        baseline, to_model_frame(current, schema), current["score"].to_numpy(), THRESHOLDS
    )
    window = streamed.window
    assert window is not None and window.mode == "sketch" and window.rows == 300_000
    assert window.buckets == -(-300_000 // drift_files.BATCH_ROWS) and window.pods == 0
    assert window.ks_sample == drift_files.CURRENT_SAMPLE_ROWS and window.ks_error is not None
    assert streamed.source["read"] == "stream"
    assert streamed.samples == rows_report.samples
    for a, b in zip(rows_report.features, streamed.features, strict=True):
        assert (a.name, a.kind, a.test) == (b.name, b.kind, b.test)
        assert b.psi == pytest.approx(a.psi, rel=1e-12)
        assert [x.current for x in b.bins] == pytest.approx([x.current for x in a.bins])
        if a.kind is FeatureKind.CATEGORICAL:
            assert b.statistic == pytest.approx(a.statistic, rel=1e-9)
            assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)
        else:
            assert abs(b.statistic - a.statistic) <= window.ks_error, a.name
    assert streamed.prediction.psi == pytest.approx(rows_report.prediction.psi, rel=1e-12)
    assert abs(streamed.prediction.statistic - rows_report.prediction.statistic) <= (
        window.ks_error
    )
    assert streamed.drifted == rows_report.drifted
    assert {f.name for f in streamed.features if f.drifted} == {
        f.name for f in rows_report.features if f.drifted
    }


def test_decimal_values_equal_on_both_sides_are_no_drift(tmp_path: Path) -> None:
    # Sampled values are float32: without the reference on the same grid, 0.1 in the current
    # sample sorts after every reference 0.1 and KS sees a third of the rows move.
    rng = np.random.default_rng(0)
    for side in ("reference", "current"):
        pd.DataFrame({"rate": rng.choice([0.1, 0.2, 0.3], 20_000)}).to_parquet(
            tmp_path / f"{side}.parquet"
        )
    report = run_check(
        files_inputs(tmp_path / "reference.parquet", tmp_path / "current.parquet", FilesOptions()),
        THRESHOLDS,
    )
    (rate,) = report.features
    assert rate.statistic < 0.02 and not rate.drifted and report.drifted is False


def test_a_bad_value_in_a_late_batch_names_its_row(tmp_path: Path, small_batches: int) -> None:
    frame = pd.DataFrame({"x": np.arange(5_000, dtype=float), "c": ["a", "b"] * 2_500})
    frame.to_csv(tmp_path / "reference.csv", index=False)
    bad = frame.astype({"x": object})
    bad.loc[3_456, "x"] = "#REF!"
    bad.to_csv(tmp_path / "current.csv", index=False)
    with pytest.raises(DriftInputError, match=r"^current data: x: '#REF!' \(row 3456\) is not"):
        files_inputs(tmp_path / "reference.csv", tmp_path / "current.csv", FilesOptions())
    # The reference's schema refuses a mostly numeric column with a stray token, by its row.
    with pytest.raises(DriftInputError, match=r"^reference data: x: '#REF!' \(row 3456\)"):
        files_inputs(tmp_path / "current.csv", tmp_path / "reference.csv", FilesOptions())


def test_only_the_needed_columns_are_read(tmp_path: Path, small_batches: int) -> None:
    frame = pd.DataFrame({"x": np.arange(3_000.0), "y": ["a", "b", "c"] * 1_000})
    frame.to_parquet(tmp_path / "reference.parquet")
    # The current export holds columns the check never reads, one of them unreadable as data.
    frame.assign(blob=[b"\x00\xff"] * 3_000, id=range(3_000)).to_parquet(
        tmp_path / "current.parquet"
    )
    read = []
    table = drift_files._file_table(tmp_path / "current.parquet")
    for batch in table.batches(["x", "y"]):
        read.append(batch)
    assert all(list(b.columns) == ["x", "y"] and len(b) <= small_batches for b in read)
    assert sum(len(b) for b in read) == 3_000 and read[-1].index[-1] == 2_999
    report = run_check(
        files_inputs(tmp_path / "reference.parquet", tmp_path / "current.parquet", FilesOptions()),
        THRESHOLDS,
    )
    assert [f.name for f in report.features] == ["x", "y"] and report.drifted is False
