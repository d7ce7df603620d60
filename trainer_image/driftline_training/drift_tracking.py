"""Logging a drift check to MLflow: one run in ``driftline-drift`` with the report attached."""

from __future__ import annotations

import re
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from driftline.drift_report import DriftReport, DriftStatus
from driftline.tracking import TrackingTarget
from driftline_training.tracking import ensure_experiment

DRIFT_EXPERIMENT = "driftline-drift"
# MLflow accepts letters, digits, "_", "-", ".", " ", "/" and ":" in metric names.
UNSAFE = re.compile(r"[^\w\-. /:]")


def log_drift_run(
    report: DriftReport, files: tuple[Path, ...], target: TrackingTarget, experiment: str
) -> str:
    """Log ``report`` (metrics, thresholds, the report files) as one finished run; its id."""
    client = MlflowClient(target.uri)
    experiment_id = ensure_experiment(client, experiment, target)
    source = report.source
    tags = {
        "driftline.kind": "drift",
        "driftline.status": report.status.value,
        **{f"driftline.{k}": v for k, v in source.items() if k in {"mode", "model", "version"}},
    }
    name = f"drift {source.get('model', 'files')} {source.get('version', '')}".strip()
    run = client.create_run(experiment_id, tags=tags, run_name=name)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in drift_metrics(report).items()],
        params=[Param(f"threshold_{k}", str(v)) for k, v in report.thresholds.model_dump().items()]
        + [Param(k, v) for k, v in source.items()],
    )
    for path in files:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return str(run_id)


def drift_metrics(report: DriftReport) -> dict[str, float]:
    """The run's metrics: the decision, max PSI, sample counts and each feature's PSI."""
    metrics = {
        "insufficient_data": float(report.status is DriftStatus.INSUFFICIENT_DATA),
        "samples_current": float(report.samples["current"]),
        "samples_reference": float(report.samples["reference"]),
    }
    if report.drifted is not None:
        metrics["drifted"] = float(report.drifted)
        metrics["features_drifted"] = float(sum(f.drifted for f in report.features))
    if report.max_psi is not None:
        metrics["max_psi"] = report.max_psi
    if report.prediction.psi is not None:
        metrics["prediction_psi"] = report.prediction.psi
    for feature in report.features:
        metrics[f"psi_{UNSAFE.sub('_', feature.name)}"] = feature.psi
    return metrics
