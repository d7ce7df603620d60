"""Rollout analysis's figures from a Prometheus that scrapes the router pods (its HTTP API).

For clusters that already run Prometheus (``spec.analysis.prometheus.url``): the window is an
``increase()`` over [since, now], evaluated at ``now``, of the router's per-variant counters and
latency buckets; the p95 comes from the summed buckets with the same ``histogram_quantile`` as
the direct scrape, so both sources give comparable figures. Series are selected by the labels
the chart's ServiceMonitor gives router targets (``namespace``, ``model_deployment``), or by the
spec's own ``selector``. ``increase()`` extrapolates to the window's edges, so counts are
estimates (rounded); a window shorter than two scrape intervals has no figures yet, and one
longer than a day is cut to its last day (each analysis runs three such queries over bucket
series; a step that waits days for a person is judged on its recent traffic). Answers above
MAX_ANSWER_BYTES are refused: a spec names the URL, the operator serves the whole cluster.
Source: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from driftline_operator.names import Owner
from driftline_operator.traffic import (
    ERRORS,
    LATENCY,
    REQUESTS,
    Counts,
    MetricsUnavailableError,
    TrafficWindow,
    VariantWindow,
)

LONGEST_WINDOW = 86400  # seconds
MAX_ANSWER_BYTES = 4 * 1024 * 1024


class PrometheusQuery:
    """A ``TrafficSource`` over the Prometheus HTTP API at ``url``."""

    def __init__(self, url: str, timeout: float, selector: str | None = None) -> None:
        """Queries go to ``url``, each bounded by ``timeout`` seconds.

        ``selector``: PromQL label matchers of the router's series, without braces; unset:
        ``namespace`` and ``model_deployment`` of the ModelDeployment.
        """
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._selector = selector

    def window(self, owner: Owner, since: datetime, now: datetime) -> TrafficWindow:
        """The router's per-variant figures over [since, now].

        Raises MetricsUnavailableError when Prometheus cannot be queried.
        """
        seconds = min(LONGEST_WINDOW, max(1, round((now - since).total_seconds())))
        matchers = self._selector or (
            f'namespace="{owner.namespace}",model_deployment="{owner.name}"'
        )
        at = now.timestamp()

        def increase(metric: str, by: str) -> list[dict[str, Any]]:
            query = f"sum by ({by}) (increase({metric}{{{matchers}}}[{seconds}s]))"
            return self._query(query, at)

        requests = increase(REQUESTS + "_total", "variant")
        errors = increase(ERRORS + "_total", "variant")
        buckets = increase(LATENCY + "_bucket", "variant, le")
        counts: dict[str, Counts] = {}
        for sample in requests:
            variant = sample["metric"].get("variant", "")
            counts[variant] = Counts(_value(sample), 0.0, {})
        for sample in errors:
            variant = sample["metric"].get("variant", "")
            found = counts.get(variant, Counts())
            counts[variant] = Counts(found.requests, _value(sample), found.buckets)
        for sample in buckets:
            variant, bound = sample["metric"].get("variant", ""), sample["metric"].get("le", "")
            found = counts.setdefault(variant, Counts())
            found.buckets[float(bound)] = _value(sample)
        return TrafficWindow(float(seconds), {v: VariantWindow.of(c) for v, c in counts.items()})

    def _query(self, query: str, at: float) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
        try:
            with urllib.request.urlopen(
                f"{self._url}/api/v1/query?{params}", timeout=self._timeout
            ) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
            if len(raw) > MAX_ANSWER_BYTES:
                raise ValueError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
            body = json.loads(raw)
        except urllib.error.HTTPError as exc:
            detail = _error(exc) or str(exc)
            raise MetricsUnavailableError(f"Prometheus at {self._url}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise MetricsUnavailableError(f"Prometheus at {self._url}: {exc}") from exc
        if body.get("status") != "success":
            raise MetricsUnavailableError(f"Prometheus at {self._url}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _error(exc: urllib.error.HTTPError) -> str | None:
    """The ``error`` of a Prometheus error body (a bad query says what is wrong there)."""
    try:
        return str(json.loads(exc.read() or b"{}").get("error") or "") or None
    except (OSError, ValueError):
        return None


def _value(sample: dict[str, Any]) -> float:
    """An instant vector sample's value; NaN (no rate yet) reads as 0."""
    value = float(sample["value"][1])
    return 0.0 if math.isnan(value) else value
