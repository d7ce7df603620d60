"""The operator's decisions as pure functions: auto promotion and retraining.

Inputs are plain values (figures already fetched, times already read) so every branch is a
unit test; the handlers only gather the inputs and act on the answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from driftline.promotion import Comparison, ComparisonRule, compare

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``6h``, ``2d`` (the CRD's pattern) as a timedelta."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use 90s, 15m, 6h or 2d)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class VariantHealth:
    """Online figures of one variant over the health window."""

    requests: int
    errors: int
    latency_p95_ms: float | None

    @property
    def error_rate(self) -> float:
        """Errors per request (0 with no requests)."""
        total = self.requests + self.errors
        return self.errors / total if total else 0.0


@dataclass(frozen=True)
class Decision:
    """Whether to act, and why in one line."""

    act: bool
    reason: str


def decide_auto_promotion(
    promotion: dict[str, Any],
    champion_metric: float,
    challenger_metric: float,
    health: VariantHealth,
) -> tuple[Decision, Comparison]:
    """Promote when the challenger beats the champion offline and is healthy online."""
    rule = ComparisonRule(promotion.get("metric", "roc_auc"), float(promotion.get("minDelta", 0)))
    comparison = compare(rule, champion_metric, challenger_metric)
    if not comparison.challenger_wins:
        return Decision(
            False,
            f"{rule.metric}: challenger {challenger_metric:.4f} vs champion"
            f" {champion_metric:.4f}, improvement {comparison.improvement:+.4f}"
            f" < {rule.min_delta}",
        ), comparison
    min_requests = int(promotion.get("minRequests", 0))
    if health.requests < min_requests:
        return Decision(
            False, f"challenger served {health.requests} requests, needs {min_requests}"
        ), comparison
    max_error_rate = float(promotion.get("maxErrorRate", 1.0))
    if health.error_rate > max_error_rate:
        return Decision(
            False, f"challenger error rate {health.error_rate:.4f} > {max_error_rate}"
        ), comparison
    max_latency = promotion.get("maxLatencyMs")
    if max_latency is not None and (
        health.latency_p95_ms is None or health.latency_p95_ms > float(max_latency)
    ):
        return Decision(
            False, f"challenger p95 latency {health.latency_p95_ms} ms > {max_latency} ms"
        ), comparison
    return Decision(
        True,
        f"{rule.metric} {champion_metric:.4f} -> {challenger_metric:.4f}"
        f" ({comparison.improvement:+.4f}); {health.requests} requests,"
        f" error rate {health.error_rate:.4f}, p95 {health.latency_p95_ms:.1f} ms",
    ), comparison


def decide_retrain(
    summary: dict[str, Any],
    *,
    enabled: bool,
    cooldown: timedelta,
    last_retrain_at: datetime | None,
    training_running: bool,
    now: datetime,
) -> Decision:
    """Retrain on a drift breach, unless disabled, inside the cooldown or already training."""
    if not summary.get("drifted"):
        return Decision(False, f"no drift ({summary.get('status', 'unknown')})")
    if not enabled:
        return Decision(False, "drift found; retraining is disabled")
    if training_running:
        return Decision(False, "drift found; a training Job is already running")
    if last_retrain_at is not None and now - last_retrain_at < cooldown:
        remaining = cooldown - (now - last_retrain_at)
        return Decision(
            False, f"drift found; inside cooldown ({int(remaining.total_seconds())}s left)"
        )
    return Decision(True, f"drift found: {summary.get('reason', '')}"[:300])


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]
