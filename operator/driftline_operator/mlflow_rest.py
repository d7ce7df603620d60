"""MLflow registry calls over its REST API (urllib, no mlflow import).

Importing the mlflow client costs about 130 MB of RSS, most of the operator's budget; the
operator only needs a few reads and the rejected tag of a version, so it speaks HTTP itself.
Alias moves go through ``driftline promote`` in a subprocess (see ``promoter.py``): they need
the registry's check-and-set.
Source: https://mlflow.org/docs/latest/api_reference/rest-api.html
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

    def version_tag(self, tracking_uri: str, model: str, version: str, key: str) -> str | None:
        """The value of one tag of a model version; None when it has no such tag."""
        found = self._get(tracking_uri, "model-versions/get", {"name": model, "version": version})
        tags = {t["key"]: t.get("value", "") for t in found["model_version"].get("tags", [])}
        return tags.get(key)

    def set_version_tag(
        self, tracking_uri: str, model: str, version: str, key: str, value: str
    ) -> None:
        """Set a tag on a model version (``model-versions/set-tag``)."""
        body = {"name": model, "version": version, "key": key, "value": value}
        self._call(tracking_uri, "model-versions/set-tag", "POST", body)

    def delete_version_tag(self, tracking_uri: str, model: str, version: str, key: str) -> None:
        """Remove a tag from a model version; nothing when it has none."""
        if self.version_tag(tracking_uri, model, version, key) is None:
            return
        body = {"name": model, "version": version, "key": key}
        self._call(tracking_uri, "model-versions/delete-tag", "DELETE", body)

    def _get(self, tracking_uri: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._call(tracking_uri, f"{path}?{urllib.parse.urlencode(params)}", "GET")

    def _call(
        self, tracking_uri: str, path: str, method: str, body: dict[str, str] | None = None
    ) -> dict[str, Any]:
        url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
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
