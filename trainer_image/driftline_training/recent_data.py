"""Recent labelled traffic as training data, and the paired comparison it makes possible.

``load_recent`` reads the labelled requests of a window from the inference log (one row per
request id) and splits them by time: the newest ``holdout_fraction`` is a holdout that is never
trained on; the rest joins the reference data's training split. ``compare_with_champion``
scores the champion and the new model on the same rows (that holdout, and the reference's
test split, which the champion, split the same way, never trained on either) and measures each
difference with its interval (``driftline.performance.paired_differences``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftline.coercion import to_model_frame
from driftline.performance import paired_differences
from driftline.promotion import GREATER_IS_BETTER
from driftline.schema import FeatureSchema
from driftline_training.log_store import existing_store, from_store, masked


@dataclass(frozen=True)
class RecentSource:
    """Which recent labelled traffic to learn from."""

    log_store: str
    lookback_seconds: float
    holdout_fraction: float = 0.3
    min_labels: int = 200


@dataclass(frozen=True)
class RecentData:
    """Recent labelled rows, split by time; both frames hold the target column."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    train_ids: list[str]
    holdout_ids: list[str]
    lineage: dict[str, Any] = field(default_factory=dict)


def load_recent(
    source: RecentSource, model: str, target: str, now: float | None = None
) -> RecentData:
    """The window's labelled requests, the newest ``holdout_fraction`` held out.

    Fewer than ``min_labels`` labelled requests are not used at all (both parts empty; the
    lineage says why). Raises LogStoreError when the store is missing or unreadable.
    """
    from driftline.inference_log import engine_for, read_labelled_requests

    until = time.time() if now is None else now
    since = until - source.lookback_seconds
    shown = masked(source.log_store)
    rows = from_store(
        shown,
        lambda: read_labelled_requests(
            engine_for(existing_store(source.log_store)), model, since=since, until=until
        ),
    )
    lineage: dict[str, Any] = {
        "log_store": shown,
        "lookback_seconds": source.lookback_seconds,
        "labelled_requests": len(rows),
    }
    if len(rows) < source.min_labels:
        lineage["note"] = f"{len(rows)} labelled requests, fewer than {source.min_labels}: unused"
        empty = pd.DataFrame(columns=[target])
        return RecentData(empty, empty, [], [], lineage)
    # Oldest first: the newest rows are the holdout, as the future a model is judged on.
    cut = len(rows) - max(1, math.ceil(len(rows) * source.holdout_fraction))
    frame = pd.DataFrame.from_records([r.features for r in rows])
    frame[target] = [r.label for r in rows]
    ids = [r.request_id for r in rows]
    lineage.update(
        served_from=rows[0].ts,
        served_until=rows[-1].ts,
        holdout_from=rows[cut].ts,
        train_rows=cut,
        holdout_rows=len(rows) - cut,
    )
    return RecentData(
        frame.iloc[:cut].reset_index(drop=True),
        frame.iloc[cut:].reset_index(drop=True),
        ids[:cut],
        ids[cut:],
        lineage,
    )


@dataclass(frozen=True)
class Scorer:
    """A fitted pipeline, the schema its inputs follow and its decision threshold."""

    pipeline: Any
    schema: FeatureSchema
    threshold: float

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and thresholded classes of ``frame``'s rows."""
        probability = self.pipeline.predict_proba(to_model_frame(frame, self.schema))[:, 1]
        return probability, (probability >= self.threshold).astype(np.int8)


def compare_with_champion(
    champion: Scorer, challenger: Scorer, datasets: dict[str, pd.DataFrame], target: str
) -> dict[str, dict[str, Any]]:
    """Per dataset with rows: the row count and, per metric, both values and the difference.

    ``{"recent": {"rows": 3000, "metrics": {"roc_auc": {"champion", "challenger",
    "difference", "low", "high"}}}}``: the difference is challenger minus champion with its
    95% interval.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, frame in datasets.items():
        if len(frame) == 0:
            continue
        label = frame[target].to_numpy(dtype=np.int8)
        paired = paired_differences(
            label, champion.score(frame), challenger.score(frame), list(GREATER_IS_BETTER)
        )
        out[name] = {
            "rows": len(frame),
            "metrics": {
                metric: {
                    "champion": first,
                    "challenger": second,
                    "difference": interval.value,
                    "low": interval.low,
                    "high": interval.high,
                }
                for metric, (first, second, interval) in paired.items()
            },
        }
    return out
