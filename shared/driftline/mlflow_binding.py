"""Pointing one process's MLflow client at one store, with bounded HTTP calls.

MLflow resolves ``models:/`` URIs (registering a logged model, downloading one) through the
process-wide tracking and registry URIs, whatever an ``MlflowClient`` or a ``tracking_uri=``
argument says; left unset they default to ``sqlite:///mlflow.db`` in the working directory,
which is how ``register`` on the embedded store failed and left a stray ``./mlflow.db``. And
MLflow's HTTP client reads its retries and timeout only from the environment. So every process
that talks to MLflow binds both here, once, before its first call.
"""

from __future__ import annotations

import os
import re

from driftline.registry import ModelRegistry
from driftline.tracking import TrackingTarget, resolve_tracking
from driftline.tracking_settings import TrackingSettings

# The root cause inside urllib3's "Max retries exceeded ... (Caused by ...)" message.
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def bind_mlflow(uri: str, environment: dict[str, str]) -> None:
    """Make ``uri`` this process's tracking and registry URI; export MLflow's HTTP bounds.

    ``environment`` is ``TrackingSettings.mlflow_environment()`` (or empty to keep what the
    parent process exported).
    """
    os.environ.update(environment)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def open_registry(settings: TrackingSettings) -> tuple[TrackingTarget, ModelRegistry]:
    """The tracking target of ``settings``, bound process-wide, and a registry on it."""
    from mlflow import MlflowClient

    target = resolve_tracking(settings.tracking_uri, settings.home)
    bind_mlflow(target.uri, settings.mlflow_environment())
    client = MlflowClient(target.uri, target.uri)
    return target, ModelRegistry(client, claim_seconds=settings.promotion_claim_seconds)


def mlflow_error_line(exc: Exception, uri: str) -> str:
    """One short line for an ``MlflowException``; an unreachable server is named with its cause."""
    message = str(getattr(exc, "message", exc))
    if "Max retries exceeded" in message or "Failed to establish a new connection" in message:
        cause = _ERRNO.search(message)
        reason = cause.group(1).strip().lower() if cause else "no connection"
        return f"MLflow at {uri} is unreachable: {reason}"
    return f"MLflow at {uri}: {message}"
