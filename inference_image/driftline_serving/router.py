"""The canary router: one stable entry point forwarding to the champion or the challenger.

The variant is chosen by ``split.choose`` on the request id (``X-Request-ID`` header, else
``request_id`` in the body, else a new id that is added to the forwarded request and the answer).
The split can change at run time through a watched file (a mounted ConfigMap). Connections to
the upstreams are pooled and kept alive (``upstream.UpstreamPool``). When the challenger cannot
serve (refused, reset, no answer in time, not HTTP, or an answer of 502, 503 or 504) its request
goes to the champion, and that is counted by reason. Any other answer, a 4xx the request caused
included, is the challenger's and goes back to the client. When the champion cannot be reached
the client gets a 503 ``upstream_unavailable`` within the upstream timeout.

Shadow traffic (``shadow_bps``): a share of the requests answered by the champion is also sent
to the challenger, marked ``x-driftline-shadow: 1`` so it logs its prediction as variant
``shadow`` under the same request id. The copy runs as its own task: the client's answer never
waits for it, never sees it, and a challenger that hangs costs the champion path nothing. At
most ``max_connections`` copies are in flight; beyond that a copy is dropped and counted.

``POST /feedback`` (labels of served requests) goes to the champion, whatever the split: every
variant writes to the same store, and a label is not a request the rollout's health figures
should count.

A plain ASGI app rather than FastAPI: the router adds a network hop to every request, and the
framework's routing and request objects cost more than the hashing and forwarding themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from driftline.registry_conventions import CHALLENGER, CHAMPION
from driftline.request_ids import valid_request_id
from driftline_serving.errors import ServingError, UpstreamError
from driftline_serving.http_body import read_limited
from driftline_serving.settings import RouterSettings
from driftline_serving.split import SHADOW_HEADER, choose, parse_split, shadowed
from driftline_serving.upstream import UpstreamPool, UpstreamTimeout, UpstreamUnavailable

logger = logging.getLogger("driftline.router")
FORWARDED = frozenset({"/predict", "/predict/batch"})
JSON = b"application/json"
# Answers that say "this variant cannot serve now", whatever the request: a proxy or mesh in front
# of the variant could not reach it (502) or timed out (504), or the server is not ready (503).
# A 500 is not among them: it is the challenger failing on this request, which its error rate
# must show rather than the champion hide.
CANNOT_SERVE = {502: "bad_gateway", 503: "unavailable", 504: "timeout"}
# Upstream latency buckets, seconds: fine below 100 ms, where the p95 latency gates of a
# rollout usually sit, and up to the default upstream timeout.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class SplitState:
    """The current split and where it comes from."""

    def __init__(self, settings: RouterSettings) -> None:
        """Start from the settings' split; the file, when given, overrides it."""
        self.bps = settings.split_bps
        self.file = settings.split_file
        self._mtime: float | None = None
        self._problem: str | None = None  # why the file is unusable, as last logged

    def refresh(self) -> None:
        """Re-read the file when it changed; a bad file keeps the last good split.

        Called every poll: a file that stays missing or bad is logged once, and again only when
        the reason changes or the file is usable again.
        """
        if self.file is None:
            return
        try:
            mtime = self.file.stat().st_mtime
            if mtime != self._mtime:
                self.bps = parse_split(self.file.read_text())
                self._mtime = mtime
                logger.info("split is now %d bps to the challenger (from %s)", self.bps, self.file)
            elif self._problem is not None:
                # Back unchanged (a ConfigMap volume swaps its symlink; a restored copy).
                logger.info("split file %s usable again, keeping %d bps", self.file, self.bps)
            self._problem = None
        except (OSError, ValueError) as exc:
            problem = str(exc)
            if problem != self._problem:
                logger.error(
                    "split file %s unusable, keeping %d bps: %s", self.file, self.bps, problem
                )
            self._problem = problem


class Router:
    """The router as an ASGI application."""

    def __init__(self, settings: RouterSettings) -> None:
        """Metrics, split and upstreams; the HTTP client is created at startup."""
        self.settings = settings
        self.registry = CollectorRegistry()
        self.split_gauge = Gauge(
            "driftline_router_split_bps",
            "Challenger share applied, basis points.",
            registry=self.registry,
        )
        requests = Counter(
            "driftline_router_requests_total",
            "Requests forwarded, by the variant that answered.",
            ["variant"],
            registry=self.registry,
        )
        fallbacks = Counter(
            "driftline_router_fallbacks_total",
            "Challenger requests answered by the champion because the challenger could not serve"
            " (reason: unreachable, timeout, bad_gateway, unavailable).",
            ["reason"],
            registry=self.registry,
        )
        # Per-variant health as the router saw it: what rollout analysis reads (the operator
        # scrapes these, or queries Prometheus for them).
        calls = Counter(
            "driftline_router_upstream_requests_total",
            "Requests sent to each variant's upstream, answered or not.",
            ["variant"],
            registry=self.registry,
        )
        errors = Counter(
            "driftline_router_upstream_errors_total",
            "Upstream calls that failed (reason: server_error for a 5xx answer, timeout,"
            " unreachable).",
            ["variant", "reason"],
            registry=self.registry,
        )
        latency = Histogram(
            "driftline_router_upstream_latency_seconds",
            "Time from sending a request to a variant to its answer (or the timeout), seconds.",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        shadows = Counter(
            "driftline_router_shadow_requests_total",
            "Shadow copies of champion requests sent to the challenger, by outcome (answered,"
            " failed: no answer or a 5xx, dropped: too many in flight).",
            ["outcome"],
            registry=self.registry,
        )
        self.shadow_outcome = {o: shadows.labels(o) for o in ("answered", "failed", "dropped")}
        self._shadows: set[asyncio.Task[None]] = set()
        # Children made once, here: the request path only looks them up.
        variants = (CHAMPION, CHALLENGER)
        self.answered = {variant: requests.labels(variant) for variant in variants}
        self.calls = {variant: calls.labels(variant) for variant in variants}
        self.latency = {variant: latency.labels(variant) for variant in variants}
        self.errors = {
            (variant, reason): errors.labels(variant, reason)
            for variant in variants
            for reason in ("server_error", "timeout", "unreachable")
        }
        self.fallback_unreachable = fallbacks.labels("unreachable")
        self.fallback_timeout = fallbacks.labels("timeout")
        self.fallback_for_status = {
            status: fallbacks.labels(reason) for status, reason in CANNOT_SERVE.items()
        }
        self.split = SplitState(settings)
        self.split.refresh()
        self.upstreams = {CHAMPION: settings.champion_url.rstrip("/")}
        if settings.challenger_url:
            self.upstreams[CHALLENGER] = settings.challenger_url.rstrip("/")
        self.pools = {
            variant: UpstreamPool(url, settings.max_connections, settings.upstream_timeout_seconds)
            for variant, url in self.upstreams.items()
        }
        self._watcher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI event."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        try:
            if method == "POST" and path in FORWARDED:
                await self._forward(scope, receive, send)
            elif method == "POST" and path == "/feedback":
                await self._feedback(scope, receive, send)
            # /ready is the readiness probe: a router that runs can route (a champion that is
            # down is answered with a 503 naming it, which beats a Service without endpoints).
            elif method == "GET" and path in ("/health", "/ready"):
                health = {
                    "status": "ok",
                    "split_bps": self.split.bps,
                    "upstreams": sorted(self.upstreams),
                }
                await _respond(send, 200, orjson.dumps(health))
            elif method == "GET" and path == "/metrics":
                self.split_gauge.set(self.split.bps)
                await _respond(
                    send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()
                )
            else:
                await _respond(send, 404, orjson.dumps({"error": "not_found", "message": path}))
        except ServingError as exc:
            await _respond(send, exc.status, orjson.dumps(exc.body()))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._watcher = asyncio.create_task(
                    _watch(self.split, self.settings.split_poll_seconds)
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in list(self._shadows):
                    task.cancel()
                if self._watcher is not None:
                    self._watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._watcher
                for pool in self.pools.values():
                    await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        body = await read_limited(_chunks(receive), declared, self.settings.max_body_bytes)
        request_id = _header(scope, b"x-request-id") or _body_request_id(body) or uuid.uuid4().hex
        path = scope["path"]
        answer = None
        if CHALLENGER in self.upstreams and choose(request_id, self.split.bps) == CHALLENGER:
            answer = await self._challenger(path, body, request_id)
        variant = CHALLENGER
        if answer is None:
            variant = CHAMPION
            if CHALLENGER in self.upstreams and shadowed(request_id, self.settings.shadow_bps):
                self._shadow(path, body, request_id)
            try:
                answer = await self._post(CHAMPION, path, body, request_id)
            except UpstreamUnavailable as exc:
                raise UpstreamError(f"the champion cannot be reached: {exc}") from exc
        status, content = answer
        self.answered[variant].inc()
        extra = [(b"x-request-id", request_id.encode()), (b"x-driftline-variant", variant.encode())]
        await _respond(send, status, content, JSON, extra)

    async def _feedback(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        body = await read_limited(_chunks(receive), declared, self.settings.max_body_bytes)
        try:
            status, content = await self.pools[CHAMPION].post(
                "/feedback", body, {"content-type": "application/json"}
            )
        except UpstreamUnavailable as exc:
            raise UpstreamError(f"the champion cannot be reached: {exc}") from exc
        await _respond(send, status, content)

    async def _challenger(
        self, path: str, body: bytes, request_id: str
    ) -> tuple[int, bytes] | None:
        """The challenger's answer; None, counted by reason, when it cannot serve."""
        try:
            status, content = await self._post(CHALLENGER, path, body, request_id)
        except UpstreamTimeout:
            self.fallback_timeout.inc()
            return None
        except UpstreamUnavailable:
            self.fallback_unreachable.inc()
            return None
        fallback = self.fallback_for_status.get(status)
        if fallback is not None:
            fallback.inc()
            return None
        return status, content

    def _shadow(self, path: str, body: bytes, request_id: str) -> None:
        """Send a copy to the challenger in its own task (or drop it when too many are out)."""
        if len(self._shadows) >= self.settings.max_connections:
            self.shadow_outcome["dropped"].inc()
            return
        task = asyncio.create_task(self._shadow_call(path, body, request_id))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow_call(self, path: str, body: bytes, request_id: str) -> None:
        try:
            status, _ = await self._post(CHALLENGER, path, body, request_id, shadow=True)
        except UpstreamUnavailable:
            self.shadow_outcome["failed"].inc()
            return
        self.shadow_outcome["failed" if status >= 500 else "answered"].inc()

    async def _post(
        self, variant: str, path: str, body: bytes, request_id: str, *, shadow: bool = False
    ) -> tuple[int, bytes]:
        """One upstream call, counted and timed for the variant's health."""
        headers = {"content-type": "application/json", "x-request-id": request_id}
        if shadow:
            headers[SHADOW_HEADER] = "1"
        self.calls[variant].inc()
        started = time.perf_counter()
        try:
            answer = await self.pools[variant].post(path, body, headers)
        except UpstreamTimeout:
            self.latency[variant].observe(time.perf_counter() - started)
            self.errors[variant, "timeout"].inc()
            raise
        except UpstreamUnavailable:
            # Not timed: a refused connection says nothing about the model's speed.
            self.errors[variant, "unreachable"].inc()
            raise
        self.latency[variant].observe(time.perf_counter() - started)
        if answer[0] >= 500:
            self.errors[variant, "server_error"].inc()
        return answer


def create_router(settings: RouterSettings) -> Router:
    """Build the router app."""
    return Router(settings)


async def _watch(split: SplitState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        split.refresh()


async def _respond(
    send: Send,
    status: int,
    content: bytes,
    media_type: bytes = JSON,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(content)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": content})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1")) or None
    return None


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _body_request_id(body: bytes) -> str | None:
    """The body's request_id, if the body is a JSON object with a string one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the upstream answers 400 with the details
    value = parsed.get("request_id") if isinstance(parsed, dict) else None
    # An unusable id is not routed on (nor put in a header): the server rejects it with a 422.
    return value if valid_request_id(value) else None
