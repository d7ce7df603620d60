"""Promotion inside a ModelDeployment reconcile: the annotation (manual) and auto mode.

A decision is recorded in ``status.promotion.lastDecision`` and posted as an Event only when it
differs from the last one, so a challenger that keeps waiting does not flood the Event log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from driftline.api.v1alpha1 import ModelDeploymentSpec, PromotionDecision
from driftline.api.v1alpha1.status_types import PromotionOutcome
from driftline.registry_conventions import CHALLENGER
from driftline_operator import names, promoter
from driftline_operator.conditions import rfc3339
from driftline_operator.context import Context
from driftline_operator.decisions import decide_auto_promotion
from driftline_operator.mlflow_rest import Aliases
from driftline_operator.outcome import Event
from driftline_operator.specs import ModelDeploymentObject
from driftline_operator.traffic import MetricsUnavailableError


class PromotionFlow:
    """One reconcile's promotion step; mutates ``status`` (status.promotion) and ``events``."""

    def __init__(self, ctx: Context, status: dict[str, Any], events: list[Event]) -> None:
        """``status`` is the promotion status to update in place; ``events`` collects Events."""
        self._ctx = ctx
        self._status = status
        self._events = events

    def run(
        self,
        md: ModelDeploymentObject,
        annotations: dict[str, str],
        aliases: Aliases,
        ready_since: datetime | None,
    ) -> Aliases:
        """Promote when asked by annotation or when auto criteria hold; returns the aliases.

        Auto promotion's online health is the router's figures of the challenger over
        ``promotion.windowMinutes`` (``Context.traffic``), counted from ``ready_since`` at the
        earliest: the router labels figures by variant, and before the current version's pods
        were all available the challenger's figures were the previous version's. Without
        figures, or before the pods are available, the decision waits.
        """
        spec = md.spec
        promotion = spec.promotion
        if self.new_request(annotations):
            # A person asked: the offline rule is not re-checked (as `driftline promote --force`).
            return self.move(spec, aliases, force=True, why="requested by annotation")[0]
        auto = promotion.mode == "auto"
        if not auto or aliases.challenger is None or aliases.challenger == aliases.champion:
            return aliases
        metric = promotion.metric
        uri, name = spec.model.tracking_uri, spec.model.name
        champion_metric = self._ctx.mlflow.metric(uri, name, aliases.champion or "", metric)
        challenger_metric = self._ctx.mlflow.metric(uri, name, aliases.challenger, metric)
        if ready_since is None:
            why = "the challenger's pods are not available yet"
            self._record("Waiting", why, aliases, warn=False)
            return aliases
        now = self._ctx.now()
        since = max(ready_since, now - timedelta(minutes=promotion.window_minutes))
        try:
            seen = self._ctx.traffic.window(md.owner, since, now)
        except MetricsUnavailableError as exc:
            self._record("Waiting", str(exc), aliases, warn=False)
            return aliases
        health = seen.variant(CHALLENGER)
        decision, _ = decide_auto_promotion(promotion, champion_metric, challenger_metric, health)
        if not decision.act:
            self._record("Waiting", decision.reason, aliases, warn=False)
            return aliases
        return self.move(spec, aliases, force=False, why=decision.reason)[0]

    def new_request(self, annotations: dict[str, str]) -> bool:
        """Whether the promote annotation carries a value not acted on yet; records it handled.

        The handled value lives in status: metadata stays as Git has it.
        """
        request = annotations.get(names.PROMOTE_ANNOTATION)
        manual = request is not None and request.lower() not in ("", "false")
        if not manual or request == self._status.get("handledRequest"):
            return False
        self._status["handledRequest"] = request
        return True

    def move(
        self, spec: ModelDeploymentSpec, aliases: Aliases, *, force: bool, why: str
    ) -> tuple[Aliases, str | None]:
        """Promote the challenger (``force``: without the offline rule), recorded in status.

        Returns the aliases after the attempt and, when the registry refused, why.
        Raises MlflowUnavailableError when MLflow cannot be reached.
        """
        if aliases.challenger is None:
            self._record("Rejected", "no challenger to promote", aliases)
            return aliases, "no challenger to promote"
        try:
            moved = promoter.promote(
                spec.model.tracking_uri,
                spec.model.name,
                aliases.challenger,
                spec.promotion,
                force=force,
                timeout=self._ctx.settings.promote_timeout_seconds,
            )
        except promoter.PromotionRefusedError as exc:
            self._record("Failed", str(exc), aliases)
            return aliases, str(exc)
        # The comparison (both scores, and the paired interval) goes to status and the Event.
        self._record("Promoted", f"{why}; {moved.comparison}" if moved.comparison else why,
                     aliases, warn=False)  # fmt: skip
        return Aliases(moved.champion, None), None

    def _record(
        self, outcome: PromotionOutcome, reason: str, aliases: Aliases, *, warn: bool = True
    ) -> None:
        last = self._status.get("lastDecision") or {}
        if (last.get("outcome"), last.get("reason"), last.get("toVersion")) == (
            outcome,
            reason[:500],
            aliases.challenger,
        ):
            return
        self._status["lastDecision"] = PromotionDecision(
            time=rfc3339(self._ctx.now()),
            outcome=outcome,
            reason=reason[:500],
            from_version=aliases.champion,
            to_version=aliases.challenger,
        ).model_dump(by_alias=True)
        kind = "Warning" if warn else "Normal"
        self._events.append((kind, f"Promotion{outcome}", f"{aliases.challenger}: {reason}"[:1000]))
