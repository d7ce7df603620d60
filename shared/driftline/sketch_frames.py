"""Drift-sketch buckets from tables (vectorised), where rows arrive as files, not requests.

``bucket_from_frame`` counts what ``driftline.sketch.Sketcher.add`` counts row by row, with
numpy over a whole batch; files-mode drift checks stream their tables through it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftline.drift_window import bin_counts
from driftline.sketch import COMPLETE, COUNT_DTYPE, SAMPLE_DTYPE, SealedBucket, SketchLayout


def bucket_from_frame(
    layout: SketchLayout,
    frame: pd.DataFrame,
    probabilities: npt.ArrayLike | None,
    keys: npt.ArrayLike,
    *,
    sample_rows: int,
    start: float = 0.0,
    seconds: float = 0.0,
) -> SealedBucket:
    """The bucket of many rows at once, vectorised: what ``Sketcher.add`` counts row by row.

    ``frame`` is a model frame (``coercion.to_model_frame``) with the layout's features;
    ``probabilities`` (None: no model, every row counted missing) and ``keys`` (uniform on
    [0, 1)) have one entry per row. Used where rows arrive as tables (files), not requests.
    """
    n = len(frame)
    counts = np.zeros(layout.size, dtype=np.int64)
    proba = np.full(n, np.nan) if probabilities is None else np.asarray(probabilities, float)
    numeric_values = [frame[s.name].to_numpy(dtype=np.float64) for s in layout.numeric]
    for slot, values in zip(
        [*layout.numeric, layout.prediction], [*numeric_values, proba], strict=True
    ):
        finite = np.isfinite(values)
        counts[slot.offset : slot.offset + slot.size - 1] += bin_counts(values[finite], slot.edges)
        counts[slot.offset + slot.size - 1] += n - int(finite.sum())
    for cat in layout.categorical:
        index = pd.Index(cat.categories).get_indexer(pd.Index(frame[cat.name]))
        index[index < 0] = cat.size - 1
        counts[cat.offset : cat.offset + cat.size] += np.bincount(index, minlength=cat.size)
    key = np.asarray(keys, dtype=SAMPLE_DTYPE)
    bound = COMPLETE
    kept = np.arange(n)
    if n > sample_rows:
        kept = np.argpartition(key, sample_rows - 1)[:sample_rows]
        bound = float(key[kept].max())
    sample = np.column_stack([key, *numeric_values, proba])[kept].astype(SAMPLE_DTYPE)
    return SealedBucket(
        start=start,
        seconds=seconds,
        requests=n,
        positives=0,
        counts=counts.astype(COUNT_DTYPE).tobytes(),
        sample=sample.tobytes(),
        sample_rows=len(sample),
        sample_bound=bound,
    )
