"""Settings of the inference server and the router, read once (environment prefix DRIFTLINE_)."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.registry_conventions import CHAMPION
from driftline.tracking_settings import TrackingSettings


class Runtime(StrEnum):
    """How predictions are computed."""

    ONNX = "onnx"
    NATIVE = "native"


class ServingSettings(TrackingSettings):
    """One model version served by one process."""

    model_name: str = Field("adult-income", description="Registered model to serve.")
    model_version: str | None = Field(None, description="Version to serve (wins over alias).")
    model_alias: str = Field(CHAMPION, description="Alias resolved at start when no version.")
    model_dir: Path | None = Field(
        None, description="Read already fetched model files from here instead of MLflow."
    )
    runtime: Runtime = Field(Runtime.ONNX, description="onnx (fast path) or native (sklearn).")
    variant: str = Field(CHAMPION, description="Variant label on answers, logs and metrics.")
    log_store: str | None = Field(
        None, description="Inference log URL (sqlite:///... or postgresql://...); unset: SQLite."
    )
    max_batch: int = Field(1000, ge=1, description="Most records in one /predict/batch call.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger bodies get 413.")
    log_buffer_rows: int = Field(50_000, ge=1, description="Rows held while the store is down.")
    log_batch_rows: int = Field(1000, ge=1, description="Rows per insert.")
    log_flush_seconds: float = Field(0.2, gt=0, description="Longest wait before a flush.")
    log_retry_seconds: float = Field(1.0, gt=0, description="Wait after a failed write.")
    log_retention_days: int = Field(
        0,
        ge=0,
        description="Days of inference log and drift sketches kept; older whole days are"
        " dropped (PostgreSQL day partitions) or their rows deleted (SQLite, and tables created"
        " before partitioning). 0 keeps everything.",
    )
    log_sample_rate: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of requests whose rows are logged, chosen by a hash of the request id"
        " (steps of 0.0001); drift sketches count every request.",
    )
    sketches: bool = Field(True, description="Count requests into drift sketches.")
    sketch_bucket_seconds: float = Field(
        60.0, ge=1.0, le=3600.0, description="Length of one drift-sketch time bucket."
    )
    sketch_sample_rows: int = Field(
        128, ge=1, le=100_000, description="Sample rows a sketch bucket keeps for KS tests."
    )
    pod_name: str = Field(
        default_factory=socket.gethostname,
        description="Names this process in the sketch rows (the pod's name in Kubernetes).",
    )
    onnx_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads.")
    max_feedback: int = Field(10_000, ge=1, description="Most labels in one /feedback call.")
    feedback_lookup_seconds: float = Field(
        2.0, gt=0, description="Longest wait for the store to confirm labelled ids were served."
    )

    def log_store_url(self) -> str:
        """The inference log URL, defaulting to a SQLite file beside the embedded store."""
        if self.log_store:
            return self.log_store
        return f"sqlite:///{(self.home / 'inference_log.db').resolve()}"


class RouterSettings(BaseSettings):
    """The canary router in front of the champion and challenger services."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_ROUTER_", extra="ignore")

    champion_url: str = Field(description="Base URL of the champion service.")
    challenger_url: str | None = Field(None, description="Base URL of the challenger service.")
    split_bps: int = Field(0, ge=0, le=10_000, description="Challenger share, basis points.")
    shadow_bps: int = Field(
        0,
        ge=0,
        le=10_000,
        description="Share of champion requests whose copy also goes to the challenger (shadow"
        " traffic), basis points; the copy's answer is never waited for nor returned.",
    )
    split_file: Path | None = Field(
        None, description="File holding the split in basis points (a mounted ConfigMap key)."
    )
    split_poll_seconds: float = Field(1.0, gt=0, description="How often the file is re-read.")
    upstream_timeout_seconds: float = Field(5.0, gt=0, description="Timeout per upstream call.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger bodies get 413.")
    max_connections: int = Field(64, ge=1, description="Pooled connections per upstream.")
