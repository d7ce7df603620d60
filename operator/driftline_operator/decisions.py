"""The operator's decisions as pure functions: auto promotion and retraining.

Inputs are plain values (figures already fetched, times already read) so every branch is a
unit test; the handlers only gather the inputs and act on the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from driftline.api.v1alpha1 import LastCheck, Promotion
from driftline.api.v1alpha1.status_types import RetrainCause
from driftline.promotion import Comparison, ComparisonRule, compare
from driftline_operator.traffic import VariantWindow


@dataclass(frozen=True)
class Decision:
    """Whether to act, and why in one line."""

    act: bool
    reason: str


def decide_auto_promotion(
    promotion: Promotion,
    champion_metric: float,
    challenger_metric: float,
    health: VariantWindow,
) -> tuple[Decision, Comparison]:
    """Promote when the challenger beats the champion offline and is healthy online.

    ``health`` is the challenger as the router saw it over ``promotion.windowMinutes``.
    """
    rule = ComparisonRule(promotion.metric, promotion.min_delta)
    comparison = compare(rule, champion_metric, challenger_metric)
    if not comparison.challenger_wins:
        return Decision(
            False,
            f"{rule.metric}: challenger {challenger_metric:.4f} vs champion"
            f" {champion_metric:.4f}, improvement {comparison.improvement:+.4f}"
            f" < {rule.min_delta}",
        ), comparison
    min_requests = promotion.min_requests
    if health.requests < min_requests:
        return Decision(
            False, f"challenger served {health.requests} requests, needs {min_requests}"
        ), comparison
    max_error_rate = promotion.max_error_rate
    if health.error_rate > max_error_rate:
        return Decision(
            False, f"challenger error rate {health.error_rate:.4f} > {max_error_rate}"
        ), comparison
    max_latency = promotion.max_latency_ms
    if health.latency_p95_ms is None or health.latency_p95_ms > max_latency:
        return Decision(
            False, f"challenger p95 latency {health.latency_p95_ms} ms > {max_latency} ms"
        ), comparison
    return Decision(
        True,
        f"{rule.metric} {champion_metric:.4f} -> {challenger_metric:.4f}"
        f" ({comparison.improvement:+.4f}); {health.requests} requests,"
        f" error rate {health.error_rate:.4f}, p95 {health.latency_p95_ms:.1f} ms",
    ), comparison


def breach_cause(check: LastCheck) -> RetrainCause | None:
    """Which breach a check found: drift, performance, both, or None."""
    performance = check.performance is not None and check.performance.status == "breach"
    if check.drifted and performance:
        return "drift and performance"
    if check.drifted:
        return "drift"
    return "performance" if performance else None


def decide_retrain(
    check: LastCheck,
    *,
    enabled: bool,
    cooldown: timedelta,
    last_retrain_at: datetime | None,
    training_running: bool,
    now: datetime,
) -> Decision:
    """Retrain on a drift or performance breach, unless disabled, in cooldown or training.

    Both breaches share the one cooldown and the one training Job.
    """
    cause = breach_cause(check)
    if cause is None:
        performance = check.performance.status if check.performance else None
        also = f", performance {performance}" if performance else ""
        return Decision(False, f"no drift ({check.status or 'unknown'}{also})")
    found = f"{cause} breach" if cause != "drift" else "drift found"
    if not enabled:
        return Decision(False, f"{found}; retraining is disabled")
    if training_running:
        return Decision(False, f"{found}; a training Job is already running")
    if last_retrain_at is not None and now - last_retrain_at < cooldown:
        remaining = cooldown - (now - last_retrain_at)
        return Decision(False, f"{found}; inside cooldown ({int(remaining.total_seconds())}s left)")
    reasons = []
    if check.drifted:
        reasons.append(check.reason or "")
    if check.performance is not None and check.performance.status == "breach":
        reasons.append(check.performance.reason or "")
    return Decision(True, f"{found}: {'; '.join(reasons)}"[:300])
