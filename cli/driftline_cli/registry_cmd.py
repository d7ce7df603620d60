"""``driftline register | promote | rollback | models``: alias moves in the MLflow registry."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from driftline.exit_codes import KUBERNETES, MLFLOW_UNAVAILABLE, REGISTRY
from driftline.registry_conventions import VARIANTS
from driftline_cli.output import emit, fail
from driftline_cli.settings import CliSettings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of the registry subcommands."""
    if name == "register":
        parser.add_argument("--run-id", required=True, help="training run whose model to register")
        parser.add_argument("--alias", choices=VARIANTS)
    parser.add_argument("model", nargs="?", help="registered model name (adult-income)")
    if name in ("promote", "rollback"):
        parser.add_argument(
            "--deployment", metavar="MD", help="act on the model a ModelDeployment serves"
        )
        parser.add_argument("--namespace", "-n", help="namespace of --deployment")
    if name == "promote":
        parser.add_argument("--version", help="promote this version instead of the challenger")
        parser.add_argument("--metric", default="roc_auc", help="comparison metric (roc_auc)")
        parser.add_argument(
            "--min-delta", type=float, default=0.005, help="required improvement (0.005)"
        )
        parser.add_argument(
            "--force", action="store_true", help="promote even if the challenger does not win"
        )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Run one registry subcommand; returns the exit code."""
    from mlflow.exceptions import MlflowException

    from driftline.mlflow_binding import mlflow_error_line, open_registry
    from driftline.registry import RegistryError

    name = args.model or settings.model_name
    if getattr(args, "deployment", None):
        from driftline_cli.deployment_ref import model_of_deployment

        try:
            name, uri = model_of_deployment(args.deployment, args.namespace)
        except ValueError as exc:
            return fail(str(exc), KUBERNETES)
        if not args.tracking_uri:
            settings = settings.model_copy(update={"tracking_uri": uri})
    target, registry = open_registry(settings)
    try:
        result, text = HANDLERS[args.command](registry, name, args)
    except (RegistryError, ValueError) as exc:
        return fail(str(exc), REGISTRY)
    except MlflowException as exc:
        return fail(mlflow_error_line(exc, target.uri), MLFLOW_UNAVAILABLE)
    emit(result, args.json, text)
    return 0


def _register(registry: Any, name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    version = registry.register_run(name, args.run_id)
    alias = registry.apply_alias(name, version, args.alias)
    result = {"model_name": name, "version": version, "alias": alias}
    return result, f"registered {name} version {version}" + (f" as {alias}" if alias else "")


def _promote(registry: Any, name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from driftline.promotion import ComparisonRule

    rule = ComparisonRule(args.metric, args.min_delta)
    move = registry.promote(name, rule, version=args.version, force=args.force)
    text = f"{name}: champion {move.previous_champion or '-'} -> {move.champion}"
    if move.comparison is not None:
        text += f" ({move.comparison.describe()})"
    if move.note:
        text += f"; {move.note}"
    return asdict(move), text


def _rollback(registry: Any, name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    move = registry.rollback(name)
    return asdict(move), f"{name}: champion {move.previous_champion} -> {move.champion} (rollback)"


def _models(registry: Any, name: str, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from driftline.registry import TAG_ARCHIVED, TAG_ROLLED_BACK
    from driftline.registry_conventions import REJECTED_TAG

    versions = registry.versions(name)
    rows = [f"{'VERSION':<8} {'ALIASES':<22} {'STATE':<12} RUN"]
    states = {TAG_ROLLED_BACK: "rolled-back", TAG_ARCHIVED: "archived", REJECTED_TAG: "rejected"}
    for v in versions:
        state = next((word for tag, word in states.items() if tag in v.tags), "")
        rows.append(f"{v.version:<8} {','.join(v.aliases) or '-':<22} {state:<12} {v.run_id}")
    result = {"model_name": name, "versions": [asdict(v) for v in versions]}
    return result, "\n".join(rows)


HANDLERS = {
    "register": _register,
    "promote": _promote,
    "rollback": _rollback,
    "models": _models,
}
