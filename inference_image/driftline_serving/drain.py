"""Graceful shutdown behind a Kubernetes Service: keep serving, shed keep-alive clients, stop.

Kubernetes sends SIGTERM at the moment it removes the pod from its Service's endpoints, but
kube-proxy applies that removal some moments later, and clients holding keep-alive connections
to this pod keep sending on them. A server that stops at once refuses or resets those requests.
With a drain period, the first SIGTERM starts draining: the server keeps answering and marks
every response ``Connection: close``, so each client moves to another pod between two requests,
never inside one; when the period ends the server stops as uvicorn does (in-flight requests
finish). A second SIGTERM, or SIGINT, stops at once. The same pattern as Envoy's drain and
Kubernetes' own advice to delay shutdown until endpoints have converged.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLOSE = (b"connection", b"close")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM drains for ``drain_seconds`` before stopping."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        """``drain_seconds`` <= 0 stops at the first signal, as plain uvicorn does."""
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler: start draining on the first SIGTERM, stop on anything else."""
        if sig != signal.SIGTERM or self.draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self.draining = True
        # uvicorn's main loop polls should_exit; a timer thread sets it when the period ends.
        timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, None))
        timer.daemon = True
        timer.start()


class CloseWhenDraining:
    """ASGI middleware adding ``Connection: close`` to every response while draining."""

    def __init__(self, app: ASGIApp, draining: Callable[[], bool]) -> None:
        """``draining()`` is read once per request; outside a drain the app runs untouched."""
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, closing the connection after the response when draining."""
        if scope["type"] != "http" or not self.draining():
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        await self.app(scope, receive, send_closing)


def serve(app: ASGIApp, config: dict[str, Any], drain_seconds: float) -> None:
    """Run ``app`` under uvicorn (``config``: uvicorn.Config keywords) with draining; blocks."""
    server: DrainingServer | None = None
    wrapped = CloseWhenDraining(app, lambda: server is not None and server.draining)
    server = DrainingServer(uvicorn.Config(wrapped, **config), drain_seconds)
    server.run()
