"""One training job end to end: contract, data, training, MLflow run, registered version, alias.

Shared by ``driftline train`` and ``driftline retrain-if-drifted`` so that a retrain is exactly
a manual training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.tracking import TrackingTarget
from driftline_training.adult import load_adult
from driftline_training.contracts import champion_schema, read_schema
from driftline_training.tracking import log_training
from driftline_training.training import TrainConfig, train_model

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


def train_and_register(
    job: TrainJob, tracking: TrackingTarget, registry: ModelRegistry
) -> dict[str, Any]:
    """Validate, train, log and (unless told not to) register; the result the CLI prints.

    The data must meet ``job.schema`` when given, else the current champion's schema. Raises
    ``TrainingError`` subclasses and ``RegistryError``.
    """
    contract = read_schema(job.schema) if job.schema else champion_schema(registry, job.model_name)
    frame = load_adult(job.data, job.data_dir)
    trained = train_model(frame, job.target, job.config, contract)
    logged = log_training(trained, job.config, tracking, job.experiment, job.data)
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
