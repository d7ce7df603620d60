"""The step-wise rollout inside a ModelDeployment reconcile: gather, decide, act.

Reads what ``rollout.advance`` needs (the rejected tag in MLflow, the annotations, a fresh
analysis of the router's figures when one is due), then carries out its answer: tags or
untags the version in MLflow, and promotes through ``PromotionFlow.move``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from driftline.api.v1alpha1 import AnalysisResult, Gate, RolloutStatus
from driftline.registry_conventions import REJECTED_TAG
from driftline_operator import analysis, names, rollout
from driftline_operator.conditions import parse_rfc3339, rfc3339
from driftline_operator.context import Context
from driftline_operator.mlflow_rest import Aliases
from driftline_operator.outcome import Event
from driftline_operator.prediction_log import LogUnavailableError
from driftline_operator.prometheus_query import PrometheusQuery
from driftline_operator.promotion_flow import PromotionFlow
from driftline_operator.specs import ModelDeploymentObject
from driftline_operator.traffic import MetricsUnavailableError, TrafficSource


class RolloutFlow:
    """One reconcile's rollout step; appends to ``events``."""

    def __init__(self, ctx: Context, promotion: PromotionFlow, events: list[Event]) -> None:
        """``promotion`` moves the alias and keeps the promote annotation's handled value."""
        self._ctx = ctx
        self._promotion = promotion
        self._events = events

    def run(
        self,
        md: ModelDeploymentObject,
        annotations: dict[str, str],
        aliases: Aliases,
        previous: dict[str, Any] | None,
        challenger_ready: bool,
    ) -> tuple[Aliases, RolloutStatus | None]:
        """The aliases after this step (moved on promotion) and the rollout status to write.

        ``challenger_ready``: the challenger's pods were available at the last look.

        Raises the MLflow errors of ``mlflow_rest`` (the reconcile is retried).
        """
        spec, ctx = md.spec, self._ctx
        plan = spec.rollout
        if plan is None:
            raise ValueError("RolloutFlow runs for a spec with a rollout")
        model, uri = spec.model.name, spec.model.tracking_uri
        status = RolloutStatus.model_validate(previous) if previous else None
        version = aliases.challenger
        rejected = None
        if version is not None:
            rejected = ctx.mlflow.version_tag(uri, model, version, REJECTED_TAG)
        requests = rollout.Requests(
            abort=annotations.get(names.ABORT_ANNOTATION),
            retry=annotations.get(names.RETRY_ANNOTATION),
            promote=self._promotion.new_request(annotations),
        )
        now = ctx.now()
        interval = spec.analysis.interval_period().total_seconds()
        fresh = None
        due = rollout.analysis_due(plan, status, version, interval, now)
        if status is not None and challenger_ready and due:
            fresh = self._analyse(md, status, aliases.champion, now)
        step = rollout.advance(
            plan,
            auto=spec.promotion.mode == "auto",
            status=status,
            challenger=version,
            rejected=rejected,
            requests=requests,
            analysis=fresh,
            now=now,
            challenger_ready=challenger_ready,
        )
        self._carry_out(md, version, step)
        if requests.promote and not step.used_promote:
            phase = step.status.phase if step.status else "none"
            self._events.append(
                ("Warning", "PromoteIgnored", f"driftline.dev/promote ignored: rollout {phase}")
            )
        if not step.promote or step.status is None:
            return aliases, step.status
        moved, refused = self._promotion.move(
            spec, aliases, force=step.force, why=step.status.message or ""
        )
        if refused is None:
            done = step.status.model_copy(
                update={
                    "phase": "Promoted",
                    "percent": 100,
                    "message": f"version {version} promoted",
                }
            )
            self._events.append(("Normal", "RolloutPromoted", done.message or ""))
            return moved, done
        # Refused (the offline rule, a concurrent move, a crash): every step passed, so the
        # version is not rejected; it waits for a person (driftline.dev/promote forces it).
        refusal = step.status.model_copy(update={"promotion_refused": refused[:1000]})
        held = rollout.hold(refusal, "Paused", f"promotion refused: {refused}"[:1000])
        self._carry_out(md, version, held)
        return aliases, held.status

    def _carry_out(
        self, md: ModelDeploymentObject, version: str | None, step: rollout.Transition
    ) -> None:
        """Post the transition's Events; tag or untag the version in MLflow as it says."""
        self._events += step.events
        if version is None:
            return
        model, uri = md.spec.model.name, md.spec.model.tracking_uri
        if step.reject is not None:
            self._ctx.mlflow.set_version_tag(uri, model, version, REJECTED_TAG, step.reject[:5000])
        if step.clear_rejection:
            self._ctx.mlflow.delete_version_tag(uri, model, version, REJECTED_TAG)

    def _analyse(
        self,
        md: ModelDeploymentObject,
        status: RolloutStatus,
        champion: str | None,
        now: datetime,
    ) -> AnalysisResult | None:
        """The current step's analysis at ``now``; None while the window is empty.

        ``now`` is the reconcile's one clock reading: the verdict and the transition it drives
        share an instant. The window is empty just after its baseline scrape.
        """
        since = parse_rfc3339(status.step_started_at or rfc3339(now))
        try:
            window = self._source(md).window(md.owner, since, now)
        except MetricsUnavailableError as exc:
            behaviour = self._behaviour(md, status, champion, since, now)
            return analysis.inconclusive(str(exc), rfc3339(now), behaviour)
        if window.seconds <= 0:
            return None
        behaviour = self._behaviour(md, status, champion, since, now)
        return analysis.analyse(md.spec.analysis, window, rfc3339(now), behaviour)

    def _source(self, md: ModelDeploymentObject) -> TrafficSource:
        """The spec's Prometheus when it names one, else the operator's direct scrape."""
        prometheus = md.spec.analysis.prometheus
        if prometheus is None:
            return self._ctx.traffic
        timeout = self._ctx.settings.scrape_timeout_seconds
        return PrometheusQuery(prometheus.url, timeout, prometheus.selector)

    def _behaviour(
        self,
        md: ModelDeploymentObject,
        status: RolloutStatus,
        champion: str | None,
        since: datetime,
        now: datetime,
    ) -> list[Gate]:
        """The model-behaviour gates, when the operator reads the inference log the pods write.

        Pods log only when ``spec.logging.storeRef`` is set; the operator reads its own store
        (DRIFTLINE_HEALTH_LOG_STORE), which must be the same database.
        """
        log = self._ctx.predictions
        logging = md.spec.logging
        if log is None or logging is None or logging.store_ref is None:
            return []
        if champion is None or status.version is None:
            return []
        model = md.spec.model.name
        try:
            ours = log.predictions(model, status.version, since, now)
            theirs = log.predictions(model, champion, since, now)
        except LogUnavailableError as exc:
            shadowing = md.spec.traffic.shadow_percent > 0
            names = analysis.BEHAVIOUR_GATES + (analysis.SHADOW_GATES if shadowing else ())
            return analysis.unmeasured(names, str(exc))
        gates = analysis.behaviour_gates(md.spec.analysis, theirs, ours)
        if md.spec.traffic.shadow_percent > 0:
            gates += analysis.shadow_gates(md.spec.analysis, theirs, ours)
        return gates
