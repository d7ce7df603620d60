"""``driftline``: subcommands, argument parsing and the mapping of errors to exit codes.

Each subcommand's module is imported only when it runs, so an image that lacks another image's
dependencies still runs its own commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from driftline.exit_codes import INTERRUPTED, UNEXPECTED, USAGE
from driftline_cli.output import fail

# Subcommand -> module defining ``add_arguments(parser)`` and ``run(args, settings) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": (
        "driftline_cli.train_cmd",
        "train a model on UCI Adult (or a file), log and register it",
    ),
    "register": ("driftline_cli.registry_cmd", "register a training run's model as a new version"),
    "promote": ("driftline_cli.registry_cmd", "move champion to the challenger (or a version)"),
    "rollback": ("driftline_cli.registry_cmd", "move champion back to the previous champion"),
    "models": ("driftline_cli.registry_cmd", "list a model's versions and aliases"),
    "serve": ("driftline_cli.serve_cmd", "serve one model version over HTTP (FastAPI + ONNX)"),
    "router": ("driftline_cli.serve_cmd", "route requests to champion/challenger by request id"),
    "drift-check": (
        "driftline_cli.drift_cmd",
        "compare a log window (or a file) with a baseline; write the drift report",
    ),
    "retrain-if-drifted": (
        "driftline_cli.drift_cmd",
        "run the live drift check and, on drift, train and register a challenger",
    ),
    "feedback": (
        "driftline_cli.performance_cmd",
        "load true labels of served requests (CSV/Parquet) into the feedback table",
    ),
    "performance-check": (
        "driftline_cli.performance_cmd",
        "realised and estimated performance per version and variant over a window",
    ),
    "operator": ("driftline_cli.operator_cmd", "run the Kubernetes operator (kopf)"),
    "abort": ("driftline_cli.rollout_cmd", "abort a ModelDeployment's rollout (split to 0)"),
    "retry": ("driftline_cli.rollout_cmd", "restart an aborted rollout from its first step"),
    "status": ("driftline_cli.rollout_cmd", "show a ModelDeployment's rollout and its gates"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse with the CLI's error style: one line naming the command, exit 2 (no usage)."""

    def error(self, message: str) -> NoReturn:
        """Print ``driftline: error: <command>: <message>`` and exit with USAGE."""
        command = self.prog.removeprefix("driftline").strip()
        where = f"{command}: " if command else ""
        hint = f" (driftline {command} --help)" if command else " (driftline --help)"
        fail(f"{where}{message}{hint}", USAGE)
        sys.exit(USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand's arguments; errors are one line (exit 2)."""
    parser = OneLineParser(
        prog="driftline",
        description="Driftline: deploy, watch for drift, retrain and promote tabular models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in COMMANDS.items():
        command = sub.add_parser(name, help=summary, description=summary)
        command.add_argument(
            "--tracking-uri", help="MLflow server (default: MLFLOW_TRACKING_URI or embedded store)"
        )
        command.add_argument(
            "--json", action="store_true", help="print one JSON object on the last line of stdout"
        )
        module = importlib.import_module(module_name)
        module.add_arguments(name, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; exit codes: 0 ok, 2 usage, others from the error taxonomy."""
    from driftline_cli.settings import CliSettings

    args = build_parser().parse_args(argv)
    # MLflow's INFO lines (database migrations, run links) drown the command's own output;
    # MLflow reads this variable when it configures its loggers on import.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    try:
        settings = CliSettings()
    except ValueError as exc:
        return fail(f"settings: {_first_line(exc)}", USAGE)
    if args.tracking_uri:
        settings = settings.model_copy(update={"tracking_uri": args.tracking_uri})
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args, settings))
    except KeyboardInterrupt:
        return fail("interrupted", INTERRUPTED)
    except Exception as exc:
        # The last rung of the taxonomy: whatever a command did not foresee is still one line.
        if settings.debug:
            traceback.print_exc()
        return fail(
            f"unexpected {type(exc).__name__}: {_first_line(exc)}"
            " (DRIFTLINE_DEBUG=1 prints the traceback)",
            UNEXPECTED,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


if __name__ == "__main__":
    sys.exit(main())
