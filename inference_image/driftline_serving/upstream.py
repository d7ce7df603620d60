"""A minimal keep-alive HTTP/1.1 client for the router's hop to the inference servers.

The router speaks to exactly one kind of peer, `driftline serve`, which always answers with a
Content-Length. A general client (aiohttp) spent most of the router's added latency on features
this hop never uses, so the router keeps a small pool of raw connections per upstream instead.
Anything unexpected (a closed connection, a malformed or chunked answer) is
``UpstreamUnavailable`` and the connection is dropped; a request is retried once on a new
connection when a pooled one turns out to be stale. One deadline covers the whole call, retry
included, so a variant that stopped answering costs its caller one timeout, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024


class UpstreamUnavailable(Exception):
    """The upstream could not be reached or gave no usable answer."""


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream gave no answer within the timeout."""


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class UpstreamPool:
    """Pooled keep-alive connections to one base URL (``http://host:port``)."""

    def __init__(self, base_url: str, size: int, timeout: float) -> None:
        """``size`` idle connections are kept at most; ``timeout`` bounds one request."""
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._where = f"{self.host}:{self.port}"
        self._host_header = self._where.encode()
        self._idle: list[Connection] = []
        self._size = size
        self._timeout = timeout

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; the status and body of the answer."""
        request = self._request(path, body, headers)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the call in a new task.
            async with asyncio.timeout(self._timeout):
                return await self._send(request)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self._where}: no answer within {self._timeout:g} s") from exc

    async def _send(self, request: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            # The retry always opens a new connection: when the server closed one idle
            # connection it has usually closed every other one too (uvicorn closes them all
            # after the same keep-alive timeout).
            fresh = attempt == 1 or not self._idle
            connection = await self._connect() if fresh else self._idle.pop()
            try:
                status, content, keep = await _exchange(connection, request)
            except (
                OSError,
                ValueError,  # a bad content-length
                asyncio.LimitOverrunError,  # a header block longer than the stream's limit
                asyncio.IncompleteReadError,
                UpstreamUnavailable,
            ) as exc:
                _close(connection)
                # A pooled connection may have been closed by the server while idle.
                if fresh or attempt == 1:
                    raise UpstreamUnavailable(f"{self._where}: {exc!r}") from exc
                continue
            except asyncio.CancelledError:
                # The deadline (or the client leaving) cut the exchange short: the connection
                # may still receive the late answer, so it cannot be reused.
                _close(connection)
                raise
            if keep and len(self._idle) < self._size:
                self._idle.append(connection)
            else:
                _close(connection)
            return status, content
        raise UpstreamUnavailable(f"{self._where}: no answer")

    async def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            _close(self._idle.pop())

    async def _connect(self) -> Connection:
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise UpstreamUnavailable(f"{self._where}: {exc!r}") from exc

    def _request(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [
            f"POST {path} HTTP/1.1".encode(),
            b"host: " + self._host_header,
            b"content-length: " + str(len(body)).encode(),
            *(f"{name}: {value}".encode("latin-1") for name, value in headers.items()),
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _exchange(connection: Connection, request: bytes) -> tuple[int, bytes, bool]:
    reader, writer = connection
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise UpstreamUnavailable("answer headers too large")
    status_line, *header_lines = head[:-4].split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise UpstreamUnavailable(f"malformed status line {status_line[:80]!r}")
    length = None
    keep = True
    for line in header_lines:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise UpstreamUnavailable("chunked answers are not expected from driftline serve")
    if length is None:
        raise UpstreamUnavailable("answer without content-length")
    content = await reader.readexactly(length)
    return int(parts[1]), content, keep


def _close(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        connection[1].close()
