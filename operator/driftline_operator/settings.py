"""Settings of the operator, read once at start-up (environment prefix ``DRIFTLINE_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline import __version__
from driftline.api.k8s_types import IMAGE
from driftline_operator.alerts import ALERT_TYPES


class WebhookSettings(BaseModel):
    """One receiver of alerts.

    Its signing secret is read from the environment variable ``DRIFTLINE_WEBHOOK_SECRET_<NAME>``
    (upper case, ``-`` as ``_``), which the chart sets from a Secret.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=40, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$", description="Where alerts are POSTed.")
    payload: Literal["cloudevents", "slack"] = Field(
        "cloudevents", description="CloudEvents 1.0 JSON, or Slack's {text} object."
    )
    types: list[str] = Field(
        default_factory=list, description="CloudEvents types sent (empty: every alert)."
    )

    @field_validator("types")
    @classmethod
    def _known(cls, types: list[str]) -> list[str]:
        unknown = sorted(set(types) - ALERT_TYPES)
        if unknown:
            raise ValueError(f"unknown alert types {unknown}; known: {sorted(ALERT_TYPES)}")
        return types

    def secret_variable(self) -> str:
        """The environment variable holding this receiver's signing secret."""
        return "DRIFTLINE_WEBHOOK_SECRET_" + self.name.upper().replace("-", "_")


class OperatorSettings(BaseSettings):
    """How often the operator looks at MLflow and its Jobs, and how it reaches them."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    resolve_interval_seconds: float = Field(
        30.0, gt=0, description="MLflow has no watch: aliases are re-resolved this often."
    )
    drift_poll_seconds: float = Field(
        15.0, gt=0, description="How often each DriftPolicy's Jobs are looked at."
    )
    retry_delay_seconds: float = Field(
        15.0, gt=0, description="Back-off after a temporary error (MLflow or the API down)."
    )
    inference_image: str = Field(
        f"driftline/inference:{__version__}",
        pattern=IMAGE,
        description="Image of serving and router pods whose ModelDeployment names none.",
    )
    trainer_image: str = Field(
        f"driftline/trainer:{__version__}",
        pattern=IMAGE,
        description="Image of drift-check and training Jobs whose DriftPolicy names none.",
    )
    mlflow_timeout_seconds: float = Field(5.0, gt=0, description="Timeout of one MLflow call.")
    scrape_timeout_seconds: float = Field(
        2.0, gt=0, description="Timeout of one router pod's /metrics scrape (rollout analysis)."
    )
    rollout_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a ModelDeployment with a rollout in progress is looked at (its"
        " analysis runs every spec.analysis.interval, checked this often).",
    )
    promote_timeout_seconds: float = Field(
        120.0, gt=0, description="Longest a `driftline promote` subprocess may take."
    )
    health_log_store: str | None = Field(
        None,
        description="Inference log URL the operator reads for the model-behaviour gates of"
        " rollouts (how differently the variants predict); unset: those gates are not run.",
    )
    log_retention_days: int = Field(
        0,
        ge=0,
        le=3650,
        description="Days of inference log and drift sketches the serving pods keep in their"
        " store (PostgreSQL drops whole day partitions). Set here, not per ModelDeployment: a"
        " store is shared, and dropping a day drops it for every model. 0 keeps everything.",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means the whole cluster."
    )
    metrics_port: int | None = Field(
        9090, ge=1, le=65535, description="Port of /metrics (Prometheus); unset: no endpoint."
    )
    liveness_port: int | None = Field(
        None, ge=1, le=65535, description="Serve kopf's liveness probe on this port."
    )
    peering: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="kopf peering object shared by the replicas (ClusterKopfPeering when the"
        " whole cluster is watched, KopfPeering per namespace otherwise); the oldest live"
        " replica acts, the others wait. Unset: standalone, exactly one replica may run.",
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list,
        description="Receivers of alerts, as a JSON list of {name, url, payload, types}.",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, description="Timeout of one POST.")
    webhook_attempts: int = Field(
        5, ge=1, le=20, description="Tries per alert (back-off 1 s, doubling, at most 30 s)."
    )
    peering_lifetime_seconds: int = Field(
        15,
        ge=5,
        le=600,
        description="How long a replica that stopped renewing its peering record still counts"
        " as alive: the longest takeover after a replica is killed.",
    )
