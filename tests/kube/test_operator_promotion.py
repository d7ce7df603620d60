"""Auto promotion without steps on the real tier: the operator moves the aliases once when the
challenger wins offline and is healthy online, and not when either fails. Online health is what
the router saw, scraped from a router stand-in (tests/kube/router_standin.py): a real router
process in front of FAKE upstreams that can fail or be slow on cue."""

from __future__ import annotations

import time
from typing import Any

import kubernetes
import pytest

from tests.kube.operator_fixtures import (
    RESOLVE_INTERVAL,
    Models,
    OperatorProcess,
    events,
    wait_status,
)

pytestmark = pytest.mark.kube

AUTO = {"mode": "auto", "metric": "roc_auc", "minDelta": 0.005, "minRequests": 50,
        "maxErrorRate": 0.01, "maxLatencyMs": 100, "windowMinutes": 60}  # fmt: skip


def last_decision(obj: dict) -> dict:
    return obj.get("status", {}).get("promotion", {}).get("lastDecision", {})


def test_auto_promotion_once_when_criteria_hold_and_not_otherwise(
    operator: OperatorProcess,
    models: Models,
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    routed: Any,
) -> None:
    cases: dict[str, tuple[tuple[float, float], int, dict[str, Any]]] = {
        # name: (metrics of v1 and v2, challenger percent, how the FAKE challenger misbehaves)
        "wins": ((0.90, 0.95), 50, {}),
        "too-few-requests": ((0.90, 0.95), 1, {}),
        "too-slow": ((0.90, 0.95), 50, {"delay": 0.15}),
        "failing": ((0.90, 0.95), 50, {"fail_every": 4}),
        "loses-offline": ((0.90, 0.89), 50, {}),
    }
    model_of: dict[str, str] = {}
    for name, (metrics, percent, misbehaviour) in cases.items():
        traffic = {"challengerPercent": percent}
        model, router = routed(name, metrics, pace=0.03, promotion=AUTO, traffic=traffic)
        for attribute, value in misbehaviour.items():
            setattr(router.challenger, attribute, value)
        model_of[name] = model

    promoted = wait_status(
        api_client, namespace, "modeldeployments", "wins",
        lambda o: o.get("status", {}).get("champion", {}).get("version") == "2",
        RESOLVE_INTERVAL * 3 + 30, "the winning challenger was not promoted",
    )  # fmt: skip
    assert last_decision(promoted).get("outcome") == "Promoted", promoted["status"]
    assert models.aliases(model_of["wins"]) == {"champion": "2"}

    expected = {"too-slow": "latency", "failing": "error rate", "loses-offline": "roc_auc"}
    for name, word in expected.items():
        waiting = wait_status(
            api_client, namespace, "modeldeployments", name,
            lambda o, word=word: word in last_decision(o).get("reason", ""),
            RESOLVE_INTERVAL * 3 + 20, f"{name}: no Waiting decision naming {word!r}",
        )  # fmt: skip
        assert last_decision(waiting)["outcome"] == "Waiting"
        assert models.aliases(model_of[name]) == {"champion": "1", "challenger": "2"}
    few = wait_status(
        api_client, namespace, "modeldeployments", "too-few-requests",
        lambda o: "needs 50" in last_decision(o).get("reason", ""),
        RESOLVE_INTERVAL * 3 + 20, "too-few-requests: no Waiting decision on requests",
    )  # fmt: skip
    assert last_decision(few)["outcome"] == "Waiting"
    assert models.aliases(model_of["too-few-requests"]) == {"champion": "1", "challenger": "2"}

    # Several more timer rounds: the decision is taken once, the aliases moved once, and a
    # decision that stays the same is not posted again.
    time.sleep(RESOLVE_INTERVAL * 2)
    assert models.aliases(model_of["wins"]) == {"champion": "2"}
    reasons = [e.reason for e in events(api_client, namespace, "wins")]
    assert reasons.count("PromotionPromoted") == 1
    latency = [
        e
        for e in events(api_client, namespace, "too-slow")
        if e.reason == "PromotionWaiting" and "latency" in e.message
    ]
    assert len(latency) == 1, "a repeated decision must not post a new Event every round"
