"""``driftline drift-check`` and ``driftline retrain-if-drifted``.

drift-check compares two files, or a window of the inference log with a model version's
baseline, writes the full report (JSON and HTML), logs it to MLflow and prints a summary.
retrain-if-drifted runs the live check and, on drift, trains and registers a challenger.
Exit 0 whenever the check ran, drift or not.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline_cli.output import emit, fail, write_termination_log
from driftline_cli.settings import CliSettings

if TYPE_CHECKING:
    from driftline.drift_report import DriftReport, DriftThresholds
    from driftline_training.drift_check import DriftInputs

EXIT_REGISTRY = 6
EXIT_MLFLOW = 7
# The option behind each threshold, for error messages.
OPTIONS = {
    "psi": "--psi-threshold",
    "p_value": "--p-value",
    "prediction_psi": "--prediction-psi",
    "min_samples": "--min-samples",
}
# retrain-if-drifted adds its own keys to the summary; this leaves room for them in 4 KiB.
RETRAIN_KEYS_BYTES = 256


@dataclass(frozen=True)
class CheckOutcome:
    """A finished check: the report, its summary (<= 4 KiB), where it was written and logged."""

    report: DriftReport
    summary: dict[str, Any]
    written: dict[str, str | None]

    def printed(self) -> dict[str, Any]:
        """What ``--json`` prints: the summary and where the full report is."""
        return {**self.summary, "report": self.written}


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
    window.add_argument("--lookback", help="window: rows newer than this (90s, 15m, 1h; 1h)")
    window.add_argument("--last", type=int, help="window: the newest N rows")
    rule = parser.add_argument_group("decision rule")
    rule.add_argument("--psi-threshold", type=float, default=0.2, help="feature PSI (0.2)")
    rule.add_argument("--p-value", type=float, default=0.05, help="BH false discovery rate (0.05)")
    rule.add_argument("--prediction-psi", type=float, default=0.2, help="prediction PSI (0.2)")
    rule.add_argument(
        "--min-samples", type=int, default=500, help="fewer rows: insufficient data (500)"
    )
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


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Run the check (and the retraining); returns the exit code."""
    files_mode = args.command == "drift-check" and (args.reference or args.current)
    if files_mode and (args.model or args.log_store):
        return fail("use --reference/--current (files) or --model/--log-store (live), not both", 2)
    if files_mode and not (args.reference and args.current):
        return fail("files mode needs both --reference and --current", 2)
    if not files_mode and not args.log_store:
        return fail("name --reference and --current (files mode) or --log-store (live mode)", 2)
    outcome = _check(args, settings, bool(files_mode))
    if isinstance(outcome, int):
        return outcome
    if args.command == "drift-check":
        if args.termination_log and not write_termination_log(
            outcome.summary, args.termination_log
        ):
            return 1
        emit(outcome.printed(), args.json, _text(outcome))
        return 0
    return _retrain(args, settings, outcome)


def _check(args: argparse.Namespace, settings: CliSettings, files_mode: bool) -> CheckOutcome | int:
    """Gather the inputs, decide, write and log the report; errors become exit codes."""
    from pydantic import ValidationError

    from driftline.drift_report import SUMMARY_MAX_BYTES, summary
    from driftline.registry import RegistryError
    from driftline_training.drift_check import run_check, write_report
    from driftline_training.errors import TrainingError

    try:
        thresholds, lookback = decision_rule(args)
    except (ValidationError, ValueError) as exc:
        return fail(_first_error(exc), 2)
    if args.last is not None and args.last < 1:
        return fail("--last must be at least 1", 2)
    if files_mode and (args.bins < 2 or args.sample_size < 1):
        return fail("--bins must be at least 2 and --sample-size at least 1", 2)
    try:
        inputs = _files(args) if files_mode else _live(args, settings, lookback)
        report = run_check(inputs, thresholds)
        folder = args.output_dir or settings.home / "drift" / _timestamp()
        paths = write_report(report, folder)
        run_id = _log(report, paths, args, settings, files_mode)
    except TrainingError as exc:
        return fail(str(exc), exc.exit_code)
    except RegistryError as exc:
        return fail(str(exc), EXIT_REGISTRY)
    except _mlflow_errors() as exc:
        return fail(_mlflow_line(exc, settings), EXIT_MLFLOW)
    except OSError as exc:
        return fail(str(exc), 1)
    limit = SUMMARY_MAX_BYTES - (RETRAIN_KEYS_BYTES if args.command != "drift-check" else 0)
    written = {"json": str(paths[0]), "html": str(paths[1]), "mlflow_run_id": run_id}
    return CheckOutcome(report, summary(report, limit), written)


def decision_rule(args: argparse.Namespace) -> tuple[DriftThresholds, float | None]:
    """The thresholds and the lookback in seconds (None with ``--last``) the options name.

    Raises pydantic's ValidationError or ValueError on a value the check refuses (exit 2).
    """
    from driftline.drift_report import DriftThresholds
    from driftline_training.drift_check import parse_duration

    thresholds = DriftThresholds(
        psi=args.psi_threshold,
        p_value=args.p_value,
        prediction_psi=args.prediction_psi,
        min_samples=args.min_samples,
    )
    lookback = None if args.last is not None else parse_duration(args.lookback or "1h")
    return thresholds, lookback


def _files(args: argparse.Namespace) -> DriftInputs:
    from driftline_training.adult import TARGET
    from driftline_training.drift_check import FilesOptions, files_inputs

    options = FilesOptions(
        schema=args.schema,
        target=TARGET if args.target is None else args.target or None,
        prediction_column=args.prediction_column,
        bins=args.bins,
        sample_size=args.sample_size,
        seed=args.seed,
    )
    return files_inputs(args.reference, args.current, options)


def _live(args: argparse.Namespace, settings: CliSettings, lookback: float | None) -> DriftInputs:
    from driftline.mlflow_binding import open_registry
    from driftline.registry import CHAMPION, RegistryError
    from driftline_training.drift_check import live_inputs

    _, registry = open_registry(settings)
    name = args.model or settings.model_name
    version = args.version or registry.alias_version(name, CHAMPION)
    if version is None:
        raise RegistryError(f"model {name!r} has no {CHAMPION!r}: pass --version")
    return live_inputs(
        registry, name, version, args.log_store, lookback_seconds=lookback, last=args.last
    )


def _log(
    report: DriftReport,
    paths: tuple[Path, Path],
    args: argparse.Namespace,
    settings: CliSettings,
    files_mode: bool,
) -> str | None:
    """Log to MLflow when a server is configured, and always in live mode (MLflow is in use)."""
    if files_mode and not settings.tracking_uri:
        return None
    from driftline.mlflow_binding import open_registry
    from driftline_training.drift_tracking import DRIFT_EXPERIMENT, log_drift_run

    target, _ = open_registry(settings)
    experiment = args.drift_experiment or DRIFT_EXPERIMENT
    return log_drift_run(report, paths, target, experiment)


def _retrain(args: argparse.Namespace, settings: CliSettings, outcome: CheckOutcome) -> int:
    from driftline.registry import CHALLENGER
    from driftline_cli.train_cmd import execute_training, training_job

    result: dict[str, Any] = {"drift": outcome.summary, "retrained": False, "version": None}
    result["report"] = outcome.written
    if outcome.report.drifted:
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
        )
    if args.termination_log:
        brief = {k: v for k, v in result.items() if k not in {"metrics", "report"}}
        if not write_termination_log(brief, args.termination_log):
            return 1
    text = _text(outcome) + (
        f"\nregistered {result['model_name']} version {result['version']} as {CHALLENGER}"
        if result["retrained"]
        else "\nno retraining"
    )
    emit(result, args.json, text)
    return 0


def _text(outcome: CheckOutcome) -> str:
    s = outcome.summary
    samples = ", ".join(f"{side} {rows}" for side, rows in s["samples"].items())
    lines = [s["reason"], f"rows: {samples}"]
    if s["features"]:
        lines.append(f"{'FEATURE':<20} {'TEST':<6} {'PSI':>8} {'P (BH)':>10}  DRIFT")
        for f in s["features"]:
            if "note" in f:
                lines.append(f"{f['name']:<20} not testable: {f['note']}")
                continue
            p = "-" if f["p_adjusted"] is None else f"{f['p_adjusted']:.2g}"
            flag = "yes" if f["drifted"] else "no"
            lines.append(f"{f['name']:<20} {f['test']:<6} {f['psi']:>8.4f} {p:>10}  {flag}")
            if "missing" in f:
                m = f["missing"]
                lines.append(
                    f"{'':<20} missing {m['reference']:.1%} -> {m['current']:.1%},"
                    f" p (BH) {m['p_adjusted']:.2g}"
                )
    prediction = s["prediction"]
    if prediction["checked"]:
        lines.append(
            f"prediction: PSI {prediction['psi']:.4f}, KS p {prediction['p_value']:.2g},"
            f" drifted {prediction['drifted']}"
        )
    else:
        lines.append(f"prediction: not checked ({prediction['note']})")
    lines.append(f"report: {outcome.written['html']}")
    return "\n".join(lines)


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


def _first_error(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        return f"{OPTIONS.get(field, field)}: {error['msg']}"
    return str(exc)
