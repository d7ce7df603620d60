"""Drift sketches: what inference pods keep of their traffic so a drift check reads no rows.

A model version's baseline froze its bins at training time: quantile edges for each numeric
feature and for the predicted probabilities, the categories of each categorical feature. PSI
and the chi-squared tests need only counts over those bins, and counts add. So each pod counts
every request into the bins of the version that served it, per time bucket, and a drift check
sums the buckets of its window across pods: the counts equal what a check on every row would
compute. Numeric bins come with a missing bin and categorical ones with an "unseen" bin, laid
out by ``SketchLayout``.

The KS tests need values, so each bucket also keeps a bottom-k sample: the ``sample_rows``
rows whose key (``random_key``, uniform on [0, 1)) is smallest. Bottom-k samples
merge exactly (Cohen and Kaplan, "Summarizing data using bottom-k sketches", PODC 2007): a
bucket that saw more rows than it kept holds every row with a key below its largest kept key,
so below ``tau``, the least such key over the merged buckets, the union holds every row of the
window. Those rows are a uniform random sample of it, each row in with probability ``tau``;
the merge keeps the ``sample_size`` of smallest key. Its error is stated with the report
(``drift_window.dkw_bound``).

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
from driftline.drift_window import UNSEEN_BUCKET, NumericWindow, WindowSummary, dkw_bound
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
    """The buckets of a window merged: exact counts and a bottom-k sample of its rows."""

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
        self.tau = COMPLETE
        # Whether the merge dropped rows beyond sample_size: with tau still COMPLETE and no
        # cut, the sample is every row of the window and its KS statistic is exact.
        self.cut = False
        self._sample = np.empty((0, layout.sample_width), dtype=SAMPLE_DTYPE)

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
        self.requests += int(sum(chunk.requests[i] for i in same))
        self.positives += int(sum(chunk.positives[i] for i in same))
        self.buckets += len(same)
        self.pods.update(chunk.pods[i] for i in same)
        self.bucket_seconds.update(chunk.seconds[i] for i in same)
        self.tau = min(self.tau, *(chunk.sample_bounds[i] for i in same))
        width = self.layout.sample_width
        joined = np.frombuffer(b"".join(chunk.samples[i] for i in same), dtype=SAMPLE_DTYPE)
        if joined.size % width:
            raise ValueError("a stored sketch's sample does not fit its layout")
        rows = np.concatenate([self._sample, joined.reshape(-1, width)])
        self._sample = self._bottom(rows)

    def _bottom(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The rows below ``tau``, at most ``sample_size`` of the smallest keys."""
        rows = rows[rows[:, 0] < self.tau]
        if len(rows) > self.sample_size:
            rows = rows[np.argpartition(rows[:, 0], self.sample_size)[: self.sample_size]]
            self.cut = True
        return rows

    def sample(self) -> npt.NDArray[np.float32]:
        """The merged uniform sample: rows of (key, numeric features..., probability)."""
        self._sample = self._bottom(self._sample)
        return self._sample

    def summary(self) -> WindowSummary:
        """The window as the drift decision reads it (``drift.decide``)."""
        sample = self.sample()
        numeric = {}
        for column, slot in enumerate(self.layout.numeric, start=1):
            numeric[slot.name] = self._numeric(slot, sample[:, column])
        prediction = self._numeric(self.layout.prediction, sample[:, -1])
        categorical = {}
        for cat in self.layout.categorical:
            counts = self.counts[cat.offset : cat.offset + cat.size].tolist()
            by_name = dict(zip([*cat.categories, UNSEEN_BUCKET], counts, strict=True))
            categorical[cat.name] = {c: n for c, n in by_name.items() if n}
        seconds = sorted(self.bucket_seconds)
        window = DriftWindow(
            mode="sketch",
            rows=self.requests,
            buckets=self.buckets,
            pods=len(self.pods),
            bucket_seconds=seconds[0] if len(seconds) == 1 else None,
            rows_per_bucket=self.requests / self.buckets if self.buckets else None,
            ks_sample=len(sample),
            ks_error=0.0 if self.tau == COMPLETE and not self.cut else dkw_bound(len(sample)),
            skipped_buckets=self.skipped,
        )
        return WindowSummary(self.requests, numeric, categorical, prediction, window)

    def _numeric(self, slot: NumericSlot, values: npt.NDArray[np.float32]) -> NumericWindow:
        present = values[np.isfinite(values)]
        counts = self.counts[slot.offset : slot.offset + slot.size].copy()
        return NumericWindow(counts, np.sort(present.astype(np.float64)), SAMPLE_DTYPE.name)
