"""Reconciling one ModelDeployment: resolve aliases, promote when asked, converge the children.

Called by the wiring module for create, update, resume and the timer. It never writes ``spec``;
it returns the status to write and the Events to post, and raises the error taxonomy of
``mlflow_rest``/``kube`` for the wiring to map onto kopf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from driftline.api.v1alpha1 import ChallengerStatus, RolloutStatus, VariantStatus
from driftline_operator import names, rollout, specs
from driftline_operator.builders.children import desired_children
from driftline_operator.conditions import (
    DEGRADED,
    PROGRESSING,
    READY,
    Condition,
    parse_rfc3339,
    rfc3339,
    set_conditions,
)
from driftline_operator.context import Context
from driftline_operator.kube import Kube
from driftline_operator.mlflow_rest import Aliases
from driftline_operator.outcome import Event, Outcome
from driftline_operator.promotion_flow import PromotionFlow
from driftline_operator.rollout_flow import RolloutFlow
from driftline_operator.specs import ModelDeploymentObject


class NoChampionError(Exception):
    """The model has no ``champion`` alias yet: nothing to serve."""


def reconcile(ctx: Context, body: dict[str, Any], *, converge: bool) -> Outcome:
    """Resolve, promote, converge (or only refresh readiness when nothing moved).

    Raises ``specs.InvalidSpecError`` for a spec the API types refuse, NoChampionError while
    the model has no champion, and the MLflow and API errors of ``mlflow_rest`` and ``kube``.
    """
    md = specs.model_deployment(body)
    status = body.get("status") or {}
    model = md.spec.model
    aliases = ctx.mlflow.aliases(model.tracking_uri, model.name)
    events: list[Event] = []
    promotion_status = dict(status.get("promotion") or {})
    annotations = body["metadata"].get("annotations") or {}
    promotion = PromotionFlow(ctx, promotion_status, events)
    rollout_status = None
    if md.spec.rollout is None:
        aliases = promotion.run(md, annotations, aliases, _ready_since(status, aliases))
    else:
        flow = RolloutFlow(ctx, promotion, events)
        aliases, rollout_status = flow.run(
            md, annotations, aliases, status.get("rollout"), _challenger_ready(status, aliases)
        )
    if aliases.champion is None:
        raise NoChampionError(f"model {model.name!r} has no champion alias")
    before = (
        (status.get("champion") or {}).get("version"),
        (status.get("challenger") or {}).get("version"),
    )
    moved = before != (aliases.champion, aliases.challenger)
    challenger_ready = _challenger_ready(status, aliases)
    percent = rollout.challenger_percent(rollout_status, aliases.challenger, challenger_ready)
    if percent is None:
        percent = md.spec.traffic.challenger_percent
    if aliases.challenger is None:
        percent = 0
    resplit = percent != (status.get("challenger") or {}).get("trafficPercent")
    generation = md.generation
    if converge or moved or resplit or status.get("observedGeneration") != generation:
        deployments = _converge(ctx, md, aliases, percent)
    else:
        deployments = _read_deployments(ctx.kube, md, aliases)
    events += _alias_events(before, aliases)
    ready = {variant: _available(d) for variant, d in deployments.items()}
    all_ready = all(ready.values())
    conditions = set_conditions(
        status.get("conditions"),
        [
            Condition(
                READY,
                all_ready,
                "AllAvailable" if all_ready else "RolloutInProgress",
                _ready_message(ready),
            ),
            _progressing(all_ready, aliases, rollout_status),
            Condition(DEGRADED, False, "ReconcileSucceeded", "MLflow and the API server answered"),
        ],
        generation,
        ctx.now(),
    )
    challenger = ChallengerStatus(version=aliases.challenger, traffic_percent=0)
    if aliases.challenger is not None:
        available = ready.get(names.CHALLENGER, False)
        known = _ready_since(status, aliases)
        since = rfc3339(known or ctx.now()) if known or available else None
        challenger = ChallengerStatus(
            version=aliases.challenger,
            ready=available,
            traffic_percent=percent,
            ready_since=since,
        )
    champion = VariantStatus(version=aliases.champion, ready=ready[names.CHAMPION])
    return Outcome(
        {
            "observedGeneration": generation,
            # Unset fields dump as None: the merge patch deletes what a previous run wrote.
            "champion": champion.model_dump(by_alias=True),
            "challenger": challenger.model_dump(by_alias=True),
            "promotion": promotion_status or None,
            "rollout": rollout_status.model_dump(by_alias=True) if rollout_status else None,
            "conditions": conditions,
        },
        events,
    )


def _challenger_ready(status: dict[str, Any], aliases: Aliases) -> bool:
    """The challenger's pods were available at the last look, at the current version."""
    seen = status.get("challenger") or {}
    return bool(seen.get("ready")) and seen.get("version") == aliases.challenger


def _ready_since(status: dict[str, Any], aliases: Aliases) -> datetime | None:
    """When the current challenger version's pods were first all available, if they were."""
    seen = status.get("challenger") or {}
    since = seen.get("readySince")
    if since is None or seen.get("version") != aliases.challenger:
        return None
    return parse_rfc3339(since)


def _progressing(
    all_ready: bool, aliases: Aliases, rollout_status: RolloutStatus | None
) -> Condition:
    """Progressing: Deployments rolling out, then the step-wise rollout's phase and message."""
    versions = f"champion {aliases.champion}, challenger {aliases.challenger or '-'}"
    current = rollout_status if rollout_status and aliases.challenger else None
    if current is not None and current.version != aliases.challenger:
        current = None
    if current is not None and current.phase == "Aborted":
        # Said first: whatever the pods do, the challenger is out.
        return Condition(PROGRESSING, False, "RolloutAborted", current.message or versions)
    if not all_ready:
        return Condition(PROGRESSING, True, "RollingOut", versions)
    if current is None:
        return Condition(PROGRESSING, False, "RolloutComplete", versions)
    return Condition(PROGRESSING, True, f"Rollout{current.phase}", current.message or versions)


def _converge(
    ctx: Context, md: ModelDeploymentObject, aliases: Aliases, percent: int
) -> dict[str, dict[str, Any]]:
    """Apply every desired child, delete the ones that must not exist; returns Deployments."""
    desired = desired_children(
        md, aliases.champion or "", aliases.challenger, percent, ctx.settings
    )
    applied: dict[str, dict[str, Any]] = {}
    for obj in desired.objects:
        name = obj["metadata"]["name"]
        result = ctx.kube.apply(obj, drop_replicas=name in desired.hpa_owned)
        if obj["kind"] == "Deployment":
            applied[result["metadata"]["name"]] = result
    for kind, name in desired.absent:
        ctx.kube.delete(kind, md.owner.namespace, name)
    return _by_variant(md.owner.name, applied)


def _read_deployments(
    kube: Kube, md: ModelDeploymentObject, aliases: Aliases
) -> dict[str, dict[str, Any]]:
    md_name, namespace = md.owner.name, md.owner.namespace
    wanted = [names.variant_name(md_name, names.CHAMPION), names.router_name(md_name)]
    if aliases.challenger is not None:
        wanted.append(names.variant_name(md_name, names.CHALLENGER))
    found = {name: kube.get("Deployment", namespace, name) or {} for name in wanted}
    return _by_variant(md_name, found)


def _by_variant(md_name: str, deployments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = {names.variant_name(md_name, v): v for v in names.VARIANTS}
    keys[names.router_name(md_name)] = "router"
    return {keys[name]: d for name, d in deployments.items() if name in keys}


def _available(deployment: dict[str, Any]) -> bool:
    """All desired replicas updated and available, as observed by the deployment controller."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation", 0)
    return bool(
        status.get("observedGeneration", -1) >= generation
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
    )


def _ready_message(ready: dict[str, bool]) -> str:
    waiting = sorted(name for name, ok in ready.items() if not ok)
    return "waiting for " + ", ".join(waiting) if waiting else "every variant is available"


def _alias_events(before: tuple[str | None, str | None], aliases: Aliases) -> list[Event]:
    champion_before, challenger_before = before
    events: list[Event] = []
    if champion_before is not None and champion_before != aliases.champion:
        rolled_back = _as_int(aliases.champion) < _as_int(champion_before)
        events.append(
            (
                "Normal",
                "RolledBack" if rolled_back else "ChampionMoved",
                f"champion {champion_before} -> {aliases.champion}; rolling out",
            )
        )
    if challenger_before != aliases.challenger and aliases.challenger is not None:
        events.append(
            (
                "Normal",
                "ChallengerMoved",
                f"challenger {challenger_before or '-'} -> {aliases.challenger}",
            )
        )
    return events


def _as_int(version: str | None) -> int:
    try:
        return int(version or 0)
    except ValueError:
        return 0
