"""Settings of the command line, read once from the environment (prefix ``DRIFTLINE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    """Where MLflow and the data live, and the defaults of every subcommand."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    home: Path = Field(
        Path(".driftline"),
        description="Project-local folder of the embedded MLflow store (used with no server).",
    )
    data_dir: Path = Field(
        Path.home() / ".cache" / "driftline" / "data",
        description="Cache of downloaded data sets (UCI Adult).",
    )
    tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("DRIFTLINE_TRACKING_URI", "MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry server; unset means the embedded store.",
    )
    experiment: str = Field("driftline-training", description="MLflow experiment of training runs.")
    model_name: str = Field("adult-income", description="Registered model name.")
