"""The canary router: one stable entry point forwarding to the champion or the challenger.

The variant is chosen by ``split.choose`` on the request id (``X-Request-ID`` header, else
``request_id`` in the body, else a new id that is added to the forwarded request and the answer).
The split can change at run time through a watched file (a mounted ConfigMap). Connections to
the upstreams are pooled and kept alive. When the challenger cannot be reached its request goes
to the champion, and that is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from driftline_serving.errors import MalformedRequestError, PayloadTooLargeError, UpstreamError
from driftline_serving.http_body import read_body
from driftline_serving.settings import RouterSettings
from driftline_serving.split import CHALLENGER, CHAMPION, choose, parse_split

logger = logging.getLogger("driftline.router")
FORWARDED = ("/predict", "/predict/batch")


class SplitState:
    """The current split and where it comes from."""

    def __init__(self, settings: RouterSettings) -> None:
        """Start from the settings' split; the file, when given, overrides it."""
        self.bps = settings.split_bps
        self.file = settings.split_file
        self._mtime: float | None = None

    def refresh(self) -> None:
        """Re-read the file when it changed; a bad file keeps the last good split (logged)."""
        if self.file is None:
            return
        try:
            mtime = self.file.stat().st_mtime
            if mtime == self._mtime:
                return
            self.bps = parse_split(self.file.read_text())
            self._mtime = mtime
            logger.info("split is now %d bps to the challenger (from %s)", self.bps, self.file)
        except (OSError, ValueError) as exc:
            logger.error("split file %s unusable, keeping %d bps: %s", self.file, self.bps, exc)


def create_router(settings: RouterSettings) -> FastAPI:
    """Build the router app."""
    registry = CollectorRegistry()
    split_gauge = Gauge(
        "driftline_router_split_bps", "Challenger share applied, basis points.", registry=registry
    )
    requests = Counter(
        "driftline_router_requests_total",
        "Requests forwarded, by the variant that answered.",
        ["variant"],
        registry=registry,
    )
    fallbacks = Counter(
        "driftline_router_fallbacks_total",
        "Challenger requests sent to the champion because the challenger was unreachable.",
        registry=registry,
    )
    split = SplitState(settings)
    split.refresh()
    upstreams = {CHAMPION: settings.champion_url.rstrip("/")}
    if settings.challenger_url:
        upstreams[CHALLENGER] = settings.challenger_url.rstrip("/")
    session: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        connector = aiohttp.TCPConnector(limit=settings.max_connections, keepalive_timeout=60)
        timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds)
        session["client"] = aiohttp.ClientSession(connector=connector, timeout=timeout)
        watcher = asyncio.create_task(_watch(split, settings.split_poll_seconds))
        yield
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await session["client"].close()

    app = FastAPI(title="Driftline router", version="0.1.0", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "split_bps": split.bps, "upstreams": sorted(upstreams)}

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        split_gauge.set(split.bps)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def forward(request: Request) -> Response:
        body = await read_body(request, settings.max_body_bytes)
        request_id = request.headers.get("x-request-id") or _body_request_id(body)
        if request_id is None:
            request_id = uuid.uuid4().hex
        variant = choose(request_id, split.bps) if CHALLENGER in upstreams else CHAMPION
        client = session["client"]
        try:
            status, content = await _post(client, upstreams[variant], request, body, request_id)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if variant == CHAMPION:
                raise UpstreamError(f"champion unreachable: {exc}") from exc
            fallbacks.inc()
            variant = CHAMPION
            try:
                status, content = await _post(
                    client, upstreams[CHAMPION], request, body, request_id
                )
            except (aiohttp.ClientError, TimeoutError) as again:
                raise UpstreamError(f"no variant reachable: {again}") from again
        requests.labels(variant).inc()
        headers = {"x-request-id": request_id, "x-driftline-variant": variant}
        return Response(content, status_code=status, media_type="application/json", headers=headers)

    for path in FORWARDED:
        app.add_api_route(path, forward, methods=["POST"], summary=f"Forward {path} to a variant")

    @app.exception_handler(UpstreamError)
    @app.exception_handler(MalformedRequestError)
    @app.exception_handler(PayloadTooLargeError)
    async def error(request: Request, exc: Any) -> Response:
        return Response(
            orjson.dumps(exc.body()), status_code=exc.status, media_type="application/json"
        )

    return app


async def _watch(split: SplitState, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        split.refresh()


def _body_request_id(body: bytes) -> str | None:
    """The body's request_id, if the body is a JSON object with a string one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the upstream answers 400 with the details
    value = parsed.get("request_id") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and value else None


async def _post(
    client: aiohttp.ClientSession, base: str, request: Request, body: bytes, request_id: str
) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", "x-request-id": request_id}
    async with client.post(base + request.url.path, data=body, headers=headers) as answer:
        return answer.status, await answer.read()
