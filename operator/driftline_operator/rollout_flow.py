"""The step-wise rollout inside a ModelDeployment reconcile: gather, decide, act.

Reads what ``rollout.advance`` needs (the rejected tag in MLflow, the annotations, a fresh
analysis of the router's figures when one is due), then carries out its answer: tags or
untags the version in MLflow, and promotes through ``PromotionFlow.move``.
"""

from __future__ import annotations

from typing import Any

from driftline.api.v1alpha1 import AnalysisResult, RolloutStatus
from driftline.registry_conventions import REJECTED_TAG
from driftline_operator import analysis, names, rollout
from driftline_operator.conditions import parse_rfc3339, rfc3339
from driftline_operator.context import Context
from driftline_operator.mlflow_rest import Aliases
from driftline_operator.outcome import Event
from driftline_operator.promotion_flow import PromotionFlow
from driftline_operator.specs import ModelDeploymentObject
from driftline_operator.traffic import MetricsUnavailableError


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
        due = rollout.analysis_due(status, version, interval, now)
        if status is not None and challenger_ready and due:
            fresh = self._analyse(md, status)
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
        self._events += step.events
        if version is not None and step.reject is not None:
            ctx.mlflow.set_version_tag(uri, model, version, REJECTED_TAG, step.reject[:5000])
        if version is not None and step.clear_rejection:
            ctx.mlflow.delete_version_tag(uri, model, version, REJECTED_TAG)
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
        aborted = rollout.abort(step.status, f"promotion refused: {refused}")
        self._events += aborted.events
        if version is not None and aborted.reject is not None:
            ctx.mlflow.set_version_tag(uri, model, version, REJECTED_TAG, aborted.reject[:5000])
        return aliases, aborted.status

    def _analyse(self, md: ModelDeploymentObject, status: RolloutStatus) -> AnalysisResult | None:
        """The current step's analysis; None while the window is empty (baseline just taken)."""
        now = self._ctx.now()
        since = parse_rfc3339(status.step_started_at or rfc3339(now))
        try:
            window = self._ctx.traffic.window(md.owner, since, now)
        except MetricsUnavailableError as exc:
            return analysis.inconclusive(str(exc), rfc3339(now))
        if window.seconds <= 0:
            return None
        return analysis.analyse(md.spec.analysis, window, rfc3339(now))
