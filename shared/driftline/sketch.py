"""Drift sketches: what inference pods keep of their traffic so a drift check reads no rows.

A model version's baseline froze its bins at training time: quantile edges for each numeric
feature and for the predicted probabilities, the categories of each categorical feature. PSI
and the chi-squared tests need only counts over those bins, and counts add. So each pod counts
every request into the bins of the version that served it, per time bucket, and a drift check
sums the buckets of its window across pods: the counts equal what a check on every row would
compute. Numeric bins come with a missing bin and categorical ones with an "unseen" bin, laid
out by ``SketchLayout``.

The KS tests need values, so each bucket also keeps a bottom-k sample: the ``sample_rows``
rows whose key (``random_key``, uniform on [0, 1)) is smallest: a uniform sample of the
bucket's rows, each standing for ``requests / kept`` of them. ``WindowSketch`` merges those
weighted samples with priority sampling, so the window's sample stays bounded and unbiased
whatever the buckets' sizes; its error is stated with the report (``drift_window.dkw_bound``
at Kish's effective sample size).

``Sketcher`` is the pod side (pure Python per request: a few microseconds); ``WindowSketch``
the check side (numpy over chunks of encoded buckets, so memory stays flat with the window);
``driftline.sketch_frames`` builds buckets from tables. No pandas here: serving imports it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from driftline.categories import CategoryCanonicaliser
from driftline.drift_report import DriftWindow
from driftline.drift_window import (
    UNSEEN_BUCKET,
    NumericWindow,
    WindowSummary,
    dkw_bound,
    effective_size,
)
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema

if TYPE_CHECKING:
    from driftline.baseline import Baseline

SKETCH_FORMAT = 1
COUNT_DTYPE = np.dtype("<u4")
SAMPLE_DTYPE = np.dtype("<f4")
# Sample rows one pod keeps per bucket and version, and rows a merged window keeps.
DEFAULT_SAMPLE_ROWS = 128
DEFAULT_WINDOW_SAMPLE = 20_000
DEFAULT_BUCKET_SECONDS = 60.0
# Keys have 24 bits so that float32 holds them exactly beside the sampled values.
KEY_BITS = 24
# A bucket that kept every row it saw: any key is below its bound.
COMPLETE = 1.0


def random_key(source: random.Random) -> float:
    """A sampling key, uniform on [0, 1) in steps of 2**-24, drawn from ``source``.

    Random rather than a hash of the request id: clients reuse ids (a batch numbered from 0
    every time), and repeated keys would bias the sample or let a client steer it. Nothing
    joins on the key, so it needs no determinism.
    """
    return float(source.getrandbits(KEY_BITS) / 2**KEY_BITS)


@dataclass(frozen=True)
class NumericSlot:
    """A numeric variable's counts: ``len(edges) + 1`` bins from ``offset``, then missing."""

    name: str
    edges: tuple[float, ...]
    offset: int

    @property
    def size(self) -> int:
        """Counts the slot takes."""
        return len(self.edges) + 2


@dataclass(frozen=True)
class CategoricalSlot:
    """A categorical feature's counts: its baseline categories from ``offset``, then unseen."""

    name: str
    categories: tuple[str, ...]
    offset: int

    @property
    def size(self) -> int:
        """Counts the slot takes."""
        return len(self.categories) + 1


@dataclass(frozen=True)
class SketchLayout:
    """Where each variable sits in a bucket's count vector and sample, from one baseline.

    Count vector: numeric features, then the predicted probability, then categorical features.
    Sample rows: the key, each numeric feature, the predicted probability (float32; a missing
    value is NaN). ``digest`` identifies the layout, so buckets of another baseline are never
    merged into a window.
    """

    numeric: tuple[NumericSlot, ...]
    prediction: NumericSlot
    categorical: tuple[CategoricalSlot, ...]
    size: int
    digest: str

    @property
    def sample_width(self) -> int:
        """Values in one sample row: the key, the numeric features, the probability."""
        return len(self.numeric) + 2


def sketch_layout(baseline: Baseline) -> SketchLayout:
    """The layout of ``baseline``'s bins (numeric and categorical features in baseline order)."""
    offset = 0
    numeric = []
    for name, ref in baseline.numeric.items():
        numeric.append(NumericSlot(name, ref.edges, offset))
        offset += numeric[-1].size
    prediction = NumericSlot("(prediction)", baseline.prediction.edges, offset)
    offset += prediction.size
    categorical = []
    for name, cat in baseline.categorical.items():
        categorical.append(CategoricalSlot(name, tuple(sorted(cat.proportions)), offset))
        offset += categorical[-1].size
    described = {
        "format": SKETCH_FORMAT,
        "numeric": [[s.name, s.edges] for s in numeric],
        "prediction": prediction.edges,
        "categorical": [[s.name, s.categories] for s in categorical],
    }
    digest = hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]
    return SketchLayout(tuple(numeric), prediction, tuple(categorical), offset, digest)


@dataclass(frozen=True)
class SealedBucket:
    """One finished bucket, encoded for the store (``driftline_drift_sketch`` rows).

    ``counts`` is ``layout.size`` little-endian uint32; ``sample`` is ``sample_rows`` rows of
    ``layout.sample_width`` little-endian float32. ``sample_bound`` is the largest kept key
    when the bucket saw more rows than it kept (every row below it is in the sample), else
    ``COMPLETE``.
    """

    start: float
    seconds: float
    requests: int
    positives: int
    counts: bytes
    sample: bytes
    sample_rows: int
    sample_bound: float


@dataclass
class _Bucket:
    counts: list[int]
    requests: int = 0
    positives: int = 0
    sample: list[tuple[float, ...]] = field(default_factory=list)
    # Rows with a key at or above this are not kept; lowered as the sample is cut.
    bound: float = math.inf
    truncated: bool = False


class Sketcher:
    """Counts the requests one pod serves with one model version into time buckets.

    Not thread-safe: the server's event loop calls it. ``add`` costs a few microseconds per
    row (a binary search per numeric feature, a dictionary lookup per categorical one).
    """

    def __init__(
        self,
        layout: SketchLayout,
        schema: FeatureSchema,
        *,
        bucket_seconds: float = DEFAULT_BUCKET_SECONDS,
        sample_rows: int = DEFAULT_SAMPLE_ROWS,
    ) -> None:
        """Compile the bins of ``layout`` against the value order of ``schema``.

        Raises ValueError when the schema lacks a variable of the layout or has the wrong kind.
        """
        if bucket_seconds <= 0 or sample_rows < 1:
            raise ValueError("a sketch needs bucket_seconds > 0 and sample_rows >= 1")
        self.layout = layout
        self.bucket_seconds = bucket_seconds
        self.sample_rows = sample_rows
        index = {spec.name: i for i, spec in enumerate(schema.features)}

        def position(name: str, kind: FeatureKind) -> int:
            if name not in index or schema.features[index[name]].kind is not kind:
                raise ValueError(f"the schema has no {kind.value} feature {name!r}")
            return index[name]

        self._numeric = [
            (position(s.name, FeatureKind.NUMERIC), list(s.edges), s.offset, s.offset + s.size - 1)
            for s in layout.numeric
        ]
        self._categorical = [
            (
                position(s.name, FeatureKind.CATEGORICAL),
                CategoryCanonicaliser(schema.feature(s.name).categories),
                {c: s.offset + i for i, c in enumerate(s.categories)},
                s.offset + s.size - 1,
            )
            for s in layout.categorical
        ]
        self._prediction_edges = list(layout.prediction.edges)
        self._buckets: dict[float, _Bucket] = {}

    def add(
        self, ts: float, key: float, values: Sequence[Any], probability: float, prediction: int
    ) -> None:
        """Count one served row: ``values`` in schema order, as serving validated them.

        Numeric values are floats (NaN missing); categorical ones are the request's text,
        typed here by the rule a drift check applies to logged rows
        (``coercion.CategoryCanonicaliser``).
        """
        start = ts - ts % self.bucket_seconds
        bucket = self._buckets.get(start)
        if bucket is None:
            bucket = self._buckets[start] = _Bucket([0] * self.layout.size)
        counts = bucket.counts
        for at, edges, offset, missing in self._numeric:
            value = values[at]
            if value == value:
                counts[offset + bisect.bisect_left(edges, value)] += 1
            else:
                counts[missing] += 1
        p_slot = self.layout.prediction
        if probability == probability:
            counts[p_slot.offset + bisect.bisect_left(self._prediction_edges, probability)] += 1
        else:
            counts[p_slot.offset + p_slot.size - 1] += 1
        for at, canonical, known, unseen in self._categorical:
            category = canonical(values[at]) or MISSING_CATEGORY
            counts[known.get(category, unseen)] += 1
        bucket.requests += 1
        bucket.positives += prediction
        if key < bucket.bound:
            bucket.sample.append((key, *(values[at] for at, *_ in self._numeric), probability))
            if len(bucket.sample) >= 2 * self.sample_rows:
                self._cut(bucket)

    def _cut(self, bucket: _Bucket) -> None:
        bucket.sample.sort(key=lambda row: row[0])
        del bucket.sample[self.sample_rows :]
        bucket.bound = bucket.sample[-1][0]
        bucket.truncated = True

    def seal(self, now: float | None = None) -> list[SealedBucket]:
        """Remove and encode the buckets that ended by ``now`` (all of them when None)."""
        done = [
            start for start in self._buckets if now is None or start + self.bucket_seconds <= now
        ]
        return [self._encode(start, self._buckets.pop(start)) for start in sorted(done)]

    def _encode(self, start: float, bucket: _Bucket) -> SealedBucket:
        if len(bucket.sample) > self.sample_rows:
            self._cut(bucket)
        bound = bucket.bound if bucket.truncated else COMPLETE
        sample = np.array(bucket.sample, dtype=SAMPLE_DTYPE).reshape(-1, self.layout.sample_width)
        return SealedBucket(
            start=start,
            seconds=self.bucket_seconds,
            requests=bucket.requests,
            positives=bucket.positives,
            counts=np.asarray(bucket.counts, dtype=COUNT_DTYPE).tobytes(),
            sample=sample.tobytes(),
            sample_rows=len(sample),
            sample_bound=float(bound),
        )


@dataclass(frozen=True)
class BucketChunk:
    """Some stored buckets of one version, as read: parallel sequences, one entry a bucket."""

    pods: Sequence[str]
    seconds: Sequence[float]
    requests: Sequence[int]
    positives: Sequence[int]
    layouts: Sequence[str]
    counts: Sequence[bytes]
    samples: Sequence[bytes]
    sample_bounds: Sequence[float]

    @classmethod
    def of(cls, buckets: Sequence[SealedBucket], layout: str, pod: str) -> BucketChunk:
        """Sealed buckets of one pod as a chunk, without a store in between."""
        return cls(
            pods=[pod] * len(buckets),
            seconds=[b.seconds for b in buckets],
            requests=[b.requests for b in buckets],
            positives=[b.positives for b in buckets],
            layouts=[layout] * len(buckets),
            counts=[b.counts for b in buckets],
            samples=[b.sample for b in buckets],
            sample_bounds=[b.sample_bound for b in buckets],
        )


class WindowSketch:
    """The buckets of a window merged: exact counts and a weighted sample of its rows.

    Each bucket's sample is a uniform sample of its rows (its bottom-k by random key), so a
    kept row stands for ``requests / kept`` rows of its bucket (Horvitz-Thompson): buckets of
    any sizes merge without the busiest one setting everyone's sampling rate. The merged
    sample is bounded by priority sampling (Duffield, Lund and Thorup, "Priority sampling for
    estimation of arbitrary subset sums", JACM 2007): a row's priority is its weight over a
    uniform number (its key over its bucket's bound, uniform given the row was kept), the
    ``sample_size`` rows of highest priority are kept, and each carries max(weight, tau),
    tau the highest priority left out; every CDF estimate from it is unbiased.
    """

    def __init__(self, layout: SketchLayout, sample_size: int = DEFAULT_WINDOW_SAMPLE) -> None:
        """An empty window of ``layout``; the merged sample keeps ``sample_size`` rows."""
        self.layout = layout
        self.sample_size = sample_size
        self.counts = np.zeros(layout.size, dtype=np.int64)
        self.requests = 0
        self.positives = 0
        self.buckets = 0
        self.skipped = 0
        self.pods: set[str] = set()
        self.bucket_seconds: set[float] = set()
        # The highest priority left out so far (0: none left out).
        self.tau = 0.0
        self._rows = np.empty((0, layout.sample_width), dtype=SAMPLE_DTYPE)
        self._weights = np.empty(0)
        self._priorities = np.empty(0)

    def merge(self, chunk: BucketChunk) -> None:
        """Add a chunk of stored buckets; buckets of another layout are counted and skipped.

        Raises ValueError when a bucket's bytes do not fit the layout (a corrupt row).
        """
        same = [i for i, digest in enumerate(chunk.layouts) if digest == self.layout.digest]
        self.skipped += len(chunk.layouts) - len(same)
        if not same:
            return
        counts = np.frombuffer(b"".join(chunk.counts[i] for i in same), dtype=COUNT_DTYPE)
        if counts.size != len(same) * self.layout.size:
            raise ValueError("a stored sketch's counts do not fit its layout")
        self.counts += counts.reshape(len(same), self.layout.size).sum(axis=0, dtype=np.int64)
        requests = np.array([chunk.requests[i] for i in same], dtype=np.float64)
        self.requests += int(requests.sum())
        self.positives += int(sum(chunk.positives[i] for i in same))
        self.buckets += len(same)
        self.pods.update(chunk.pods[i] for i in same)
        self.bucket_seconds.update(chunk.seconds[i] for i in same)
        width = self.layout.sample_width
        row_bytes = width * SAMPLE_DTYPE.itemsize
        kept = np.array([len(chunk.samples[i]) for i in same])
        if np.any(kept % row_bytes):
            raise ValueError("a stored sketch's sample does not fit its layout")
        kept //= row_bytes
        rows = np.frombuffer(b"".join(chunk.samples[i] for i in same), dtype=SAMPLE_DTYPE)
        rows = rows.reshape(-1, width)
        has_rows = kept > 0
        weights = np.repeat(requests[has_rows] / kept[has_rows], kept[has_rows])
        bounds = np.repeat([chunk.sample_bounds[i] for i in same], kept)
        # Uniform on (0, 1] given the row was kept; never 0, so every priority is finite.
        uniform = np.maximum(rows[:, 0] / bounds, 2.0**-KEY_BITS)
        self._keep(rows, weights, weights / uniform)

    def _keep(
        self,
        rows: npt.NDArray[np.float32],
        weights: npt.NDArray[np.float64],
        priorities: npt.NDArray[np.float64],
    ) -> None:
        if self.sample_size and len(self._rows) == self.sample_size:
            # A full sample: only rows above its lowest priority can enter; the others are
            # left out at once (their highest priority still counts in tau).
            enter = priorities > self._priorities.min()
            if not enter.all():
                self.tau = max(self.tau, float(priorities[~enter].max()))
                rows, weights, priorities = rows[enter], weights[enter], priorities[enter]
        rows = np.concatenate([self._rows, rows])
        weights = np.concatenate([self._weights, weights])
        priorities = np.concatenate([self._priorities, priorities])
        if len(rows) > self.sample_size:
            order = np.argpartition(priorities, len(rows) - self.sample_size)
            dropped, kept = order[: len(rows) - self.sample_size], order[-self.sample_size :]
            self.tau = max(self.tau, float(priorities[dropped].max()))
            rows, weights, priorities = rows[kept], weights[kept], priorities[kept]
        self._rows, self._weights, self._priorities = rows, weights, priorities

    def sample(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """The merged sample and the window rows each of its rows stands for.

        Rows are (key, numeric features..., probability); weights are priority sampling's
        max(weight, tau).
        """
        return self._rows, np.maximum(self._weights, self.tau)

    def summary(self) -> WindowSummary:
        """The window as the drift decision reads it (``drift.decide``)."""
        rows, weights = self.sample()
        # Equal weights (every bucket kept all its rows, or kept the same share): a plain
        # sample, tested as rows are.
        equal = weights.size == 0 or bool(np.all(weights == weights[0]))
        numeric = {}
        for column, slot in enumerate(self.layout.numeric, start=1):
            numeric[slot.name] = self._numeric(slot, rows[:, column], None if equal else weights)
        prediction = self._numeric(self.layout.prediction, rows[:, -1], None if equal else weights)
        categorical = {}
        for cat in self.layout.categorical:
            counts = self.counts[cat.offset : cat.offset + cat.size].tolist()
            by_name = dict(zip([*cat.categories, UNSEEN_BUCKET], counts, strict=True))
            categorical[cat.name] = {c: n for c, n in by_name.items() if n}
        seconds = sorted(self.bucket_seconds)
        every_row = len(rows) == self.requests
        window = DriftWindow(
            mode="sketch",
            rows=self.requests,
            buckets=self.buckets,
            pods=len(self.pods),
            bucket_seconds=seconds[0] if len(seconds) == 1 else None,
            rows_per_bucket=self.requests / self.buckets if self.buckets else None,
            ks_sample=len(rows),
            ks_effective=round(effective_size(weights), 1),
            ks_error=0.0 if every_row else dkw_bound(int(effective_size(weights))),
            skipped_buckets=self.skipped,
            positive_rate=self.positives / self.requests if self.requests else None,
        )
        return WindowSummary(self.requests, numeric, categorical, prediction, window)

    def _numeric(
        self,
        slot: NumericSlot,
        values: npt.NDArray[np.float32],
        weights: npt.NDArray[np.float64] | None,
    ) -> NumericWindow:
        present = np.isfinite(values)
        order = np.argsort(values[present], kind="stable")
        counts = self.counts[slot.offset : slot.offset + slot.size].copy()
        sample = values[present][order].astype(np.float64)
        kept = None if weights is None else weights[present][order]
        return NumericWindow(counts, sample, SAMPLE_DTYPE.name, kept)
