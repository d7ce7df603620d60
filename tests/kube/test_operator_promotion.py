"""Auto promotion on the real tier: the operator moves the aliases once when the challenger
wins offline and is healthy online, and not when either fails. Pods cannot run here, so the
online health comes from real rows the test writes to the SQLite inference log the operator
reads (DRIFTLINE_HEALTH_LOG_STORE)."""

from __future__ import annotations

import time

import kubernetes
import pytest

from driftline.inference_log import LogRecord, create_schema, engine_for, insert_batch
from tests.integration.conftest import MlflowServer
from tests.kube.cluster import Kubectl
from tests.kube.operator_fixtures import (
    RESOLVE_INTERVAL,
    Models,
    OperatorProcess,
    events,
    model_deployment,
    wait_status,
)
from tests.kube.test_operator import apply

pytestmark = pytest.mark.kube

AUTO = {"mode": "auto", "metric": "roc_auc", "minDelta": 0.005, "minRequests": 50,
        "maxErrorRate": 0.01, "maxLatencyMs": 100, "windowMinutes": 60}  # fmt: skip


def serve_rows(url: str, model: str, version: str, count: int, latency_ms: float) -> None:
    """What a challenger pod would have logged after serving ``count`` requests."""
    engine = engine_for(url)
    create_schema(engine)
    now = time.time()
    insert_batch(
        engine,
        [
            LogRecord(
                now - i, model, version, "challenger", f"r{i}", {"age": 40}, 1, 0.7, latency_ms
            )
            for i in range(count)
        ],
    )
    engine.dispose()


def last_decision(obj: dict) -> dict:
    return obj.get("status", {}).get("promotion", {}).get("lastDecision", {})


def test_auto_promotion_once_when_criteria_hold_and_not_otherwise(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    health_log: str,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    cases = {
        # name: (metrics of v1 and v2, rows served by v2, p95 latency)
        "wins": ([0.90, 0.95], 60, 5.0),
        "too-few-requests": ([0.90, 0.95], 10, 5.0),
        "too-slow": ([0.90, 0.95], 60, 250.0),
        "loses-offline": ([0.90, 0.89], 60, 5.0),
    }
    model_of: dict[str, str] = {}
    for name, (metrics, rows, latency) in cases.items():
        model = models.create(f"auto-{name}", metrics)
        models.registry().set_challenger(model, "2")
        serve_rows(health_log, model, "2", rows, latency)
        model_of[name] = model
        spec = model_deployment(name, model, mlflow_server.uri, promotion=AUTO)
        apply(kubectl, namespace, spec)

    promoted = wait_status(
        api_client, namespace, "modeldeployments", "wins",
        lambda o: o.get("status", {}).get("champion", {}).get("version") == "2",
        RESOLVE_INTERVAL * 3 + 20, "the winning challenger was not promoted",
    )  # fmt: skip
    assert last_decision(promoted).get("outcome") == "Promoted", promoted["status"]
    assert models.aliases(model_of["wins"]) == {"champion": "2"}

    expected = {"too-few-requests": "requests", "too-slow": "latency", "loses-offline": "roc_auc"}
    for name, word in expected.items():
        waiting = wait_status(
            api_client, namespace, "modeldeployments", name,
            lambda o: last_decision(o).get("outcome") == "Waiting",
            RESOLVE_INTERVAL * 3 + 10, f"{name}: no Waiting decision recorded",
        )  # fmt: skip
        assert word in last_decision(waiting)["reason"], last_decision(waiting)
        assert models.aliases(model_of[name]) == {"champion": "1", "challenger": "2"}

    # Several more timer rounds: the decision is taken once, the aliases moved once.
    time.sleep(RESOLVE_INTERVAL * 2)
    assert models.aliases(model_of["wins"]) == {"champion": "2"}
    reasons = [e.reason for e in events(api_client, namespace, "wins")]
    assert reasons.count("PromotionPromoted") == 1
    waiting_events = [
        e for e in events(api_client, namespace, "too-slow") if e.reason == "PromotionWaiting"
    ]
    assert len(waiting_events) == 1, "a repeated decision must not post a new Event every round"
