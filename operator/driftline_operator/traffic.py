"""Per-variant health of a ModelDeployment as its router saw it, over a window (pure).

What rollout analysis measures: requests, errors (5xx answers, timeouts, unreachable) and p95
latency of each variant's upstream, from the router's counters and latency histogram
(``driftline_router_upstream_*``): parsing a ``/metrics`` page, the difference of two scrapes
(counters are cumulative) and the histogram quantile. Sources implement ``TrafficSource``
(``router_scrape.RouterScrape`` reads the router pods directly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from driftline_operator.names import Owner

REQUESTS = "driftline_router_upstream_requests"
ERRORS = "driftline_router_upstream_errors"
LATENCY = "driftline_router_upstream_latency_seconds"


class MetricsUnavailableError(Exception):
    """No router pod could be read: the analysis has no figures (inconclusive)."""


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of one variant: requests, errors, latency histogram buckets.

    ``buckets`` maps each upper bound in seconds (``math.inf`` last) to the cumulative count
    of calls at most that long, as a Prometheus histogram exports them.
    """

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def plus(self, other: Counts) -> Counts:
        """Both added together (two pods' counts)."""
        bounds = set(self.buckets) | set(other.buckets)
        return Counts(
            self.requests + other.requests,
            self.errors + other.errors,
            {b: self.buckets.get(b, 0.0) + other.buckets.get(b, 0.0) for b in bounds},
        )

    def since(self, earlier: Counts | None) -> Counts:
        """What was counted after ``earlier``; all of it after a counter reset (a restart).

        A reset is read as in Prometheus's ``increase()``: a counter lower than before
        started again from zero.
        """
        if earlier is None or self.requests < earlier.requests or self.errors < earlier.errors:
            return self
        return Counts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            {b: max(0.0, n - earlier.buckets.get(b, 0.0)) for b, n in self.buckets.items()},
        )


@dataclass(frozen=True)
class VariantWindow:
    """One variant over the window: requests sent, errors, p95 latency (ms, None if none)."""

    requests: int
    errors: int
    latency_p95_ms: float | None

    @property
    def error_rate(self) -> float:
        """Errors per request sent (0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, counts: Counts) -> VariantWindow:
        """The window's figures from the counts that changed in it."""
        p95 = histogram_quantile(0.95, counts.buckets)
        return cls(
            round(counts.requests), round(counts.errors), None if p95 is None else 1000 * p95
        )


@dataclass(frozen=True)
class TrafficWindow:
    """Every variant over the same window of ``seconds``."""

    seconds: float
    variants: dict[str, VariantWindow]

    def variant(self, name: str) -> VariantWindow:
        """One variant's figures; all zero when it served nothing in the window."""
        return self.variants.get(name, VariantWindow(0, 0, None))


class TrafficSource(Protocol):
    """Where the router's per-variant figures come from."""

    def window(self, owner: Owner, since: datetime, now: datetime) -> TrafficWindow:
        """The variants of ``owner``'s router over [since, now] (or the part of it known).

        Raises MetricsUnavailableError when no figures can be read.
        """


def parse_router_metrics(text: str) -> dict[str, Counts]:
    """Per-variant counts from one router's ``/metrics`` page (Prometheus text format).

    Raises ValueError when the page is not in the text format.
    """
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            variant = sample.labels.get("variant")
            if variant is None:
                continue
            if sample.name == REQUESTS + "_total":
                requests[variant] = sample.value
            elif sample.name == ERRORS + "_total":
                errors[variant] = errors.get(variant, 0.0) + sample.value
            elif sample.name == LATENCY + "_bucket":
                bound = float(sample.labels["le"])
                buckets.setdefault(variant, {})[bound] = sample.value
    return {
        v: Counts(requests.get(v, 0.0), errors.get(v, 0.0), buckets.get(v, {}))
        for v in set(requests) | set(errors) | set(buckets)
    }


def difference(
    now: dict[str, dict[str, Counts]], then: dict[str, dict[str, Counts]]
) -> dict[str, Counts]:
    """Per-variant counts added between two scrapes of the same pods, summed over pods.

    Both map pod uid to that pod's per-variant counts. A pod new since ``then`` counts whole;
    a pod gone since loses what it counted after ``then`` (nothing reads it any more).
    """
    total: dict[str, Counts] = {}
    for pod, variants in now.items():
        before = then.get(pod, {})
        for variant, counts in variants.items():
            total[variant] = total.get(variant, Counts()).plus(counts.since(before.get(variant)))
    return total


# pod uid -> that pod's per-variant counts, as one scrape found them
Scrape = dict[str, dict[str, Counts]]


def baselines(
    scraped: Scrape,
    started: dict[str, datetime],
    history: list[tuple[datetime, Scrape]],
    since: datetime,
) -> Scrape | None:
    """Each pod's counts at the start of the window [since, now], for ``difference``.

    A pod's baseline is its first scrape taken at or after ``since`` (``history``, oldest
    first). A pod that started after ``since`` is left out, so all it counted is in the window;
    a pod seen for the first time now but older than the window (its earlier scrapes failed)
    gets its current counts, so nothing of it is counted yet: its counters hold traffic from
    before the window. None when no scrape of the window exists yet (the window starts now).
    """
    in_window = [then for taken, then in history if taken >= since]
    if not in_window:
        return None
    found: Scrape = {}
    for pod, counts in scraped.items():
        first = next((then[pod] for then in in_window if pod in then), None)
        if first is not None:
            found[pod] = first
        elif pod not in started or started[pod] < since:
            found[pod] = counts
    return found


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q``-quantile (0..1) of a cumulative histogram, in the buckets' unit.

    Prometheus's ``histogram_quantile``: linear interpolation inside the bucket holding the
    rank, the lowest bucket starting at 0, and the highest finite bound returned when the rank
    falls in the ``+Inf`` bucket. None when the histogram counted nothing.
    Source: https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile
    """
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
