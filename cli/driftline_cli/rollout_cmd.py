"""``driftline abort|retry|status MD``: the step-wise rollout of a ModelDeployment by hand.

abort and retry set the annotations ``driftline.dev/abort`` and ``driftline.dev/retry`` to a
fresh value (the time); the operator acts on each new value once and records it in status, so
the spec stays as Git has it. status prints the rollout at a glance, like
``kubectl argo rollouts get rollout``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from driftline.exit_codes import KUBERNETES, USAGE
from driftline_cli.output import emit, fail
from driftline_cli.settings import CliSettings

ANNOTATIONS = {"abort": "driftline.dev/abort", "retry": "driftline.dev/retry"}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """The ModelDeployment and its namespace."""
    parser.add_argument("deployment", metavar="MD", help="the ModelDeployment's name")
    parser.add_argument("--namespace", "-n", help="its namespace (default: the context's)")


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Annotate (abort, retry) or print the rollout (status).

    Exit 9 when Kubernetes fails or the ModelDeployment is missing, 2 when the operator would
    ignore the request (no spec.rollout, nothing to abort, nothing aborted to retry).
    """
    from driftline_cli.deployment_ref import (
        annotate_deployment,
        deployment_events,
        read_deployment,
    )

    try:
        body = read_deployment(args.deployment, args.namespace)
        if args.command in ANNOTATIONS:
            refusal = refuse(args.command, body)
            if refusal is not None:
                return fail(f"{args.command} {args.deployment}: {refusal}", USAGE)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            annotate_deployment(args.deployment, args.namespace, ANNOTATIONS[args.command], stamp)
            result = {"deployment": args.deployment, "requested": args.command, "at": stamp}
            emit(result, args.json, f"{args.command} requested for {args.deployment} at {stamp}")
            return 0
        events = deployment_events(args.deployment, args.namespace)
    except ValueError as exc:
        return fail(str(exc), KUBERNETES)
    status = body.get("status") or {}
    result = {"status": status, "events": events}
    emit(result, args.json, describe(args.deployment, status, events))
    return 0


def refuse(command: str, body: dict[str, Any]) -> str | None:
    """Why the operator would ignore ``command`` on this ModelDeployment now; None if it acts.

    abort needs a rollout in progress; retry an aborted one. Both need ``spec.rollout``.
    """
    if not (body.get("spec") or {}).get("rollout"):
        return (
            "it has no spec.rollout (to take the challenger out, set traffic.challengerPercent: 0)"
        )
    phase = ((body.get("status") or {}).get("rollout") or {}).get("phase")
    if command == "abort" and phase not in ("Progressing", "Analysing", "Paused"):
        return f"no rollout in progress to abort (phase {phase or 'none'})"
    if command == "retry" and phase != "Aborted":
        return f"only an aborted rollout is retried (phase {phase or 'none'})"
    return None


def describe(name: str, status: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The rollout at a glance: versions, phase, step, split, gates, recent Events.

    Each gate shows its verdict, its measured value against its bound.
    """
    rollout = status.get("rollout") or {}
    champion = (status.get("champion") or {}).get("version") or "-"
    challenger = status.get("challenger") or {}
    lines = [
        f"Name:        {name}",
        f"Champion:    {champion}",
        f"Challenger:  {challenger.get('version') or '-'}"
        f" ({challenger.get('trafficPercent', 0)}% of requests)",
    ]
    recent = ["Events:"] + [
        f"  {e['time'][:19]}  {e['type']:<7} {e['reason']:<20} {e['message']}" for e in events
    ]
    if not rollout:
        lines.append("Rollout:     none (spec.rollout unset or no challenger)")
        return "\n".join([*lines, *recent])
    lines += [
        f"Rollout:     {rollout.get('phase')} at step {rollout.get('position')}"
        f" ({rollout.get('percent')}%), version {rollout.get('version')}",
        f"Message:     {rollout.get('message') or ''}",
    ]
    analysis = rollout.get("lastAnalysis") or {}
    if analysis:
        lines.append(
            f"Analysis:    {analysis.get('verdict')} at {analysis.get('time')}"
            f" over {analysis.get('windowSeconds')} s"
        )
        for gate in analysis.get("gates") or []:
            lines.append(f"  {gate['verdict']:<13} {gate['name']:<22} {gate.get('message') or ''}")
    return "\n".join([*lines, *recent])
