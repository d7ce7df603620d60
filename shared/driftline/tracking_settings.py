"""The settings every image shares: where MLflow is and how long a call to it may take.

Environment prefix ``DRIFTLINE_``; MLflow's own variables are accepted as aliases.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, mlflow_name: str) -> AliasChoices:
    # Accept DRIFTLINE_<NAME>, MLflow's own variable, and the field name (callers pass flags).
    return AliasChoices(f"DRIFTLINE_{name.upper()}", mlflow_name, name)


class TrackingSettings(BaseSettings):
    """The MLflow server (or the embedded store under ``home``) and bounds on every call."""

    # populate_by_name: callers pass ``tracking_uri=`` from their own flags; without it the
    # validation alias would make pydantic ignore that keyword silently.
    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_", extra="ignore", populate_by_name=True
    )

    home: Path = Field(
        Path(".driftline"),
        description="Project-local folder of the embedded MLflow store (used with no server).",
    )
    tracking_uri: str | None = Field(
        None,
        validation_alias=_env("tracking_uri", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry server; unset means the embedded store.",
    )
    # MLflow's defaults (7 retries, back-off factor 2, 120 s timeout) make an unreachable
    # server take about four minutes to report; these bound every call to seconds.
    mlflow_http_timeout_seconds: int = Field(
        10,
        ge=1,
        validation_alias=_env("mlflow_http_timeout_seconds", "MLFLOW_HTTP_REQUEST_TIMEOUT"),
        description="Timeout of one HTTP request to MLflow, seconds.",
    )
    mlflow_http_max_retries: int = Field(
        2,
        ge=0,
        le=10,
        validation_alias=_env("mlflow_http_max_retries", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"),
        description="Retries of a failed MLflow request (connection error, 429, 5xx).",
    )
    mlflow_http_backoff_factor: int = Field(
        1,
        ge=0,
        le=120,
        validation_alias=_env("mlflow_http_backoff_factor", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"),
        description="Exponential back-off between retries: factor * 2**(retry - 1) seconds.",
    )
    promotion_claim_seconds: float = Field(
        120.0,
        gt=0,
        description="A champion move's claim older than this is abandoned and may be taken over;"
        " the holder stops writing after half of it.",
    )

    def mlflow_environment(self) -> dict[str, str]:
        """MLflow's HTTP client variables for these bounds (MLflow reads only its environment)."""
        return {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.mlflow_http_timeout_seconds),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.mlflow_http_max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.mlflow_http_backoff_factor),
        }
