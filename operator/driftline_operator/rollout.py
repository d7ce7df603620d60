"""The step-wise rollout of a challenger as a pure state machine (``spec.rollout``).

The canary-with-steps model of Argo Rollouts and Flagger, on model versions: a new challenger
version starts at step 0; each step holds its challenger share for its pause while analyses
run every ``analysis.interval``; a step whose pause is over and whose latest analysis passed
advances; the last step ends in promotion (``promotion.mode: auto``) or waits for a person.
A step without a pause waits for the ``driftline.dev/promote`` annotation. ``failureLimit``
failed analyses in a row abort: the share goes to 0 and the version is tagged rejected in
MLflow, so it is never rolled out again until ``driftline retry``.
Source: https://argoproj.github.io/argo-rollouts/features/canary/ (steps, pause, abort).

``advance`` takes what the reconcile read (status, aliases, annotations, a fresh analysis, the
clock) and returns the next status with the Events and MLflow actions to carry out, so every
transition is a unit test. Everything lives in status and MLflow tags; spec is never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from driftline.api.v1alpha1 import AnalysisResult, Rollout, RolloutStatus
from driftline_operator.analysis import failed_summary
from driftline_operator.conditions import parse_rfc3339, rfc3339
from driftline_operator.outcome import Event

ACTIVE = frozenset({"Progressing", "Analysing", "Paused"})


@dataclass(frozen=True)
class Requests:
    """What people asked through annotations: raw values, compared with the handled ones.

    ``promote`` is True when a new ``driftline.dev/promote`` value arrived (the flow keeps
    its handled value in status.promotion, as without steps).
    """

    abort: str | None = None
    retry: str | None = None
    promote: bool = False


@dataclass(frozen=True)
class Transition:
    """The next rollout status and what to do about it."""

    status: RolloutStatus | None
    events: list[Event] = field(default_factory=list)
    reject: str | None = None  # tag the version rejected in MLflow, with this reason
    clear_rejection: bool = False  # remove that tag (a retry)
    promote: bool = False  # move the champion alias to the version now
    force: bool = False  # ... without the offline rule (a person asked)
    used_promote: bool = False  # the promote annotation's new value moved the rollout on


def challenger_percent(
    status: RolloutStatus | None, version: str | None, ready: bool
) -> int | None:
    """The share the rollout applies to ``version`` now; None when no rollout governs it.

    0 while the challenger's pods are not available (``ready`` False): the Deployment may still
    run the previous version's pods, which must not get the new version's share.
    """
    if status is None or version is None or status.version != version:
        return None
    return status.percent if ready else 0


def analysis_due(
    rollout: Rollout,
    status: RolloutStatus | None,
    version: str | None,
    interval: float,
    now: datetime,
) -> bool:
    """Whether the current step of an active rollout of ``version`` needs an analysis now.

    It does when none ran in this step yet, the last one is ``interval`` seconds old, or the
    step's pause is over and the last one ran before its end (a step ends on a fresh verdict).
    """
    if status is None or status.version != version or status.phase not in ACTIVE:
        return False
    last = status.last_analysis
    if last is None or last.time is None or not _in_step(status, last):
        return True
    ran = parse_rfc3339(last.time)
    end = _pause_end(rollout, status)
    if end is not None and ran < end <= now:
        return True
    return (now - ran).total_seconds() >= interval


def advance(
    rollout: Rollout,
    *,
    auto: bool,
    status: RolloutStatus | None,
    challenger: str | None,
    rejected: str | None,
    requests: Requests,
    analysis: AnalysisResult | None,
    now: datetime,
    challenger_ready: bool = True,
) -> Transition:
    """The next state of the rollout of ``challenger`` (the alias; None when unset).

    ``rejected`` is the reason the version is tagged rejected in MLflow, if it is;
    ``analysis`` a fresh analysis of the current step, or None when none was due;
    ``challenger_ready`` whether the challenger's pods are available. Until they are, a step's
    clock does not run: a challenger still starting would fail its analysis on connections
    refused (as Argo Rollouts waits for the canary ReplicaSet before setting a weight).
    """
    if challenger is None:
        # A promoted rollout stays on view; an aborted one goes with its challenger alias.
        if status is None or status.phase == "Promoted":
            return Transition(status)
        if status.phase not in ACTIVE:
            return Transition(None)
        ended = f"the challenger alias was removed; rollout of version {status.version} ended"
        return Transition(None, [("Normal", "RolloutEnded", ended)])
    if status is None or status.version != challenger:
        if rejected is not None:
            held = RolloutStatus(
                version=challenger,
                phase="Aborted",
                percent=0,
                step=0,
                steps=len(rollout.steps),
                position=f"0/{len(rollout.steps)}",
                plan=plan_of(rollout),
                failures=0,
                message=f"version {challenger} is tagged rejected: {rejected}"[:500],
                handled_abort=requests.abort,
                handled_retry=requests.retry,
            )
            return Transition(held, [("Warning", "RolloutRejected", held.message or "")])
        return _start(rollout, challenger, requests, now, "RolloutStarted")
    if requests.retry is not None and requests.retry != status.handled_retry:
        if status.phase == "Aborted":
            restarted = _start(rollout, challenger, requests, now, "RolloutRetried")
            return Transition(restarted.status, restarted.events, clear_rejection=True)
        status = status.model_copy(update={"handled_retry": requests.retry})
    if status.phase not in ACTIVE:
        return Transition(status.model_copy(update={"handled_abort": requests.abort}))
    if requests.abort is not None and requests.abort != status.handled_abort:
        status = status.model_copy(update={"handled_abort": requests.abort})
        return abort(status, "aborted on request (driftline.dev/abort)")
    if status.plan != plan_of(rollout):
        # spec.rollout.steps changed under a running rollout: its position means nothing now.
        return _start(rollout, challenger, requests, now, "RolloutRestarted")
    if rejected is not None:
        return abort(status, f"version {challenger} was tagged rejected: {rejected}", tag=False)
    if not challenger_ready and not requests.promote:
        waiting = f"step {status.position}: waiting for version {challenger}'s pods"
        clock = {"phase": "Progressing", "step_started_at": rfc3339(now), "message": waiting}
        return Transition(status.model_copy(update=clock))
    events: list[Event] = []
    if analysis is not None:
        status, failed = _record(rollout, status, analysis)
        if failed is not None:
            return failed
        if analysis.verdict == "Failed":
            events.append(("Warning", "AnalysisFailed", status.message or ""))
            return Transition(status, events)
    return _step_end(rollout, auto, status, requests.promote, now)


def plan_of(rollout: Rollout) -> str:
    """The steps as ``share@pause`` (``-`` for a step that waits for a person), comma-joined."""
    return ",".join(f"{s.challenger_percent}@{s.pause or '-'}" for s in rollout.steps)


def _start(
    rollout: Rollout, version: str, requests: Requests, now: datetime, reason: str
) -> Transition:
    # The annotations' values at the start are handled: an old abort does not hit a new rollout.
    status = RolloutStatus(
        version=version,
        phase="Progressing",
        step=0,
        steps=len(rollout.steps),
        position=f"1/{len(rollout.steps)}",
        plan=plan_of(rollout),
        percent=rollout.steps[0].challenger_percent,
        step_started_at=rfc3339(now),
        failures=0,
        message=f"step 1/{len(rollout.steps)}: {rollout.steps[0].challenger_percent}% to"
        f" version {version}",
        handled_abort=requests.abort,
        handled_retry=requests.retry,
    )
    return Transition(status, [("Normal", reason, status.message or "")])


def abort(status: RolloutStatus, why: str, *, tag: bool = True) -> Transition:
    """The rollout aborted for ``why``: share 0, a Warning, and the version to tag rejected.

    ``tag`` False: the version is tagged already.
    """
    message = f"rollout of version {status.version} aborted at step {status.position}: {why}"
    aborted = status.model_copy(
        update={"phase": "Aborted", "percent": 0, "message": message[:1000]}
    )
    return Transition(
        aborted, [("Warning", "RolloutAborted", message[:1000])], reject=why if tag else None
    )


def _record(
    rollout: Rollout, status: RolloutStatus, analysis: AnalysisResult
) -> tuple[RolloutStatus, Transition | None]:
    """The status with ``analysis`` recorded, and the abort when it is the last failure."""
    failures = status.failures or 0
    if analysis.verdict == "Failed":
        failures += 1
    elif analysis.verdict == "Passed":
        failures = 0
    status = status.model_copy(update={"last_analysis": analysis, "failures": failures})
    if analysis.verdict != "Failed":
        return status, None
    summary = failed_summary(analysis)
    if failures >= rollout.failure_limit:
        return status, abort(
            status,
            f"analysis failed {failures} time(s) in a row (failureLimit"
            f" {rollout.failure_limit}): {summary}",
        )
    message = f"analysis failed ({failures}/{rollout.failure_limit}): {summary}"
    return status.model_copy(update={"phase": "Analysing", "message": message[:1000]}), None


def _step_end(
    rollout: Rollout, auto: bool, status: RolloutStatus, promote: bool, now: datetime
) -> Transition:
    """Advance, promote, pause or keep analysing, by the step's pause and latest analysis."""
    step = rollout.steps[status.step or 0]
    last = status.last_analysis
    passed = last is not None and _in_step(status, last) and last.verdict == "Passed"
    where = f"step {status.position}: {status.percent}%"
    if promote:
        # As `kubectl argo rollouts promote`: a person's go-ahead ends the step, pause or not.
        return _next(rollout, auto, status, now, asked=True)
    pause = step.pause_period()
    end = _pause_end(rollout, status)
    if end is not None and last is not None and last.time is not None:
        # Only a verdict on the whole pause ends the step, not one from its first seconds.
        passed = passed and parse_rfc3339(last.time) >= end
    if pause is None:
        if passed:
            return hold(
                status, "Paused", f"{where}, analysis passed; waiting for driftline.dev/promote"
            )
        return hold(
            status, "Analysing", f"{where}, analysing; then waits for driftline.dev/promote"
        )
    elapsed = now - parse_rfc3339(status.step_started_at or rfc3339(now))
    if elapsed < pause:
        left = int((pause - elapsed).total_seconds())
        return hold(status, "Analysing", f"{where}, {left}s of the pause left")
    if passed:
        return _next(rollout, auto, status, now, asked=False)
    if last is not None and last.verdict == "Passed":
        return hold(status, "Analysing", f"{where}, pause over; analysing the whole step")
    detail = "no analysis yet" if last is None or not _in_step(status, last) else _why(last)
    return hold(
        status,
        "Paused",
        f"{where}, pause over but analysis inconclusive ({detail}); holding until it passes",
    )


def _next(
    rollout: Rollout, auto: bool, status: RolloutStatus, now: datetime, *, asked: bool
) -> Transition:
    index = (status.step or 0) + 1
    if index < len(rollout.steps):
        percent = rollout.steps[index].challenger_percent
        position = f"{index + 1}/{len(rollout.steps)}"
        message = f"step {position}: {percent}% to version {status.version}"
        moved = status.model_copy(
            update={
                "phase": "Progressing",
                "step": index,
                "position": position,
                "percent": percent,
                "step_started_at": rfc3339(now),
                "failures": 0,
                "message": message,
            }
        )
        return Transition(moved, [("Normal", "RolloutStepAdvanced", message)], used_promote=asked)
    if auto and not asked and status.promotion_refused:
        return hold(status, "Paused", f"promotion refused: {status.promotion_refused}")
    if auto or asked:
        why = "requested by annotation" if asked else "every step passed"
        done = status.model_copy(update={"message": f"promoting version {status.version}: {why}"})
        return Transition(done, promote=True, force=asked, used_promote=asked)
    return hold(
        status,
        "Paused",
        f"every step passed; version {status.version} waits for driftline.dev/promote",
    )


def hold(status: RolloutStatus, phase: str, message: str) -> Transition:
    """The rollout stays at its step in ``phase`` (an Event when it becomes Paused)."""
    events: list[Event] = []
    if phase == "Paused" and status.phase != "Paused":
        events.append(("Normal", "RolloutPaused", message))
    return Transition(status.model_copy(update={"phase": phase, "message": message}), events)


def _pause_end(rollout: Rollout, status: RolloutStatus) -> datetime | None:
    """When the current step's pause ends; None for a step that waits for a person."""
    pause = rollout.steps[min(status.step or 0, len(rollout.steps) - 1)].pause_period()
    if pause is None or status.step_started_at is None:
        return None
    return parse_rfc3339(status.step_started_at) + pause


def _in_step(status: RolloutStatus, analysis: AnalysisResult) -> bool:
    """Whether ``analysis`` ran after the current step started.

    RFC 3339 in UTC sorts as text; one in the step's first second is not counted, as it may be
    the previous step's.
    """
    return (analysis.time or "") > (status.step_started_at or "")


def _why(analysis: AnalysisResult) -> str:
    found = [g.message or g.name for g in analysis.gates or [] if g.verdict != "Passed"]
    return "; ".join(found)[:300] or str(analysis.verdict)
