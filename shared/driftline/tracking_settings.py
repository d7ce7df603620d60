"""The settings every image shares: where MLflow is (environment prefix ``DRIFTLINE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackingSettings(BaseSettings):
    """The MLflow server, or the embedded store under ``home`` when there is none."""

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
        validation_alias=AliasChoices(
            "DRIFTLINE_TRACKING_URI", "MLFLOW_TRACKING_URI", "tracking_uri"
        ),
        description="MLflow tracking and registry server; unset means the embedded store.",
    )
