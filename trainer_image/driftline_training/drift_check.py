"""Drift checks end to end: gather a window and its baseline, decide, write the report.

Two sources of inputs. Files: a reference and a current table, the baseline built from the
reference (``driftline_training.drift_files``). Live: a window of the inference log (its rows,
or the pods' drift sketches) against the ``baseline.json`` and ``feature_schema.json`` stored
with a model version in MLflow (here). The decision itself is ``driftline.drift.decide``;
these modules do the I/O around it, and this one writes the report.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd

from driftline.artifacts import BASELINE, FEATURE_SCHEMA
from driftline.baseline import Baseline
from driftline.coercion import FeatureValueError, to_model_frame
from driftline.drift import decide
from driftline.drift_report import DriftReport
from driftline.drift_window import WindowSummary, summarise_rows
from driftline.job_contracts import DriftThresholds, PerformanceSummary
from driftline.schema import FeatureSchema
from driftline.sketch import (
    WindowSketch,
    sketch_layout,
)
from driftline_training.drift_report_html import render_html
from driftline_training.errors import DriftInputError, ReportWriteError
from driftline_training.log_store import existing_store, from_store, masked

if TYPE_CHECKING:
    import sqlalchemy as sa

    from driftline.registry import ModelRegistry

T = TypeVar("T")


# Live windows of at most this many logged rows, all of them logged, are read row by row
# (exact KS); larger or sampled windows are read from the pods' drift sketches.
ROW_MODE_MAX_ROWS = 100_000


class WindowRead(StrEnum):
    """How a live check reads its window: rows, sketches, or whichever fits (auto)."""

    AUTO = "auto"
    ROWS = "rows"
    SKETCH = "sketch"


@dataclass(frozen=True)
class DriftInputs:
    """Everything a check compares: the baseline and the current window, reduced."""

    baseline: Baseline
    window: WindowSummary
    prediction_note: str
    source: dict[str, str]


def live_inputs(
    registry: ModelRegistry,
    model: str,
    version: str,
    store_url: str,
    *,
    lookback_seconds: float | None,
    last: int | None,
    read: WindowRead = WindowRead.AUTO,
    now: float | None = None,
) -> DriftInputs:
    """A window of ``model`` ``version``'s traffic against that version's baseline.

    The window is the newest ``last`` logged rows, or the last ``lookback_seconds`` (of rows,
    or of the pods' sketch buckets that start in it). ``read`` AUTO reads rows when the window
    holds at most ``ROW_MODE_MAX_ROWS`` and none was sampled out, sketches otherwise (rows
    again if no pod wrote sketches). Raises DriftInputError for sketches of a row count, and
    LogStoreError when the store cannot be read.
    """
    from driftline.inference_log import engine_for, window_rows

    baseline = _artifact(registry, model, version, BASELINE, Baseline.from_json)
    schema = _artifact(registry, model, version, FEATURE_SCHEMA, FeatureSchema.from_json)
    shown = masked(store_url)
    source = {"mode": "live", "model": model, "version": version, "log_store": shown}
    engine = engine_for(existing_store(store_url))
    if last is not None:
        if read is WindowRead.SKETCH:
            raise DriftInputError("sketches cover a lookback, not a number of rows: use --lookback")
        return _row_inputs(engine, baseline, schema, version, source, model, None, last)
    assert lookback_seconds is not None, "a live window is a lookback or a row count"
    until = now if now is not None else time.time()
    since = until - lookback_seconds
    source["window"] = f"last {lookback_seconds:g} s"
    if read is WindowRead.AUTO:
        count, sampled = from_store(
            shown,
            lambda: window_rows(
                engine, model, version, since=since, until=until, limit=ROW_MODE_MAX_ROWS
            ),
        )
        read = WindowRead.SKETCH if sampled or count > ROW_MODE_MAX_ROWS else WindowRead.ROWS
        if read is WindowRead.SKETCH:
            merged = merged_sketches(engine, baseline, model, version, since, until, shown)
            if merged.buckets:
                return DriftInputs(baseline, merged.summary(), "", {**source, "read": "sketch"})
            source["note"] = "no drift sketches in the window: read the logged rows"
    elif read is WindowRead.SKETCH:
        merged = merged_sketches(engine, baseline, model, version, since, until, shown)
        return DriftInputs(baseline, merged.summary(), "", {**source, "read": "sketch"})
    return _row_inputs(engine, baseline, schema, version, source, model, lookback_seconds, None)


def merged_sketches(
    engine: sa.Engine,
    baseline: Baseline,
    model: str,
    version: str,
    since: float,
    until: float,
    shown: str,
) -> WindowSketch:
    """The sketch buckets of ``model`` ``version`` starting in ``[since, until)``, merged.

    Read and merged one stored chunk at a time (``inference_log.read_sketches``), so memory
    stays one chunk and the merged sample whatever the window holds. ``shown`` names the store
    in errors: LogStoreError when it cannot be read, DriftInputError for a corrupt bucket.
    """
    from driftline.inference_log import read_sketches

    merged = WindowSketch(sketch_layout(baseline))

    def merge_all() -> None:
        for chunk in read_sketches(engine, model, version, since=since, until=until):
            merged.merge(chunk)

    try:
        from_store(shown, merge_all)
    except ValueError as exc:
        raise DriftInputError(f"drift sketches of {model} version {version}: {exc}") from exc
    return merged


def _row_inputs(
    engine: sa.Engine,
    baseline: Baseline,
    schema: FeatureSchema,
    version: str,
    source: dict[str, str],
    model: str,
    lookback_seconds: float | None,
    last: int | None,
) -> DriftInputs:
    """The window's logged rows, reduced exactly."""
    from driftline.inference_log import read_window

    records = from_store(
        source["log_store"],
        lambda: read_window(engine, model, version, lookback_seconds=lookback_seconds, limit=last),
    )
    frame = pd.DataFrame.from_records([r.features for r in records])
    if records:
        absent = [name for name in schema.names if name not in frame.columns]
        if absent:
            raise DriftInputError(f"logged features lack: {', '.join(absent)}")
    else:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in schema.names})
    window = f"last {last} rows" if last is not None else f"last {lookback_seconds:g} s"
    probabilities = np.array([r.probability for r in records], dtype=np.float64)
    current = model_frame(frame, schema, "logged")
    reduced = summarise_rows(baseline, current, probabilities)
    # Rows logged at a rate below 1 are a hash sample of the traffic, and the report says so.
    rate = min((r.sample_rate for r in records), default=1.0)
    if rate < 1:
        info = reduced.window.model_copy(update={"sample_rate": rate})
        reduced = dataclasses.replace(reduced, window=info)
    return DriftInputs(
        baseline=baseline,
        window=reduced,
        prediction_note="",
        source={**source, "window": window, "read": "rows"},
    )


def run_check(inputs: DriftInputs, thresholds: DriftThresholds) -> DriftReport:
    """Decide on ``inputs`` and record where they came from in the report."""
    report = decide(
        inputs.baseline, inputs.window, thresholds, prediction_note=inputs.prediction_note
    )
    return report.model_copy(update={"source": inputs.source})


def write_report(
    report: DriftReport, folder: Path, performance: PerformanceSummary | None = None
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns both paths.

    ``performance`` (a performance rule's answer) becomes the JSON's ``performance`` key and a
    section of the page.
    """
    json_path, html_path = folder / "report.json", folder / "report.html"
    text = report.to_json()
    if performance is not None:
        document = json.loads(text)
        document["performance"] = performance.model_dump(mode="json")
        text = json.dumps(document, indent=2)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text)
        html_path.write_text(render_html(report, performance))
    except OSError as exc:
        raise ReportWriteError(f"cannot write the report to {folder}: {exc}") from exc
    return json_path, html_path


def model_frame(frame: pd.DataFrame, schema: FeatureSchema, side: str) -> pd.DataFrame:
    """``to_model_frame`` with an error that names the side, the column and the bad value."""
    model: pd.DataFrame = typed(lambda: to_model_frame(frame, schema), side)
    return model


def typed(call: Callable[[], T], side: str) -> T:
    """Run ``call``, which types ``side``'s data.

    A value the schema's type cannot take becomes a ``DriftInputError`` naming the side.
    """
    try:
        return call()
    except FeatureValueError as exc:
        raise DriftInputError(f"{side} data: {exc}") from exc


def _artifact(
    registry: ModelRegistry, model: str, version: str, path: str, parse: Callable[[str], T]
) -> T:
    try:
        return parse(registry.artifact_text(model, version, path))
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DriftInputError(f"{path} of {model} version {version} is invalid: {first}") from exc
