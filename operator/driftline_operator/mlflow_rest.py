"""Read-only MLflow registry calls over its REST API (urllib, no mlflow import).

Importing the mlflow client costs about 130 MB of RSS, most of the operator's budget; the
operator only needs two reads, so it speaks HTTP itself. Writes (promotion) go through
``driftline promote`` in a subprocess (see ``promoter.py``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from driftline.registry_conventions import CHALLENGER, CHAMPION, METRIC_PREFIX


class MlflowUnavailableError(Exception):
    """MLflow did not answer (connection refused, timeout, 5xx): retry later."""


class MlflowNotFoundError(Exception):
    """The registered model, version or metric does not exist."""


@dataclass(frozen=True)
class Aliases:
    """The versions ``champion`` and ``challenger`` point to (None when unset)."""

    champion: str | None
    challenger: str | None


class MlflowRest:
    """A tiny client of the MLflow registry REST API."""

    def __init__(self, timeout: float) -> None:
        """``timeout`` bounds each HTTP call, in seconds."""
        self._timeout = timeout

    def aliases(self, tracking_uri: str, model: str) -> Aliases:
        """Resolve both aliases with one call (``registered-models/get``)."""
        body = self._get(tracking_uri, "registered-models/get", {"name": model})
        found = {a["alias"]: str(a["version"]) for a in body["registered_model"].get("aliases", [])}
        return Aliases(found.get(CHAMPION), found.get(CHALLENGER))

    def metric(self, tracking_uri: str, model: str, version: str, metric: str) -> float:
        """A version's offline test metric, from the run that produced it."""
        found = self._get(tracking_uri, "model-versions/get", {"name": model, "version": version})
        run_id = found["model_version"].get("run_id")
        if not run_id:
            raise MlflowNotFoundError(f"version {version} of {model!r} has no training run")
        run = self._get(tracking_uri, "runs/get", {"run_id": run_id})
        metrics = {m["key"]: m["value"] for m in run["run"]["data"].get("metrics", [])}
        key = METRIC_PREFIX + metric
        if key not in metrics:
            raise MlflowNotFoundError(f"run {run_id} of version {version} has no metric {key!r}")
        return float(metrics[key])

    def _get(self, tracking_uri: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{path}?{query}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code == 404 or detail.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
                raise MlflowNotFoundError(detail.get("message", f"{path}: not found")) from exc
            if exc.code >= 500 or exc.code == 429:
                raise MlflowUnavailableError(f"MLflow {exc.code} on {path}") from exc
            raise MlflowNotFoundError(
                detail.get("message", f"MLflow {exc.code} on {path}")
            ) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise MlflowUnavailableError(f"MLflow at {tracking_uri} unreachable: {exc}") from exc


def _error_detail(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        return dict(json.loads(exc.read() or b"{}"))
    except (ValueError, OSError):
        return {}
