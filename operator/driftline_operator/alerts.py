"""Alerts: which operator Events are news for people, and their webhook payloads (pure).

Every alert is one of the Kubernetes Events the operator posts, so a webhook says nothing the
cluster's Event stream does not: ``alert_type`` maps an Event to a CloudEvents ``type``
(``dev.driftline.<subject>.<what>``), or None for bookkeeping Events. Payloads are CloudEvents
1.0 in structured JSON mode (CloudEvents spec v1.0.2, "JSON Event Format" and "HTTP Protocol
Binding": ``specversion``, ``id``, ``source``, ``type``, ``time``, ``subject``, ``data``), or a
Slack-compatible ``{"text": ...}`` object. The body is signed with HMAC-SHA256 over its exact
bytes (``X-Driftline-Signature: sha256=<hex>``, GitHub's webhook convention) so a receiver can
check it came from the operator holding the shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from driftline_operator.conditions import rfc3339

SIGNATURE_HEADER = "X-Driftline-Signature"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
PayloadFormat = Literal["cloudevents", "slack"]

# Event reason -> CloudEvents type, for the Events that are always news.
ALWAYS = {
    "RetrainStarted": "dev.driftline.retrain.started",
    "TrainingSucceeded": "dev.driftline.retrain.finished",
    "TrainingFailed": "dev.driftline.retrain.finished",
    "RolloutStarted": "dev.driftline.rollout.started",
    "RolloutRestarted": "dev.driftline.rollout.started",
    "RolloutRetried": "dev.driftline.rollout.started",
    "RolloutStepAdvanced": "dev.driftline.rollout.step",
    "RolloutPaused": "dev.driftline.rollout.paused",
    "AnalysisFailed": "dev.driftline.rollout.analysis_failed",
    "RolloutAborted": "dev.driftline.rollout.aborted",
    "RolloutRejected": "dev.driftline.rollout.aborted",
    "RolloutPromoted": "dev.driftline.rollout.promoted",
    "ChampionMoved": "dev.driftline.promotion",
    "RolledBack": "dev.driftline.rollback",
}
# Checks are news only when they found something: their Event is a Warning then.
ON_WARNING = {
    "DriftChecked": "dev.driftline.drift.detected",
    "PerformanceChecked": "dev.driftline.performance.breached",
}
ALERT_TYPES = frozenset({*ALWAYS.values(), *ON_WARNING.values()})


@dataclass(frozen=True)
class Alert:
    """One Event of one object, as the operator posted it."""

    kind: str
    namespace: str
    name: str
    severity: str
    reason: str
    message: str
    time: datetime


def alert_type(severity: str, reason: str) -> str | None:
    """The CloudEvents type of an Event (``severity`` Normal or Warning), or None."""
    if reason in ALWAYS:
        return ALWAYS[reason]
    if severity == "Warning":
        return ON_WARNING.get(reason)
    return None


def cloudevent(alert: Alert, plural: str, event_id: str | None = None) -> dict[str, Any]:
    """The alert as a structured-mode CloudEvent; ``plural`` names the resource in ``source``.

    Raises ValueError for an Event that is not an alert.
    """
    kind = alert_type(alert.severity, alert.reason)
    if kind is None:
        raise ValueError(f"{alert.reason} ({alert.severity}) is not an alert")
    return {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": f"/apis/driftline.dev/v1alpha1/namespaces/{alert.namespace}/{plural}/"
        f"{alert.name}",
        "type": kind,
        "subject": alert.name,
        "time": rfc3339(alert.time),
        "datacontenttype": "application/json",
        "data": {
            "kind": alert.kind,
            "namespace": alert.namespace,
            "name": alert.name,
            "severity": alert.severity,
            "reason": alert.reason,
            "message": alert.message,
        },
    }


def slack_text(alert: Alert) -> dict[str, str]:
    """A Slack-compatible body (incoming webhooks take ``{"text": ...}``)."""
    mark = ":warning:" if alert.severity == "Warning" else ":information_source:"
    return {
        "text": f"{mark} {alert.kind} {alert.namespace}/{alert.name}: *{alert.reason}*"
        f" {alert.message}"
    }


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, keys in a stable order."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``; a receiver compares it with hmac.compare_digest."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
