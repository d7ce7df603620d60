"""Alerts: which Events are news, their CloudEvents and Slack bodies, signatures, retries.

The delivery tests post through a FAKE transport (a function recording calls and answering
scripted statuses); the kube tier sends to a real HTTP receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter

from driftline_operator.alerts import Alert, alert_type, cloudevent, encode, signature, slack_text
from driftline_operator.webhooks import Receiver, Webhooks

WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def alert(reason: str = "RolloutAborted", severity: str = "Warning") -> Alert:
    return Alert("ModelDeployment", "ml", "income", severity, reason, "errorRate 0.2 > 0.01", WHEN)


@pytest.mark.parametrize(
    ("severity", "reason", "expected"),
    [
        ("Warning", "RolloutAborted", "dev.driftline.rollout.aborted"),
        ("Normal", "RolloutStepAdvanced", "dev.driftline.rollout.step"),
        ("Normal", "ChampionMoved", "dev.driftline.promotion"),
        ("Normal", "RolledBack", "dev.driftline.rollback"),
        ("Normal", "TrainingSucceeded", "dev.driftline.retrain.finished"),
        ("Warning", "DriftChecked", "dev.driftline.drift.detected"),
        ("Normal", "DriftChecked", None),
        ("Warning", "PerformanceChecked", "dev.driftline.performance.breached"),
        ("Normal", "PerformanceChecked", None),
        ("Normal", "RetrainSkipped", None),
    ],
)
def test_alert_types(severity: str, reason: str, expected: str | None) -> None:
    assert alert_type(severity, reason) == expected


def test_cloudevent_has_the_required_attributes() -> None:
    event = cloudevent(alert(), "modeldeployments", event_id="abc")
    assert event == {
        "specversion": "1.0",
        "id": "abc",
        "source": "/apis/driftline.dev/v1alpha1/namespaces/ml/modeldeployments/income",
        "type": "dev.driftline.rollout.aborted",
        "subject": "income",
        "time": "2026-12-01T12:00:00Z",
        "datacontenttype": "application/json",
        "data": {"kind": "ModelDeployment", "namespace": "ml", "name": "income",
                 "severity": "Warning", "reason": "RolloutAborted",
                 "message": "errorRate 0.2 > 0.01"},
    }  # fmt: skip
    with pytest.raises(ValueError, match="not an alert"):
        cloudevent(alert("RetrainSkipped", "Normal"), "driftpolicies")


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = encode(cloudevent(alert(), "modeldeployments"))
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature(b"k", body) == f"sha256={expected}"
    assert json.loads(body)["type"] == "dev.driftline.rollout.aborted"


def test_slack_text_names_the_object_and_reason() -> None:
    text = slack_text(alert())["text"]
    assert text.startswith(":warning: ModelDeployment ml/income: *RolloutAborted*")


class FakeTransport:
    """FAKE: records POSTs and answers scripted statuses (an OSError entry raises it)."""

    def __init__(self, answers: list[int | OSError]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.done = threading.Event()

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.calls.append((url, body, headers))
        answer = self.answers.pop(0) if self.answers else 200
        if not self.answers:
            self.done.set()
        if isinstance(answer, OSError):
            raise answer
        return answer


def deliver(answers: list[int | OSError], receiver: Receiver, attempts: int = 4):
    counter = Counter("d", "d", ["webhook", "outcome"], registry=CollectorRegistry())
    transport = FakeTransport(answers)
    hooks = Webhooks([receiver], counter, attempts=attempts, backoff=0.01, post=transport)
    hooks.start()
    hooks.send(alert(), "modeldeployments")
    assert transport.done.wait(5)
    hooks.stop()
    outcomes = {s.labels["outcome"]: s.value for m in counter.collect() for s in m.samples
                if s.name == "d_total"}  # fmt: skip
    return transport.calls, outcomes


def test_failures_are_retried_then_delivered() -> None:
    receiver = Receiver("ops", "http://r/", secret=b"k")
    calls, outcomes = deliver([500, OSError("refused"), 429, 202], receiver)
    assert len(calls) == 4 and outcomes == {"delivered": 1.0}
    _, body, headers = calls[-1]
    assert headers["X-Driftline-Signature"] == signature(b"k", body)
    assert headers["Content-Type"] == "application/cloudevents+json"


def test_a_refusal_is_not_retried_and_tries_are_bounded() -> None:
    receiver = Receiver("ops", "http://r/")
    calls, outcomes = deliver([400], receiver)
    assert len(calls) == 1 and outcomes == {"failed": 1.0}
    calls, outcomes = deliver([503, 503, 503], receiver, attempts=3)
    assert len(calls) == 3 and outcomes == {"failed": 1.0}
    assert "X-Driftline-Signature" not in calls[0][2]


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    counter = Counter("d", "d", ["webhook", "outcome"], registry=CollectorRegistry())
    hooks = Webhooks([Receiver("ops", "http://r/")], counter, queue_size=2, post=FakeTransport([]))
    for _ in range(5):  # workers not started: nothing drains the queue
        hooks.send(alert(), "modeldeployments")
    assert counter.labels("ops", "dropped")._value.get() == 3


def test_types_filter_what_a_receiver_gets() -> None:
    counter = Counter("d", "d", ["webhook", "outcome"], registry=CollectorRegistry())
    only = Receiver(
        "chat", "http://r/", payload="slack", types=frozenset({"dev.driftline.rollback"})
    )
    hooks = Webhooks([only], counter, queue_size=1, post=FakeTransport([]))
    hooks.send(alert(), "modeldeployments")
    hooks.send(alert(), "modeldeployments")
    assert counter.labels("chat", "dropped")._value.get() == 0
