"""The router's upstream pool against a real server on loopback that closes idle connections."""

from __future__ import annotations

import asyncio

from driftline_serving.upstream import UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


async def _serve_then_close_idle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer one request with keep-alive, then close as uvicorn does after its idle timeout."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
    await reader.readexactly(length)
    writer.write(ANSWER)
    await writer.drain()
    writer.close()


def test_every_pooled_connection_closed_by_the_server_costs_no_request() -> None:
    async def scenario() -> list[int]:
        server = await asyncio.start_server(_serve_then_close_idle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"http://127.0.0.1:{port}", size=4, timeout=5)
        try:
            # Three concurrent requests leave three pooled connections...
            first = await asyncio.gather(*(pool.post("/predict", b"{}", {}) for _ in range(3)))
            # ...which the server has closed by the time the next requests come.
            await asyncio.sleep(0.2)
            later = [await pool.post("/predict", b"{}", {}) for _ in range(3)]
        finally:
            await pool.close()
            server.close()
            await server.wait_closed()
        return [status for status, _ in [*first, *later]]

    assert asyncio.run(scenario()) == [200] * 6
