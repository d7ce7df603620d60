"""``driftline drift-check`` and ``driftline retrain-if-drifted``: arguments, exit codes, output.

drift-check compares two files, or a window of the inference log with a model version's
baseline (``driftline_training.drift_run`` does the work: report, MLflow run, summary) and
prints the summary. retrain-if-drifted runs the live check and, on drift, trains and registers
a challenger. Exit 0 whenever the check ran, drift or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.exit_codes import MLFLOW_UNAVAILABLE, REGISTRY, UNEXPECTED, USAGE
from driftline.job_contracts import (
    TERMINATION_MESSAGE_MAX_BYTES,
    DriftThresholds,
    PerformanceRule,
)
from driftline_cli.output import emit, fail, write_termination_log
from driftline_cli.settings import CliSettings

if TYPE_CHECKING:
    from pydantic import ValidationError

    from driftline_training.drift_run import CheckOutcome, FilesSource, LiveSource

# The option behind each threshold (its ``argparse`` dest is the field's name).
OPTIONS = {
    "psi": "--psi-threshold",
    "p_value": "--p-value",
    "prediction_psi": "--prediction-psi",
    "min_samples": "--min-samples",
}
# retrain-if-drifted adds its own keys to the summary; this leaves room for them in 4 KiB.
RETRAIN_KEYS_BYTES = 256


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``drift-check`` and ``retrain-if-drifted``."""
    if name == "drift-check":
        files = parser.add_argument_group("files mode (reference vs current table)")
        files.add_argument("--reference", type=Path, help="reference CSV/Parquet (training data)")
        files.add_argument("--current", type=Path, help="current CSV/Parquet to compare")
        files.add_argument("--schema", type=Path, help="feature_schema.json (default: inferred)")
        files.add_argument(
            "--target",
            help="label column left out of the comparison (default: the schema's target, else"
            " the trainer's, income, when present; '' compares every column)",
        )
        files.add_argument("--prediction-column", help="probability column present in both")
        files.add_argument("--bins", type=int, default=10, help="quantile bins (10)")
        files.add_argument("--sample-size", type=int, default=5000, help="KS sample (5000)")
        files.add_argument("--seed", type=int, default=0, help="seed of the KS sample (0)")
    live = parser.add_argument_group("live mode (inference log vs a model version's baseline)")
    live.add_argument("--model", help="registered model (adult-income)")
    live.add_argument("--version", help="model version (default: the champion)")
    live.add_argument("--log-store", help="inference log store URL (sqlite:///..., postgresql://)")
    window = live.add_mutually_exclusive_group()
    window.add_argument("--lookback", help="window: rows newer than this (90s, 15m, 1h, 2d; 1h)")
    window.add_argument("--last", type=int, help="window: the newest N rows")
    live.add_argument(
        "--read",
        choices=["auto", "rows", "sketch"],
        default="auto",
        help="read the window's logged rows or the pods' drift sketches (auto: rows up to"
        " 100,000 unsampled ones, sketches beyond)",
    )
    live.add_argument(
        "--performance",
        metavar="JSON",
        help='also judge realised performance on labelled traffic, e.g. {"metric": "roc_auc",'
        ' "floor": 0.85, "maxDrop": 0.03, "lookbackSeconds": 86400, "minLabels": 200}'
        " (driftline.job_contracts.PerformanceRule); a breach retrains like drift",
    )
    _add_rule_arguments(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", type=Path, help="report folder (.driftline/drift/<time>/)")
    out.add_argument("--termination-log", type=Path, help="also write the summary here (4 KiB)")
    if name == "drift-check":
        out.add_argument(
            "--experiment", dest="drift_experiment", help="MLflow experiment (driftline-drift)"
        )
    else:
        from driftline_cli.train_cmd import add_training_arguments

        out.add_argument("--drift-experiment", help="MLflow experiment (driftline-drift)")
        add_training_arguments(parser)


def _add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """``--thresholds`` and one option a field; unset ones leave DriftThresholds' defaults."""
    rule = parser.add_argument_group("decision rule (defaults: driftline.job_contracts)")
    rule.add_argument(
        "--thresholds",
        metavar="JSON",
        help='the whole rule as one JSON object, e.g. {"psi": 0.2, "p_value": 0.05,'
        ' "prediction_psi": 0.2, "min_samples": 500}; the options below override its fields',
    )
    for name, option in OPTIONS.items():
        info = DriftThresholds.model_fields[name]
        rule.add_argument(
            option,
            dest=name,
            metavar=name.upper(),
            type=int if info.annotation is int else float,
            help=f"{info.description} ({info.default})",
        )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Run the check (and the retraining); returns the exit code."""
    files_mode = bool(args.command == "drift-check" and (args.reference or args.current))
    mixed = _mode_error(args, files_mode)
    if mixed:
        return fail(mixed, USAGE)
    outcome = _check(args, settings, files_mode)
    if isinstance(outcome, int):
        return outcome
    if args.command == "drift-check":
        if args.termination_log and not write_termination_log(
            outcome.summary.model_dump_json(), args.termination_log
        ):
            return UNEXPECTED
        emit(printed(outcome), args.json, _text(outcome))
        return 0
    return _retrain(args, settings, outcome)


def decision_rule(args: argparse.Namespace) -> tuple[DriftThresholds, float | None]:
    """The thresholds and the lookback in seconds (None with ``--last``) the options name.

    ``--thresholds`` (a ``DriftThresholds`` JSON object) is the base, each per-field option
    overrides its field and ``DriftThresholds``' defaults fill the rest. Raises ValueError with
    one line naming the option (and field) on a value the check refuses (exit 2).
    """
    from pydantic import ValidationError

    from driftline.durations import parse_duration

    base = DriftThresholds()
    if args.thresholds is not None:
        try:
            # Typed by a person or a builder: an unknown key is a typo, not a newer field.
            base = DriftThresholds.model_validate_json(args.thresholds, extra="forbid")
        except ValidationError as exc:
            raise ValueError(f"--thresholds: {_first_error(exc, {})}") from exc
    chosen = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    try:
        thresholds = DriftThresholds.model_validate({**base.model_dump(), **chosen})
    except ValidationError as exc:
        raise ValueError(_first_error(exc, OPTIONS)) from exc
    if args.last is not None:
        return thresholds, None
    try:
        lookback = parse_duration(args.lookback or "1h").total_seconds()
    except ValueError as exc:
        raise ValueError(f"--lookback: {exc}") from exc
    return thresholds, lookback


def printed(outcome: CheckOutcome) -> dict[str, Any]:
    """What ``--json`` prints: the summary and where the full report is."""
    return {**outcome.summary.model_dump(mode="json"), "report": _written(outcome)}


def _mode_error(args: argparse.Namespace, files_mode: bool) -> str:
    """Why the options name neither mode or both, or "" when they name one."""
    if files_mode and (args.model or args.log_store):
        return "use --reference/--current (files) or --model/--log-store (live), not both"
    if files_mode and not (args.reference and args.current):
        return "files mode needs both --reference and --current"
    if not files_mode and not args.log_store:
        return "name --reference and --current (files mode) or --log-store (live mode)"
    return ""


def _check(args: argparse.Namespace, settings: CliSettings, files_mode: bool) -> CheckOutcome | int:
    """Validate the options and run the check; its errors become exit codes."""
    from pydantic import ValidationError

    from driftline.registry import RegistryError
    from driftline_training.drift_run import run_drift_check
    from driftline_training.errors import TrainingError

    try:
        thresholds, lookback = decision_rule(args)
    except ValueError as exc:
        return fail(str(exc), USAGE)
    if args.last is not None and args.last < 1:
        return fail("--last must be at least 1", USAGE)
    if args.last is not None and getattr(args, "read", "auto") == "sketch":
        return fail("--read sketch covers a --lookback, not the --last N rows", USAGE)
    performance = None
    if args.performance is not None:
        if files_mode:
            return fail("--performance needs live mode (--log-store): labels join the log", USAGE)
        try:
            # Typed by a person or a builder: an unknown key is a typo, not a newer field.
            performance = PerformanceRule.model_validate_json(args.performance, extra="forbid")
        except ValidationError as exc:
            return fail(f"--performance: {_first_error(exc, {})}", USAGE)
    if files_mode and (args.bins < 2 or args.sample_size < 1):
        return fail("--bins must be at least 2 and --sample-size at least 1", USAGE)
    source = _files_source(args) if files_mode else _live_source(args, settings, lookback)
    retrain_keys = RETRAIN_KEYS_BYTES if args.command != "drift-check" else 0
    try:
        return run_drift_check(
            source,
            thresholds,
            tracking=settings,
            output_dir=args.output_dir or settings.home / "drift" / _timestamp(),
            experiment=args.drift_experiment,
            summary_max_bytes=TERMINATION_MESSAGE_MAX_BYTES - retrain_keys,
            performance=performance,
        )
    except TrainingError as exc:
        return fail(str(exc), exc.exit_code)
    except RegistryError as exc:
        return fail(str(exc), REGISTRY)
    except _mlflow_errors() as exc:
        return fail(_mlflow_line(exc, settings), MLFLOW_UNAVAILABLE)
    except OSError as exc:
        return fail(str(exc), UNEXPECTED)


def _files_source(args: argparse.Namespace) -> FilesSource:
    from driftline_training.adult import TARGET
    from driftline_training.drift_files import FilesOptions
    from driftline_training.drift_run import FilesSource

    options = FilesOptions(
        schema=args.schema,
        target=TARGET if args.target is None else args.target or None,
        prediction_column=args.prediction_column,
        bins=args.bins,
        sample_size=args.sample_size,
        seed=args.seed,
    )
    return FilesSource(args.reference, args.current, options)


def _live_source(
    args: argparse.Namespace, settings: CliSettings, lookback: float | None
) -> LiveSource:
    from driftline_training.drift_check import WindowRead
    from driftline_training.drift_run import LiveSource

    return LiveSource(
        model=args.model or settings.model_name,
        log_store=args.log_store,
        version=args.version,
        lookback_seconds=lookback,
        last=args.last,
        read=WindowRead(args.read),
    )


def _retrain(args: argparse.Namespace, settings: CliSettings, outcome: CheckOutcome) -> int:
    from driftline.registry_conventions import CHALLENGER
    from driftline_cli.train_cmd import execute_training, training_job

    result: dict[str, Any] = {
        "drift": outcome.summary.model_dump(mode="json"),
        "retrained": False,
        "version": None,
        "report": _written(outcome),
    }
    breached = outcome.performance is not None and bool(outcome.performance.breached)
    if outcome.report.drifted or breached:
        name = args.model or settings.model_name
        job = training_job(args, settings, name=name, register=True, alias=CHALLENGER, schema=None)
        if isinstance(job, int):
            return job
        trained = execute_training(job, settings)
        if isinstance(trained, int):
            return trained
        result.update(
            retrained=True,
            model_name=name,
            version=trained["version"],
            alias=CHALLENGER,
            run_id=trained["run_id"],
            metrics=trained["metrics"],
            recent=trained.get("recent"),
            comparison=trained.get("comparison"),
        )
    if args.termination_log:
        omitted = {"metrics", "report", "recent", "comparison"}
        brief = {k: v for k, v in result.items() if k not in omitted}
        # Compact, like the summary's own JSON that RETRAIN_KEYS_BYTES was reserved beside.
        message = json.dumps(brief, sort_keys=True, separators=(",", ":"), default=str)
        if not write_termination_log(message, args.termination_log):
            return UNEXPECTED
    text = _text(outcome) + (
        f"\nregistered {result['model_name']} version {result['version']} as {CHALLENGER}"
        if result["retrained"]
        else "\nno retraining"
    )
    emit(result, args.json, text)
    return 0


def _written(outcome: CheckOutcome) -> dict[str, str | None]:
    return {
        "json": str(outcome.report_json),
        "html": str(outcome.report_html),
        "mlflow_run_id": outcome.mlflow_run_id,
    }


def _text(outcome: CheckOutcome) -> str:
    from driftline.drift_report import summary_text, window_text

    text = summary_text(outcome.summary)
    if outcome.report.window is not None:
        text += f"\nwindow: {window_text(outcome.report.window)}"
    if outcome.performance is not None:
        text += f"\nperformance: {outcome.performance.status}: {outcome.performance.reason}"
    return f"{text}\nreport: {outcome.report_html}"


def _mlflow_errors() -> tuple[type[Exception], ...]:
    """MLflow's error type once MLflow is imported; files mode never imports it (1 s saved)."""
    if "mlflow" not in sys.modules:
        return ()
    from mlflow.exceptions import MlflowException

    return (MlflowException,)


def _mlflow_line(exc: Exception, settings: CliSettings) -> str:
    from driftline.mlflow_binding import mlflow_error_line
    from driftline.tracking import resolve_tracking

    return mlflow_error_line(exc, resolve_tracking(settings.tracking_uri, settings.home).uri)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _first_error(exc: ValidationError, options: dict[str, str]) -> str:
    """``<option or field>: <message>`` of the first error; the field alone for a whole object."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    where = options.get(field, field)
    return f"{where}: {error['msg']}" if where else str(error["msg"])
