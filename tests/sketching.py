"""Requests served by simulated pods and counted into drift sketches, for the unit tests.

The counting is the real ``driftline.sketch.Sketcher``; only the pods are simulated: rows
are dealt to ``pods`` sketchers over ``buckets`` one-minute buckets, then merged.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from driftline.baseline import Baseline
from driftline.schema import FeatureKind, FeatureSchema
from driftline.sketch import KEY_BITS, BucketChunk, Sketcher, WindowSketch, sketch_layout


def sample_key(request_id: str) -> float:
    """A key on serving's grid (``sketch.random_key``) from an id: reproducible tests."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=4).digest()
    return (int.from_bytes(digest, "big") >> (32 - KEY_BITS)) / 2**KEY_BITS


def served_values(frame: pd.DataFrame, schema: FeatureSchema) -> list[tuple]:
    """Each row as serving's validator hands it over: floats (NaN missing), raw text."""
    out = []
    for row in frame[schema.names].itertuples(index=False):
        values = []
        for spec, value in zip(schema.features, row, strict=True):
            if spec.kind is FeatureKind.NUMERIC:
                values.append(float("nan") if pd.isna(value) else float(value))
            else:
                values.append("__missing__" if pd.isna(value) else value)
        out.append(tuple(values))
    return out


def sketched(
    baseline: Baseline,
    schema: FeatureSchema,
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    *,
    pods: int,
    buckets: int,
    sample_rows: int = 128,
) -> WindowSketch:
    """``frame`` served by ``pods`` pods over ``buckets`` one-minute buckets, then merged."""
    layout = sketch_layout(baseline)
    sketchers = [
        Sketcher(layout, schema, bucket_seconds=60, sample_rows=sample_rows) for _ in range(pods)
    ]
    values = served_values(frame, schema)
    for i, (row, p) in enumerate(zip(values, probabilities, strict=True)):
        ts = 1_000_020.0 + 60.0 * ((i // pods) % buckets)
        sketchers[i % pods].add(ts, sample_key(f"req-{i}"), row, float(p), int(p >= 0.5))
    merged = WindowSketch(layout)
    for pod, sketcher in enumerate(sketchers):
        merged.merge(BucketChunk.of(sketcher.seal(), layout.digest, f"pod-{pod}"))
    return merged
