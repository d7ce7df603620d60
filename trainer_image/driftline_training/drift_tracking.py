"""Logging a drift check to MLflow: one run in ``driftline-drift`` with the report attached."""

from __future__ import annotations

import re
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from driftline.drift_report import DriftReport, DriftStatus
from driftline.job_contracts import PerformanceSummary
from driftline.tracking import TrackingTarget
from driftline_training.tracking import ensure_experiment

DRIFT_EXPERIMENT = "driftline-drift"
# MLflow accepts letters, digits, "_", "-", ".", " ", "/" and ":" in metric names.
UNSAFE = re.compile(r"[^\w\-. /:]")


def log_drift_run(
    report: DriftReport,
    files: tuple[Path, ...],
    target: TrackingTarget,
    experiment: str,
    performance: PerformanceSummary | None = None,
) -> str:
    """Log ``report`` (metrics, thresholds, the report files) as one finished run; its id.

    ``performance`` adds its figures (``performance_metrics``).
    """
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
        metrics=[
            Metric(key, value, now, 0)
            for key, value in {**drift_metrics(report), **performance_metrics(performance)}.items()
        ],
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


def performance_metrics(summary: PerformanceSummary | None) -> dict[str, float]:
    """The judged metric with its interval and limit, and AUC and accuracy of each variant.

    Keys: ``performance_<metric>`` (``_low``, ``_high``, ``_limit``), ``performance_breached``,
    ``performance_labelled``, and ``<variant>_v<version>_<figure>`` for each variant's
    realised and CBPE-estimated AUC and accuracy and its label coverage.
    """
    if summary is None:
        return {}
    metrics = {"performance_labelled": float(summary.labelled)}
    if summary.breached is not None:
        metrics["performance_breached"] = float(summary.breached)
    figures = {
        "": summary.value,
        "_low": summary.low,
        "_high": summary.high,
        "_limit": summary.limit,
    }
    for suffix, value in figures.items():
        if value is not None:
            metrics[f"performance_{summary.metric}{suffix}"] = value
    for v in summary.variants:
        prefix = UNSAFE.sub("_", f"{v.variant}_v{v.version}")
        for name in ("coverage", "roc_auc", "roc_auc_estimated", "accuracy", "accuracy_estimated"):
            value = getattr(v, name)
            if value is not None:
                metrics[f"{prefix}_{name}"] = float(value)
    return metrics
