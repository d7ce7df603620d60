"""Reading request bodies with a bound, shared by the server and the router."""

from __future__ import annotations

from collections.abc import AsyncIterator

from driftline_serving.errors import PayloadTooLargeError


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The body; 413 beyond ``limit`` bytes, from the declared length or while streaming.

    Checking while streaming matters for chunked bodies, which declare no length.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
