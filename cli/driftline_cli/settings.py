"""Settings of the command line, read once from the environment (prefix ``DRIFTLINE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from driftline.tracking_settings import TrackingSettings


class CliSettings(TrackingSettings):
    """Where MLflow and the data live, and the defaults of every subcommand."""

    data_dir: Path = Field(
        Path.home() / ".cache" / "driftline" / "data",
        description="Cache of downloaded data sets (UCI Adult).",
    )
    experiment: str = Field("driftline-training", description="MLflow experiment of training runs.")
    model_name: str = Field("adult-income", description="Registered model name.")
    debug: bool = Field(False, description="Print the traceback of an unexpected error.")
    drain_seconds: float = Field(
        0.0,
        ge=0,
        le=300,
        description="serve/router: on SIGTERM keep answering this long, closing keep-alive"
        " connections, before stopping (pods behind a Service: a few seconds; 0 stops at once).",
    )
