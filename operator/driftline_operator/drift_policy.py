"""Reconciling one DriftPolicy: own the CronJob, read finished checks, retrain on a breach.

A breach is drift, or realised performance below the policy's limit (``spec.performance``);
both share the cooldown and the single training Job, and ``status.lastRetrain.cause`` says
which fired.

Runs from the wiring module's handlers and timer, one call at a time per policy (kopf
serialises them), so the read-decide-create sequence cannot race itself. The training Job's
name is derived from the drift Job that caused it, so even a crash between creating it and
writing status cannot produce a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from driftline.api.v1alpha1 import (
    LastCheck,
    LastPerformance,
    LastRetrain,
    ModelDeploymentSpec,
)
from driftline.job_contracts import (
    ContractError,
    DriftCheckSummary,
    TrainingResult,
    VariantPerformance,
    parse_message,
)
from driftline_operator import names, specs
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
from driftline_operator.decisions import breach_cause, decide_retrain
from driftline_operator.kube import Kube
from driftline_operator.outcome import Event, Outcome
from driftline_operator.settings import OperatorSettings

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Status strings are cut to this length: a runaway reason must not bloat the object.
MAX_REASON = 300
TOP_FEATURES = 10


class ModelDeploymentMissingError(Exception):
    """The policy names a ModelDeployment that does not exist (yet)."""


def reconcile_policy(
    kube: Kube, body: dict[str, Any], settings: OperatorSettings, now: datetime
) -> Outcome:
    """Converge the CronJob, then account for finished drift checks and training Jobs.

    Raises ``specs.InvalidSpecError`` for a spec the API types refuse and
    ModelDeploymentMissingError while the watched ModelDeployment does not exist.
    """
    dp = specs.drift_policy(body)
    namespace, policy = dp.owner.namespace, dp.owner.name
    ref = dp.spec.model_deployment_ref.name
    found = kube.get("ModelDeployment", namespace, ref)
    if found is None:
        raise ModelDeploymentMissingError(f"ModelDeployment {ref!r} not found in {namespace}")
    md_spec = specs.model_deployment(found).spec
    kube.apply(build_drift_cronjob(dp, md_spec, settings))
    status = body.get("status") or {}
    events: list[Event] = []
    updates = [Condition(READY, True, "Scheduled", f"drift check on {dp.spec.schedule!r}")]
    last_check = LastCheck.model_validate(status.get("lastCheck") or {})
    last_retrain = LastRetrain.model_validate(status.get("lastRetrain") or {})
    finished = _newest_finished(
        kube.select("Job", namespace, drift_labels(policy, names.COMPONENT_DRIFT))
    )
    scores: dict[str, float] = {}
    variants: list[VariantPerformance] | None = None
    if finished is not None and finished["metadata"]["name"] != last_check.job:
        last_check, scores, variants = _check_summary(kube, finished, now)
        if last_check.state == "Failed":
            events.append(("Warning", last_check.failure or "", last_check.reason or ""))
        else:
            # A Warning when it found drift: that is what makes it an alert (alerts.py).
            severity = "Warning" if last_check.drifted else "Normal"
            events.append((severity, "DriftChecked", f"{last_check.status}: {last_check.reason}"))
            judged = last_check.performance
            if judged is not None:
                kind = "Warning" if judged.status == "breach" else "Normal"
                events.append((kind, "PerformanceChecked", f"{judged.status}: {judged.reason}"))
            last_retrain = _maybe_retrain(
                kube, dp, md_spec, last_check, last_retrain, settings, now, events
            )
    last_retrain = _training_state(kube, namespace, last_retrain, events)
    updates.append(_degraded(last_check, last_retrain))
    return Outcome(
        {
            "observedGeneration": dp.generation,
            "lastCheck": _status_block(last_check),
            "lastRetrain": _status_block(last_retrain),
            "conditions": set_conditions(status.get("conditions"), updates, dp.generation, now),
        },
        events,
        scores,
        variants,
    )


def _degraded(check: LastCheck, retrain: LastRetrain) -> Condition:
    """Degraded when the last check or training failed, with the reason of the first failure."""
    if check.state == "Failed":
        return Condition(DEGRADED, True, check.failure or "DriftCheckFailed", check.reason or "")
    if retrain.state == "Failed":
        return Condition(DEGRADED, True, "TrainingFailed", f"training Job {retrain.job} failed")
    return Condition(DEGRADED, False, "AsExpected", "checks run as scheduled")


def _status_block(block: LastCheck | LastRetrain) -> dict[str, Any] | None:
    """A status block for the merge patch: unset fields as None, so stale values are deleted."""
    dumped = block.model_dump(by_alias=True)
    return dumped if any(value is not None for value in dumped.values()) else None


def _maybe_retrain(
    kube: Kube,
    dp: specs.DriftPolicyObject,
    md_spec: ModelDeploymentSpec,
    check: LastCheck,
    last_retrain: LastRetrain,
    settings: OperatorSettings,
    now: datetime,
    events: list[Event],
) -> LastRetrain:
    retrain = dp.spec.retrain
    namespace, policy = dp.owner.namespace, dp.owner.name
    running = any(
        not _finished_state(job)
        for job in kube.select("Job", namespace, drift_labels(policy, names.COMPONENT_TRAIN))
    )
    started = last_retrain.started_at
    decision = decide_retrain(
        check,
        enabled=retrain.enabled,
        cooldown=retrain.cooldown_period(),
        last_retrain_at=parse_rfc3339(started) if started else None,
        training_running=running,
        now=now,
    )
    cause = breach_cause(check)
    if not decision.act:
        if cause is not None:
            events.append(("Normal", "RetrainSkipped", decision.reason))
            return last_retrain.model_copy(update={"skipped_reason": decision.reason})
        return last_retrain
    trigger = check.job or ""
    job = build_training_job(dp, md_spec, trigger, settings)
    kube.create(job)
    name = job["metadata"]["name"]
    events.append(("Normal", "RetrainStarted", f"training Job {name}: {decision.reason}"))
    return LastRetrain(
        job=name, started_at=rfc3339(now), state="Running", trigger=trigger, cause=cause
    )


def _training_state(
    kube: Kube, namespace: str, last_retrain: LastRetrain, events: list[Event]
) -> LastRetrain:
    if last_retrain.state != "Running" or last_retrain.job is None:
        return last_retrain
    job = kube.get("Job", namespace, last_retrain.job)
    state = "Failed" if job is None else _finished_state(job)
    if state is None:
        return last_retrain
    kind = "Normal" if state == "Succeeded" else "Warning"
    done = last_retrain.model_copy(update={"state": state})
    message = f"training Job {last_retrain.job} {state.lower()}"
    if state == "Succeeded":
        # `driftline train --termination-log` leaves a TrainingResult.
        text = _termination_message(kube, namespace, last_retrain.job)
        try:
            version = parse_message(TrainingResult, text or "").version
        except ContractError as exc:
            events.append(("Warning", "TrainingResultUnreadable", str(exc)[:MAX_REASON]))
            version = None
        if version is not None:
            done = done.model_copy(update={"registered_version": version})
            message += f": registered version {version} as challenger"
    events.append((kind, f"Training{state}", message))
    return done


def _newest_finished(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [job for job in jobs if _finished_state(job) is not None]
    return max(done, key=lambda j: j["metadata"]["creationTimestamp"], default=None)


def _finished_state(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "Succeeded" if condition["type"] == "Complete" else "Failed"
    return None


def _check_summary(
    kube: Kube, job: dict[str, Any], now: datetime
) -> tuple[LastCheck, dict[str, float], list[VariantPerformance] | None]:
    """``status.lastCheck``, the per-feature PSI and each variant's performance.

    All come from the ``DriftCheckSummary`` in the Job's Pod's termination message (the
    performance only with a performance rule, else None); a message that does not parse makes
    the check Failed with the parse error as its reason.
    """
    name = job["metadata"]["name"]
    state = _finished_state(job)
    finished_at = (job.get("status") or {}).get("completionTime") or rfc3339(now)
    message = _termination_message(kube, job["metadata"]["namespace"], name)
    detail = (message or "no termination message")[:MAX_REASON]
    summary: DriftCheckSummary | None = None
    failure: Literal["DriftCheckFailed", "DriftSummaryUnreadable"] = "DriftCheckFailed"
    if state == "Succeeded":
        try:
            summary = parse_message(DriftCheckSummary, message or "")
        except ContractError as exc:
            detail, failure = str(exc), "DriftSummaryUnreadable"
    if summary is None:
        reason = f"drift check {name} failed: {detail}"[:MAX_REASON]
        failed = LastCheck(
            job=name, time=finished_at, state="Failed", failure=failure, reason=reason
        )
        return failed, {}, None
    scores = {f.name: f.psi for f in summary.features if f.psi is not None}
    drifted = [f.name for f in summary.features if f.drifted]
    judged = summary.performance
    performance = None
    if judged is not None:
        performance = LastPerformance(
            status=judged.status,
            reason=judged.reason[:MAX_REASON],
            metric=judged.metric,
            version=judged.version,
            value=judged.value,
            low=judged.low,
            high=judged.high,
            limit=judged.limit,
            labelled=judged.labelled,
        )
    return (
        LastCheck(
            job=name,
            time=finished_at,
            state="Succeeded",
            status=summary.status,
            drifted=bool(summary.drifted),
            reason=summary.reason[:MAX_REASON],
            samples=summary.samples.get("current", 0),
            max_psi=summary.max_psi,
            features=drifted[:TOP_FEATURES],
            performance=performance,
        ),
        scores,
        judged.variants if judged is not None else None,
    )


def _termination_message(kube: Kube, namespace: str, job: str) -> str | None:
    for pod in kube.select("Pod", namespace, {JOB_NAME_LABEL: job}):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None
