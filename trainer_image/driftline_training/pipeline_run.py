"""One training job end to end: contract, data, training, MLflow run, registered version, alias.

Shared by ``driftline train`` and ``driftline retrain-if-drifted`` so that a retrain is exactly
a manual training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.registry_conventions import CHAMPION
from driftline.schema import FeatureSchema
from driftline.tracking import TrackingTarget
from driftline_training.adult import load_adult
from driftline_training.contracts import champion_schema, read_schema
from driftline_training.recent_data import (
    RecentData,
    RecentSource,
    Scorer,
    compare_with_champion,
    load_recent,
)
from driftline_training.tracking import log_paired, log_training
from driftline_training.training import TrainConfig, TrainedModel, train_model

if TYPE_CHECKING:
    from driftline.registry import ModelRegistry


@dataclass(frozen=True)
class TrainJob:
    """What to train on, how, and where the result goes."""

    data: str
    target: str
    config: TrainConfig
    data_dir: Path
    model_name: str
    experiment: str
    register: bool = True
    alias: str | None = None
    schema: Path | None = None
    recent: RecentSource | None = None


def train_and_register(
    job: TrainJob, tracking: TrackingTarget, registry: ModelRegistry
) -> dict[str, Any]:
    """Validate, train, log and (unless told not to) register; the result the CLI prints.

    The data must meet ``job.schema`` when given, else the current champion's schema. With
    ``job.recent`` the recent labelled traffic joins the training split (its newest part held
    out). When a champion exists both models are scored on the same rows (the recent holdout
    and the test split) and the paired comparison is logged to the new run, where promotion
    reads it. Raises ``TrainingError`` subclasses and ``RegistryError``.
    """
    contract = read_schema(job.schema) if job.schema else champion_schema(registry, job.model_name)
    frame = load_adult(job.data, job.data_dir)
    recent = load_recent(job.recent, job.model_name, job.target) if job.recent else None
    extra = recent.train if recent is not None else None
    trained = train_model(frame, job.target, job.config, contract, extra)
    logged = log_training(trained, job.config, tracking, job.experiment, job.data)
    champion = (
        registry.alias_version(job.model_name, CHAMPION)
        if registry.has_model(job.model_name)
        else None
    )
    comparison = {}
    if champion is not None:
        # The contract is the champion's schema, unless --schema named another file.
        known = contract if job.schema is None else None
        comparison = _compare(registry, job, champion, known, trained, recent)
    log_paired(tracking, logged.run_id, champion, comparison, recent)
    result: dict[str, Any] = {
        "run_id": logged.run_id,
        "tracking_uri": tracking.uri,
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
        "recent": recent.lineage if recent is not None else None,
        "comparison": {"champion": champion, "datasets": comparison} if comparison else None,
    }
    if job.register:
        name = job.model_name
        version = registry.register(name, logged.model_uri, logged.run_id, logged.model_id)
        result.update(
            model_name=name,
            version=version,
            model_uri=f"models:/{name}/{version}",
            alias=registry.apply_alias(name, version, job.alias),
        )
    return result


def _compare(
    registry: ModelRegistry,
    job: TrainJob,
    champion: str,
    schema: FeatureSchema | None,
    trained: TrainedModel,
    recent: RecentData | None,
) -> dict[str, dict[str, Any]]:
    """Score the champion and the new model on the recent holdout and the test split."""
    import mlflow.sklearn

    metrics, _ = registry.run_data(job.model_name, champion)
    schema = schema or champion_schema(registry, job.model_name)
    assert schema is not None, "a champion exists, so its schema does"
    incumbent = Scorer(
        mlflow.sklearn.load_model(f"models:/{job.model_name}/{champion}"),
        schema,
        metrics.get("threshold", 0.5),
    )
    challenger = Scorer(trained.pipeline, trained.schema, trained.threshold)
    datasets = {"test": trained.test}
    if recent is not None:
        datasets = {"recent": recent.holdout, **datasets}
    return compare_with_champion(incumbent, challenger, datasets, job.target)
