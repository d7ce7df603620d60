"""``driftline operator``: run the Kubernetes operator (kopf) in the foreground."""

from __future__ import annotations

import argparse

from driftline_cli.settings import CliSettings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``operator``; everything else comes from DRIFTLINE_* settings."""
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: the whole cluster)",
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Load the operator's settings once and run until stopped."""
    from driftline_operator.main import run as run_operator
    from driftline_operator.settings import OperatorSettings

    operator_settings = OperatorSettings()
    if args.namespace:
        operator_settings = operator_settings.model_copy(update={"namespaces": args.namespace})
    run_operator(operator_settings)
    return 0
