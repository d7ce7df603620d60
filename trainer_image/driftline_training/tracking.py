"""Logging a trained model to MLflow: parameters, metrics, plots, the model and its contracts."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from driftline.artifacts import ARTIFACT_DIR, MLFLOW_MODEL
from driftline.registry_conventions import METRIC_PREFIX, PAIRED_CHAMPION_TAG
from driftline.schema import FeatureKind
from driftline.tracking import TrackingTarget
from driftline_training.recent_data import RecentData
from driftline_training.training import TrainConfig, TrainedModel

# skops refuses to load types it does not know; these are the ones our pipeline adds.
SKOPS_TRUSTED_TYPES = ["xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]
LINEAGE_PACKAGES = ["driftline", "xgboost", "scikit-learn", "mlflow", "onnx", "onnxruntime"]


@dataclass(frozen=True)
class LoggedRun:
    """Where a training run's model can be found."""

    run_id: str
    model_uri: str
    model_id: str | None
    artifact_uri: str


def ensure_experiment(client: MlflowClient, name: str, target: TrackingTarget) -> str:
    """The id of experiment ``name``, created (under the embedded artifact root) if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"{target.artifact_root}/{name}" if target.artifact_root else None
    return str(client.create_experiment(name, artifact_location=location))


def log_training(
    trained: TrainedModel,
    config: TrainConfig,
    target: TrackingTarget,
    experiment: str,
    data_source: str,
) -> LoggedRun:
    """Log one training run and return its model's URIs."""
    mlflow.set_tracking_uri(target.uri)
    client = MlflowClient(target.uri)
    experiment_id = ensure_experiment(client, experiment, target)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(_params(trained, config, data_source))
        mlflow.log_metrics(_metrics(trained))
        mlflow.set_tags({"driftline.data_sha256": trained.data_sha256, "driftline.kind": "train"})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _write_artifacts(folder, trained, config, data_source)
            mlflow.log_artifacts(str(folder), ARTIFACT_DIR)
        columns = list(trained.pipeline.named_steps["preprocess"].feature_names_in_)
        with warnings.catch_warnings():
            # MLflow hints about integer columns in the output signature (the predicted class);
            # inputs are declared as doubles, which is what matters for serving.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            info = mlflow.sklearn.log_model(
                trained.pipeline,
                name=MLFLOW_MODEL,
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                pyfunc_predict_fn="predict_proba",
                input_example=_input_example(trained, columns),
            )
        return LoggedRun(run.info.run_id, info.model_uri, info.model_id, run.info.artifact_uri)


def lineage(trained: TrainedModel, config: TrainConfig, data_source: str) -> dict[str, Any]:
    """Data hash, code version and package versions behind a model."""
    return {
        "data_source": data_source,
        "data_sha256": trained.data_sha256,
        "rows": trained.rows,
        "git_commit": _git_commit(),
        "packages": {p: _package_version(p) for p in LINEAGE_PACKAGES},
        "seed": config.seed,
    }


def _params(trained: TrainedModel, config: TrainConfig, data_source: str) -> dict[str, Any]:
    params = {f"xgb_{k}": v for k, v in config.params.as_dict().items()}
    params.update(
        seed=config.seed,
        folds=config.folds,
        test_size=config.test_size,
        validation_size=config.validation_size,
        target_precision=config.target_precision,
        rounds=trained.rounds,
        data_source=data_source,
        **{f"rows_{k}": v for k, v in trained.rows.items()},
    )
    return params


def _metrics(trained: TrainedModel) -> dict[str, float]:
    metrics = {METRIC_PREFIX + k: v for k, v in trained.metrics.items()}
    metrics.update({f"val_{k}": v for k, v in trained.validation_metrics.items()})
    for name, summary in trained.cv.items():
        metrics[f"cv_{name}_mean"] = summary["mean"]
        metrics[f"cv_{name}_std"] = summary["std"]
    metrics["threshold"] = trained.threshold
    metrics["onnx_max_abs_diff"] = trained.onnx_max_abs_diff
    return metrics


def _write_artifacts(
    folder: Path, trained: TrainedModel, config: TrainConfig, data_source: str
) -> None:
    (folder / "lineage.json").write_text(
        json.dumps(lineage(trained, config, data_source), indent=2)
    )
    (folder / "model.onnx").write_bytes(trained.onnx_model)
    (folder / "feature_schema.json").write_text(trained.schema.to_json())
    (folder / "baseline.json").write_text(trained.baseline.to_json())
    metrics = {"test": trained.metrics, "validation": trained.validation_metrics, "cv": trained.cv}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    threshold = {
        "threshold": trained.threshold,
        "objective": "f1" if config.target_precision is None else "target_precision",
        "target_precision": config.target_precision,
    }
    (folder / "threshold.json").write_text(json.dumps(threshold, indent=2))
    (folder / "feature_importance.json").write_text(json.dumps(trained.importances, indent=2))
    (folder / "params.json").write_text(json.dumps(asdict(config), indent=2, default=str))
    _plot_confusion(trained.confusion, trained.threshold, folder / "confusion_matrix.png")


def _plot_confusion(matrix: list[list[int]], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 4))
    axis.imshow(matrix, cmap="Blues")
    for row in range(2):
        for col in range(2):
            axis.text(col, row, f"{matrix[row][col]:,}", ha="center", va="center")
    axis.set_xticks([0, 1], ["<=50K", ">50K"])
    axis.set_yticks([0, 1], ["<=50K", ">50K"])
    axis.set_xlabel("predicted")
    axis.set_ylabel("actual")
    axis.set_title(f"test split, threshold {threshold:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _input_example(trained: TrainedModel, columns: list[str]) -> pd.DataFrame:
    row = {
        spec.name: (spec.minimum or 0.0)
        if spec.kind is FeatureKind.NUMERIC
        else (spec.categories or ("",))[0]
        for spec in trained.schema.features
    }
    return pd.DataFrame([row])[columns]


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def log_paired(
    target: TrackingTarget,
    run_id: str,
    champion: str | None,
    comparison: dict[str, dict[str, Any]],
    recent: RecentData | None,
) -> None:
    """Add the paired comparison and the recent data's lineage to a finished training run.

    Metrics ``paired_<dataset>_<metric>_<champion|challenger|difference|low|high>`` and
    ``paired_<dataset>_rows``, the tag naming the champion version compared with (promotion
    uses the comparison only while that version is champion), and the artifacts
    ``comparison.json`` and ``recent_data.json`` (the window, row counts, and the request ids
    trained on and held out).
    """
    client = MlflowClient(target.uri)
    now = int(time.time() * 1000)
    metrics = []
    for dataset, result in comparison.items():
        metrics.append(Metric(f"paired_{dataset}_rows", float(result["rows"]), now, 0))
        for metric, figures in result["metrics"].items():
            metrics.extend(
                Metric(f"paired_{dataset}_{metric}_{name}", float(value), now, 0)
                for name, value in figures.items()
            )
    params = []
    if recent is not None:
        params = [
            Param(f"recent_{key}", str(value))
            for key, value in recent.lineage.items()
            if key != "log_store"
        ]
    client.log_batch(run_id, metrics=metrics, params=params)
    if comparison and champion is not None:
        client.set_tag(run_id, PAIRED_CHAMPION_TAG, champion)
        client.log_text(
            run_id,
            json.dumps({"champion": champion, "datasets": comparison}, indent=2),
            f"{ARTIFACT_DIR}/comparison.json",
        )
    if recent is not None:
        document = {
            **recent.lineage,
            "train_request_ids": recent.train_ids,
            "holdout_request_ids": recent.holdout_ids,
        }
        client.log_text(run_id, json.dumps(document), f"{ARTIFACT_DIR}/recent_data.json")
