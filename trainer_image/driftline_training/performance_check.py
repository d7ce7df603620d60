"""Ground truth in batch: load a labels file into the feedback table, and measure performance.

``load_labels`` is the bulk path beside ``POST /feedback``: the same table, the same check that
every id was served, the same idempotent upsert. ``check_performance`` joins a window of served
rows with their labels and scores them per version and variant (``driftline.performance``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftline.performance import GroupPerformance, assess
from driftline.request_ids import MAX_REQUEST_ID, valid_request_id
from driftline_training.errors import DataSourceError, DataValidationError
from driftline_training.log_store import existing_store, from_store, masked


@dataclass(frozen=True)
class LoadOutcome:
    """What a labels file did: stored labels, ids never served (not stored), repeats in it."""

    rows: int
    stored: int
    unknown: list[str]
    repeated: int


def read_labels(path: Path, id_column: str, label_column: str) -> pd.DataFrame:
    """The ``request_id`` and ``label`` columns of a CSV or Parquet file, checked.

    Ids are read as text (``007`` stays ``007``). Raises DataSourceError when the file cannot
    be read (exit 3) and DataValidationError naming the column, or the first bad row by its
    1-based line in the file, when a column is missing, an id is not a request id or a label
    is not 0 or 1 (exit 4).
    """
    if not path.exists():
        raise DataSourceError(f"labels file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        elif suffix in {".csv", ".txt"}:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise DataSourceError(f"unsupported labels file type {suffix!r}: use .csv or .parquet")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc
    for column in (id_column, label_column):
        if column not in frame.columns:
            raise DataValidationError(f"{path} has no column {column!r}")
    ids = frame[id_column].astype(str)
    labels = frame[label_column].astype(str).str.strip()
    # Where a person finds the row: a CSV's line in an editor (the header is line 1), a
    # Parquet file's row (the first is row 1).
    where = "line" if suffix in {".csv", ".txt"} else "row"
    offset = 2 if where == "line" else 1
    bad_id = ~ids.map(valid_request_id)
    if bad_id.any():
        row = int(np.flatnonzero(bad_id.to_numpy())[0])
        raise DataValidationError(
            f"{path} {where} {row + offset}: {id_column} {ids.iloc[row]!r} is not a request id"
            f" (1 to {MAX_REQUEST_ID} visible ASCII characters)"
        )
    bad_label = ~labels.isin({"0", "1", "0.0", "1.0"})
    if bad_label.any():
        row = int(np.flatnonzero(bad_label.to_numpy())[0])
        raise DataValidationError(
            f"{path} {where} {row + offset}: {label_column} {labels.iloc[row]!r} is not 0 or 1"
        )
    return pd.DataFrame({"request_id": ids, "label": labels.astype(float).astype(int)})


def load_labels(frame: pd.DataFrame, store_url: str, model: str) -> LoadOutcome:
    """Store the labels of served ids of ``model``; ids never served are returned, not stored.

    Raises LogStoreError when the store cannot be read or written (exit 8).
    """
    from driftline.inference_log import Feedback, LogStore, engine_for

    shown = masked(store_url)
    store = LogStore(from_store(shown, lambda: engine_for(existing_store(store_url))))
    ids = frame["request_id"].tolist()
    served = from_store(shown, lambda: store.served(model, ids))
    known = frame["request_id"].isin(served)
    now = time.time()
    labels = [
        Feedback(now, model, request_id, int(label))
        for request_id, label in zip(frame["request_id"][known], frame["label"][known], strict=True)
    ]
    from_store(shown, lambda: store.write_feedback(labels))
    unknown = list(dict.fromkeys(frame["request_id"][~known]))  # in file order, once each
    return LoadOutcome(
        rows=len(frame),
        stored=len(labels),
        unknown=unknown,
        repeated=len(frame) - frame["request_id"].nunique(),
    )


@dataclass(frozen=True)
class PerformanceReport:
    """Performance of a window of one model's served rows, per version and variant."""

    model: str
    log_store: str
    since: float
    until: float
    min_labels: int
    groups: list[GroupPerformance]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: intervals as ``{"value", "low", "high"}`` objects."""
        return asdict(self)


def check_performance(
    store_url: str,
    model: str,
    *,
    since: float,
    until: float,
    version: str | None = None,
    min_labels: int = 200,
    replicates: int = 200,
) -> PerformanceReport:
    """Join served rows of ``[since, until)`` (Unix seconds) with labels and score them.

    Raises LogStoreError when the store is missing or unreadable (exit 8), ValueError when
    ``min_labels`` is below 1.
    """
    from driftline.inference_log import engine_for, read_labelled

    shown = masked(store_url)
    rows = from_store(
        shown,
        lambda: read_labelled(
            engine_for(existing_store(store_url)),
            model,
            since=since,
            until=until,
            version=version,
        ),
    )
    groups = assess(
        rows.version,
        rows.variant,
        rows.probability,
        rows.prediction,
        rows.label,
        rows.arrived - rows.ts,
        min_labels=min_labels,
        replicates=replicates,
    )
    return PerformanceReport(model, shown, since, until, min_labels, groups)
