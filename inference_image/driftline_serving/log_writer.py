"""Batched, bounded, off-the-request-path writing of the inference log (and of feedback).

Requests append to an in-memory buffer and return. A background task flushes batches to the
store in a worker thread. When the store is down or slow the buffer absorbs rows up to its bound;
beyond it the oldest rows are dropped and counted (a metric and a log line), and serving goes
on. Writing resumes by itself when the store answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger("driftline.serving.log")

Row = TypeVar("Row")


class LogWriter(Generic[Row]):
    """The buffer and its flushing task."""

    def __init__(
        self,
        write: Callable[[Sequence[Row]], None],
        *,
        what: str = "inference log",
        capacity: int,
        batch_rows: int,
        flush_seconds: float,
        retry_seconds: float,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        """``write`` inserts one batch synchronously, in a worker thread.

        ``what`` names the rows in log lines ("inference log", "feedback").
        """
        self._write = write
        self._what = what
        self._buffer: deque[Row] = deque()
        self._capacity = capacity
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._retry_seconds = retry_seconds
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._on_error = on_error
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._healthy = True
        self._dropped_since_healthy = 0
        self.dropped = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        return len(self._buffer)

    def submit(self, records: Sequence[Row]) -> None:
        """Queue rows without waiting; drop the oldest beyond capacity (counted)."""
        self._buffer.extend(records)
        overflow = len(self._buffer) - self._capacity
        if overflow > 0:
            for _ in range(overflow):
                self._buffer.popleft()
            # One line when dropping starts; the total follows when the store is back.
            if self._dropped_since_healthy == 0:
                logger.warning(
                    "%s buffer full (%d rows): dropping the oldest rows", self._what, self._capacity
                )
            self._dropped_since_healthy += overflow
            self.dropped += overflow
            self._on_dropped(overflow)
        if len(self._buffer) >= self._batch_rows:
            self._wake.set()

    def start(self) -> None:
        """Start the flushing task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="inference-log")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (within ``timeout``) and stop."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except (TimeoutError, Exception) as exc:  # shutting down: report, never hang
            logger.error("%s: %d row(s) not written at shutdown: %s", self._what, self.depth, exc)

    async def _drain(self) -> None:
        while self._buffer:
            if not await self._flush_once():
                raise RuntimeError("the store is unavailable")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            while self._buffer:
                if not await self._flush_once():
                    await asyncio.sleep(self._retry_seconds)
                    break

    async def _flush_once(self) -> bool:
        count = min(len(self._buffer), self._batch_rows)
        batch = [self._buffer.popleft() for _ in range(count)]
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception as exc:  # any store failure: keep the rows, retry later
            if self._healthy:
                logger.error("%s store unavailable, buffering: %s", self._what, exc)
            self._healthy = False
            self._on_error()
            # The batch goes back in front, oldest first; rows that arrived meanwhile may now
            # exceed the bound, and the oldest are dropped as at submission.
            self._buffer.extendleft(reversed(batch))
            self.submit(())
            return False
        if not self._healthy:
            logger.warning(
                "%s store is back; writing resumes (%d buffered, %d dropped meanwhile)",
                self._what,
                self.depth,
                self._dropped_since_healthy,
            )
            self._dropped_since_healthy = 0
        self._healthy = True
        self.written += count
        self._on_written(count)
        return True
