"""Reading request bodies with a bound, shared by the server and the router."""

from __future__ import annotations

from fastapi import Request

from driftline_serving.errors import PayloadTooLargeError


async def read_body(request: Request, limit: int) -> bytes:
    """The body; 413 beyond ``limit`` bytes, from the header or while streaming (chunked)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
