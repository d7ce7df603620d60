"""What reconciles read the world through, injected so tests can stub any part of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from driftline_operator.kube import Kube
from driftline_operator.mlflow_rest import MlflowRest
from driftline_operator.prediction_log import PredictionLog
from driftline_operator.settings import OperatorSettings
from driftline_operator.traffic import TrafficSource


@dataclass(frozen=True)
class Context:
    """The API server, MLflow, settings, the router's figures, the inference log and the clock."""

    kube: Kube
    mlflow: MlflowRest
    settings: OperatorSettings
    traffic: TrafficSource
    predictions: PredictionLog | None
    now: Callable[[], datetime]
