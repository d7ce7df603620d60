"""``driftline feedback`` and ``driftline performance-check``: ground truth and what it says.

feedback loads a labels file (``request_id``, ``label``) into the feedback table beside the
inference log, the bulk path beside ``POST /feedback``. performance-check joins a window of
served predictions with their labels and prints realised performance per version and variant,
with 95% intervals, next to the figures estimated from the probabilities alone.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.exit_codes import DATA_INVALID, USAGE
from driftline_cli.output import emit, fail
from driftline_cli.settings import CliSettings

if TYPE_CHECKING:
    from driftline.performance import GroupPerformance
    from driftline_training.performance_check import PerformanceReport

# The realised figures printed, in order, with the estimated one beside each where CBPE has it.
SHOWN = (
    "roc_auc", "accuracy", "precision", "recall", "f1", "average_precision", "log_loss",
    "brier", "ece",
)  # fmt: skip
UNKNOWN_SHOWN = 5


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``feedback`` and ``performance-check``."""
    parser.add_argument("--model", help="registered model (default: DRIFTLINE_MODEL_NAME)")
    parser.add_argument(
        "--log-store", required=True, help="inference log store URL (sqlite:///..., postgresql://)"
    )
    if name == "feedback":
        parser.add_argument(
            "--file", type=Path, required=True, help="labels, CSV or Parquet, one row a request"
        )
        parser.add_argument("--id-column", default="request_id", help="(request_id)")
        parser.add_argument("--label-column", default="label", help="0 or 1 (label)")
        return
    parser.add_argument("--version", help="one model version (default: every version served)")
    parser.add_argument(
        "--lookback", default="1d", help="rows served within this long before now (1d)"
    )
    parser.add_argument(
        "--min-labels",
        type=int,
        default=200,
        help="fewer labels than this give 'insufficient labels' (200)",
    )
    parser.add_argument(
        "--replicates", type=int, default=200, help="bootstrap replicates of the intervals (200)"
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Load labels or check performance; exit 3/4 for a bad file, 8 for the store."""
    from driftline_training.errors import TrainingError

    model = args.model or settings.model_name
    try:
        if args.command == "feedback":
            return _feedback(args, model)
        return _performance(args, model)
    except TrainingError as exc:
        return fail(str(exc), exc.exit_code)


def _feedback(args: argparse.Namespace, model: str) -> int:
    from driftline_training.performance_check import load_labels, read_labels

    frame = read_labels(args.file, args.id_column, args.label_column)
    outcome = load_labels(frame, args.log_store, model)
    result = {
        "model": model,
        "rows": outcome.rows,
        "stored": outcome.stored,
        "repeated": outcome.repeated,
        "unknown": len(outcome.unknown),
        "unknown_ids": outcome.unknown[:UNKNOWN_SHOWN],
    }
    text = (
        f"{outcome.stored} of {outcome.rows} labels stored for {model}"
        f" ({outcome.repeated} repeated ids in the file)"
    )
    emit(result, args.json, text)
    if outcome.unknown:
        shown = ", ".join(outcome.unknown[:UNKNOWN_SHOWN])
        rest = "none was stored" if outcome.stored == 0 else "the other labels were stored"
        return fail(
            f"{len(outcome.unknown)} request id(s) of {args.file} were never served by {model}"
            f" (first in the file: {shown}); {rest}",
            DATA_INVALID,
        )
    return 0


def _performance(args: argparse.Namespace, model: str) -> int:
    from driftline.durations import parse_duration
    from driftline_training.performance_check import check_performance

    try:
        lookback = parse_duration(args.lookback).total_seconds()
    except ValueError as exc:
        return fail(f"--lookback: {exc}", USAGE)
    if args.min_labels < 1 or args.replicates < 1:
        return fail("--min-labels and --replicates must be at least 1", USAGE)
    until = time.time()
    report = check_performance(
        args.log_store,
        model,
        since=until - lookback,
        until=until,
        version=args.version,
        min_labels=args.min_labels,
        replicates=args.replicates,
    )
    emit(report.to_dict(), args.json, _text(report))
    return 0


def _text(report: PerformanceReport) -> str:
    since = datetime.fromtimestamp(report.since, UTC).strftime("%Y-%m-%d %H:%M:%S")
    until = datetime.fromtimestamp(report.until, UTC).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{report.model}: predictions served {since} .. {until} UTC ({report.log_store})"]
    if not report.groups:
        lines.append("no predictions were served in the window")
    for group in report.groups:
        lines.extend(_group_lines(group, report.min_labels))
    return "\n".join(lines)


def _group_lines(group: GroupPerformance, min_labels: int) -> list[str]:
    delay = group.label_delay_seconds
    lines = [
        "",
        f"version {group.version} {group.variant}: {group.served} served, {group.labelled}"
        f" labelled ({group.coverage:.1%}); label delay p50 {_seconds(delay['p50'])},"
        f" p90 {_seconds(delay['p90'])}, p99 {_seconds(delay['p99'])},"
        f" max {_seconds(delay['max'])}",
    ]
    if group.realised is None:
        lines.append(f"  insufficient labels: {group.labelled} of the {min_labels} needed")
    # CBPE: estimated from the probabilities, on the labelled rows and on all served rows.
    lines.append(
        f"  {'metric':<18} {'realised':>9} {'95% interval':>18}"
        f" {'CBPE labelled':>14} {'CBPE all':>9}"
    )
    for name in SHOWN:
        figure = group.realised.get(name) if group.realised else None
        value = _number(figure.value if figure else None)
        interval = (
            f"[{_number(figure.low)}, {_number(figure.high)}]"
            if figure and figure.value is not None
            else ""
        )
        lines.append(
            f"  {name:<18} {value:>9} {interval:>18}"
            f" {_number(group.estimated_labelled.get(name)):>14}"
            f" {_number(group.estimated.get(name)):>9}"
        )
    return lines


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"
