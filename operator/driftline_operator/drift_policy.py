"""Reconciling one DriftPolicy: own the CronJob, read finished checks, retrain on a breach.

Runs from the wiring module's handlers and timer, one call at a time per policy (kopf
serialises them), so the read-decide-create sequence cannot race itself. The training Job's
name is derived from the drift Job that caused it, so even a crash between creating it and
writing status cannot produce a second one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from driftline_operator import names
from driftline_operator.builders.drift import (
    build_drift_cronjob,
    build_training_job,
    drift_labels,
)
from driftline_operator.conditions import (
    DEGRADED,
    READY,
    Condition,
    parse_rfc3339,
    rfc3339,
    set_conditions,
)
from driftline_operator.decisions import decide_retrain, parse_duration
from driftline_operator.kube import Kube
from driftline_operator.outcome import Event, Outcome

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class ModelDeploymentMissingError(Exception):
    """The policy names a ModelDeployment that does not exist (yet)."""


def reconcile_policy(kube: Kube, body: dict[str, Any], now: datetime) -> Outcome:
    """Converge the CronJob, then account for finished drift checks and training Jobs."""
    meta, spec = body["metadata"], body["spec"]
    namespace, policy = meta["namespace"], meta["name"]
    ref = spec["modelDeploymentRef"]["name"]
    md = kube.get("ModelDeployment", namespace, ref)
    if md is None:
        raise ModelDeploymentMissingError(f"ModelDeployment {ref!r} not found in {namespace}")
    kube.apply(build_drift_cronjob(body, md["spec"]))
    status = body.get("status") or {}
    events: list[Event] = []
    updates = [Condition(READY, True, "Scheduled", f"drift check on {spec['schedule']!r}")]
    last_check = status.get("lastCheck") or {}
    last_retrain = dict(status.get("lastRetrain") or {})
    finished = _newest_finished(
        kube.select("Job", namespace, drift_labels(policy, names.COMPONENT_DRIFT))
    )
    scores: dict[str, float] = {}
    if finished is not None and finished["metadata"]["name"] != last_check.get("job"):
        last_check, scores = _check_summary(kube, finished)
        if last_check["state"] == "Failed":
            events.append(("Warning", "DriftCheckFailed", last_check["reason"]))
        else:
            events.append(
                ("Normal", "DriftChecked", f"{last_check['status']}: {last_check['reason']}")
            )
            last_retrain = _maybe_retrain(kube, body, md, last_check, last_retrain, now, events)
    last_retrain = _training_state(kube, namespace, last_retrain, events)
    failed = last_check.get("state") == "Failed" or last_retrain.get("state") == "Failed"
    updates.append(
        Condition(
            DEGRADED,
            failed,
            "CheckOrTrainingFailed" if failed else "AsExpected",
            "the last drift check or training failed" if failed else "checks run as scheduled",
        )
    )
    return Outcome(
        {
            "observedGeneration": meta.get("generation", 0),
            "lastCheck": last_check or None,
            "lastRetrain": last_retrain or None,
            "conditions": set_conditions(
                status.get("conditions"), updates, meta.get("generation", 0), now
            ),
        },
        events,
        scores,
    )


def _maybe_retrain(
    kube: Kube,
    body: dict[str, Any],
    md: dict[str, Any],
    check: dict[str, Any],
    last_retrain: dict[str, Any],
    now: datetime,
    events: list[Event],
) -> dict[str, Any]:
    retrain = body["spec"].get("retrain", {})
    namespace, policy = body["metadata"]["namespace"], body["metadata"]["name"]
    running = any(
        not _finished_state(job)
        for job in kube.select("Job", namespace, drift_labels(policy, names.COMPONENT_TRAIN))
    )
    started = last_retrain.get("startedAt")
    decision = decide_retrain(
        check,
        enabled=bool(retrain.get("enabled", True)),
        cooldown=parse_duration(retrain.get("cooldown", "6h")),
        last_retrain_at=parse_rfc3339(started) if started else None,
        training_running=running,
        now=now,
    )
    if not decision.act:
        if check.get("drifted"):
            events.append(("Normal", "RetrainSkipped", decision.reason))
            return {**last_retrain, "skippedReason": decision.reason}
        return last_retrain
    job = build_training_job(body, md["spec"], check["job"])
    kube.create(job)
    name = job["metadata"]["name"]
    events.append(("Normal", "RetrainStarted", f"training Job {name}: {decision.reason}"))
    return {"job": name, "startedAt": rfc3339(now), "state": "Running", "trigger": check["job"]}


def _training_state(
    kube: Kube, namespace: str, last_retrain: dict[str, Any], events: list[Event]
) -> dict[str, Any]:
    if last_retrain.get("state") != "Running":
        return last_retrain
    job = kube.get("Job", namespace, last_retrain["job"])
    state = "Failed" if job is None else _finished_state(job)
    if state is None:
        return last_retrain
    kind = "Normal" if state == "Succeeded" else "Warning"
    done = {**last_retrain, "state": state}
    message = f"training Job {last_retrain['job']} {state.lower()}"
    if state == "Succeeded":
        # `driftline train --termination-log` leaves the version it registered.
        version = _registered_version(_termination_message(kube, namespace, last_retrain["job"]))
        if version is not None:
            done["registeredVersion"] = version
            message += f": registered version {version} as challenger"
    events.append((kind, f"Training{state}", message))
    return done


def _registered_version(message: str | None) -> str | None:
    try:
        summary = json.loads(message) if message else None
    except ValueError:
        return None
    version = summary.get("version") if isinstance(summary, dict) else None
    return str(version) if version is not None else None


def _newest_finished(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [job for job in jobs if _finished_state(job) is not None]
    return max(done, key=lambda j: j["metadata"]["creationTimestamp"], default=None)


def _finished_state(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    return None


def _check_summary(kube: Kube, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """``status.lastCheck`` and the per-feature PSI, from a finished drift Job.

    Both come from the summary in the Job's Pod's termination message.
    """
    name = job["metadata"]["name"]
    state = _finished_state(job)
    finished_at = (job.get("status") or {}).get("completionTime") or rfc3339(
        datetime.now().astimezone()
    )
    base: dict[str, Any] = {"job": name, "time": finished_at, "state": state}
    message = _termination_message(kube, job["metadata"]["namespace"], name)
    try:
        summary = json.loads(message) if message else None
    except ValueError:
        summary = None
    if state != "Succeeded" or not isinstance(summary, dict):
        detail = (message or "no termination message")[:300]
        failed = {
            **base,
            "state": "Failed",
            "drifted": None,
            "reason": f"drift check {name} failed: {detail}",
        }
        return failed, {}
    scores = {
        str(f["name"]): float(f["psi"])
        for f in summary.get("features", [])
        if isinstance(f, dict) and isinstance(f.get("psi"), int | float)
    }
    return {
        **base,
        "status": summary.get("status"),
        "drifted": bool(summary.get("drifted")),
        "reason": str(summary.get("reason", ""))[:300],
        "samples": int((summary.get("samples") or {}).get("current", 0)),
        "maxPsi": summary.get("max_psi"),
        "features": [f["name"] for f in summary.get("features", []) if f.get("drifted")][:10],
    }, scores


def _termination_message(kube: Kube, namespace: str, job: str) -> str | None:
    for pod in kube.select("Pod", namespace, {JOB_NAME_LABEL: job}):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None
