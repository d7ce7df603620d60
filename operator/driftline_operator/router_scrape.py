"""Rollout analysis's default source of figures: the router pods' ``/metrics``, read directly.

No Prometheus needed. Counters are cumulative, so a window is the difference between an earlier
scrape kept in memory and the current one. Scrapes are lost when the operator restarts: a window
then starts at the first scrape after the restart.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime

from driftline_operator import names
from driftline_operator.conditions import parse_rfc3339
from driftline_operator.kube import Kube
from driftline_operator.names import Owner
from driftline_operator.traffic import (
    MetricsUnavailableError,
    Scrape,
    TrafficWindow,
    VariantWindow,
    baselines,
    difference,
    parse_router_metrics,
)


def router_pods(kube: Kube, owner: Owner) -> Iterable[tuple[str, str, datetime | None]]:
    """(pod uid, metrics URL, start time) of each running router pod of a ModelDeployment.

    The port is the router container's port named ``http`` (the pod's own, so a pod from an
    older template is still read right).
    """
    selector = {names.LABEL_MODEL_DEPLOYMENT: owner.name, names.LABEL_COMPONENT: "router"}
    for pod in kube.select("Pod", owner.namespace, selector):
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if status.get("phase") != "Running" or not ip:
            continue
        ports = [
            port.get("containerPort")
            for container in pod["spec"].get("containers", [])
            for port in container.get("ports", [])
            if port.get("name") == "http"
        ]
        host = f"[{ip}]" if ":" in ip else ip
        url = f"http://{host}:{ports[0] if ports else names.SERVING_PORT}"
        start = status.get("startTime")
        yield pod["metadata"]["uid"], url, parse_rfc3339(start) if start else None


Fetch = Callable[[str, float], str]
HISTORY = 256  # scrapes kept per ModelDeployment
MAX_PAGE_BYTES = 1024 * 1024


def http_get(url: str, timeout: float) -> str:
    """The body of a GET, as text.

    Raises OSError (URLError included) when it fails, ValueError when it is larger than
    MAX_PAGE_BYTES: a router page is a few kB, and any pod with the router's labels in a
    namespace is read by the cluster-wide operator.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read(MAX_PAGE_BYTES + 1)
    if len(body) > MAX_PAGE_BYTES:
        raise ValueError(f"/metrics larger than {MAX_PAGE_BYTES} bytes")
    return str(body.decode("utf-8"))


class RouterScrape:
    """Reads the router pods' /metrics directly; keeps recent scrapes per ModelDeployment."""

    def __init__(self, kube: Kube, timeout: float, fetch: Fetch = http_get) -> None:
        """``timeout`` bounds each pod's scrape, in seconds."""
        self._kube = kube
        self._timeout = timeout
        self._fetch = fetch
        # (namespace, name) -> scrapes, oldest first: (when taken, per-pod counts)
        self._history: dict[tuple[str, str], list[tuple[datetime, Scrape]]] = {}

    def window(self, owner: Owner, since: datetime, now: datetime) -> TrafficWindow:
        """The counts added between the first scrape taken at or after ``since`` and now.

        Each call scrapes and keeps the scrape, so the first call after ``since`` (a new step,
        or the first look after a restart) returns an empty window and later calls measure
        from it. At most HISTORY scrapes are kept per ModelDeployment: past that, every other
        scrape of the older half goes, so long windows stay covered, more coarsely. Raises
        MetricsUnavailableError when no router pod runs or none answers.
        """
        scraped, started = self._scrape(owner)
        history = self._history.setdefault((owner.namespace, owner.name), [])
        then = baselines(scraped, started, history, since)
        taken = next((taken for taken, _ in history if taken >= since), now)
        if len(history) >= HISTORY:
            del history[1 : HISTORY // 2 : 2]
        history.append((now, scraped))
        if then is None:
            return TrafficWindow(0.0, {})
        counts = difference(scraped, then)
        return TrafficWindow(
            (now - taken).total_seconds(), {v: VariantWindow.of(c) for v, c in counts.items()}
        )

    def forget(self, owner: Owner) -> None:
        """Drop the scrapes of a deleted ModelDeployment."""
        self._history.pop((owner.namespace, owner.name), None)

    def _scrape(self, owner: Owner) -> tuple[Scrape, dict[str, datetime]]:
        """Every answering router pod's counts, and the pods' start times."""
        scraped: Scrape = {}
        started: dict[str, datetime] = {}
        problems: list[str] = []
        for uid, url, start in router_pods(self._kube, owner):
            try:
                scraped[uid] = parse_router_metrics(self._fetch(url + "/metrics", self._timeout))
            except (OSError, ValueError) as exc:
                problems.append(f"{url}: {exc}")
                continue
            if start is not None:
                started[uid] = start
        if not scraped:
            detail = "; ".join(problems)[:300] or "no running router pod"
            raise MetricsUnavailableError(f"router metrics unavailable: {detail}")
        return scraped, started
