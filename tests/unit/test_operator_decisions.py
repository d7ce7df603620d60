"""Pure decisions of the operator: auto promotion, retraining, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftline.api.v1alpha1 import LastCheck, Promotion
from driftline.durations import parse_duration
from driftline_operator.conditions import Condition, set_conditions
from driftline_operator.decisions import decide_auto_promotion, decide_retrain
from driftline_operator.traffic import VariantWindow

RULE = Promotion.model_validate({"metric": "roc_auc", "minDelta": 0.005, "minRequests": 100,
                                 "maxErrorRate": 0.01, "maxLatencyMs": 50})  # fmt: skip
HEALTHY = VariantWindow(requests=500, errors=1, latency_p95_ms=8.0)
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("champion", "challenger", "health", "act", "word"),
    [
        (0.90, 0.91, HEALTHY, True, "roc_auc"),
        (0.90, 0.903, HEALTHY, False, "improvement"),
        (0.90, 0.91, VariantWindow(99, 0, 8.0), False, "requests"),
        (0.90, 0.91, VariantWindow(500, 10, 8.0), False, "error rate"),
        (0.90, 0.91, VariantWindow(500, 0, 51.0), False, "latency"),
        (0.90, 0.91, VariantWindow(500, 0, None), False, "latency"),
    ],
    ids=["wins", "below-delta", "few-requests", "errors", "slow", "no-latency"],
)
def test_auto_promotion(
    champion: float, challenger: float, health: VariantWindow, act: bool, word: str
) -> None:
    decision, comparison = decide_auto_promotion(RULE, champion, challenger, health)
    assert decision.act is act
    assert word in decision.reason
    assert comparison.metric == "roc_auc"


def test_lower_is_better_metric() -> None:
    rule = RULE.model_copy(update={"metric": "log_loss"})
    decision, _ = decide_auto_promotion(rule, 0.40, 0.30, HEALTHY)
    assert decision.act


@pytest.mark.parametrize(
    ("summary", "kwargs", "act", "word"),
    [
        ({"drifted": True, "reason": "age"}, {}, True, "drift found"),
        ({"drifted": False, "status": "no_drift"}, {}, False, "no drift"),
        ({"drifted": True}, {"enabled": False}, False, "disabled"),
        ({"drifted": True}, {"training_running": True}, False, "already running"),
        ({"drifted": True}, {"last_retrain_at": NOW - timedelta(minutes=30)}, False, "cooldown"),
        ({"drifted": True}, {"last_retrain_at": NOW - timedelta(hours=2)}, True, "drift found"),
        (
            {"drifted": False, "performance": {"status": "breach", "reason": "auc 0.6 < 0.8"}},
            {},
            True,
            "performance breach: auc 0.6",
        ),
        (
            {
                "drifted": True,
                "reason": "age",
                "performance": {"status": "breach", "reason": "auc"},
            },
            {},
            True,
            "drift and performance breach: age; auc",
        ),
        (
            {"drifted": False, "status": "no_drift", "performance": {"status": "ok"}},
            {},
            False,
            "performance ok",
        ),
        (
            {"drifted": False, "performance": {"status": "breach"}},
            {"last_retrain_at": NOW - timedelta(minutes=30)},
            False,
            "performance breach; inside",
        ),
    ],
    ids=[
        "breach",
        "no-drift",
        "disabled",
        "running",
        "in-cooldown",
        "after-cooldown",
        "performance",
        "both",
        "performance-ok",
        "performance-in-cooldown",
    ],
)
def test_retrain(summary: dict, kwargs: dict, act: bool, word: str) -> None:
    arguments = {"enabled": True, "cooldown": timedelta(hours=1), "last_retrain_at": None,
                 "training_running": False, "now": NOW, **kwargs}  # fmt: skip
    decision = decide_retrain(LastCheck.model_validate(summary), **arguments)
    assert decision.act is act
    assert word in decision.reason


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration("0s", allow_zero=True) == timedelta(0)
    for bad in ("1 hour", "0s", "-1s", "h"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_conditions_keep_transition_time_until_status_flips() -> None:
    first = set_conditions(None, [Condition("Ready", False, "RolloutInProgress")], 1, NOW)
    later = NOW + timedelta(minutes=5)
    same = set_conditions(first, [Condition("Ready", False, "RolloutInProgress", "x")], 2, later)
    assert same[0]["lastTransitionTime"] == "2026-11-22T12:00:00Z"
    assert same[0]["observedGeneration"] == 2
    flipped = set_conditions(same, [Condition("Ready", True, "AllAvailable")], 2, later)
    assert flipped[0]["lastTransitionTime"] == "2026-11-22T12:05:00Z"
    both = set_conditions(flipped, [Condition("Degraded", None, "Unknown")], 2, later)
    assert [c["type"] for c in both] == ["Degraded", "Ready"] and both[0]["status"] == "Unknown"
