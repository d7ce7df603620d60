"""The served version's drift sketch: counted on the request path, sealed buckets written.

``SketchSink.add`` counts each answered request into the current time bucket
(``driftline.sketch.Sketcher``: a few microseconds, no I/O). A background task seals the
buckets that ended and hands them to a ``LogWriter`` like the inference log's, so a store
that is down costs buffered, then dropped and counted, buckets, never a slower answer. At
shutdown the open bucket is sealed too: a pod's part-bucket adds up with the rest at merge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from driftline.inference_log import SketchRecord
from driftline.sketch import Sketcher, random_key
from driftline_serving.log_writer import LogWriter
from driftline_serving.records import ValidRecord

logger = logging.getLogger("driftline.serving.sketch")

# How often ended buckets are sealed, at most: a bucket reaches the store within this (plus a
# flush interval) of its end.
SEAL_SECONDS = 5.0


class SketchSink:
    """One version's sketcher, its sealing task and the writer of its buckets."""

    def __init__(
        self,
        sketcher: Sketcher,
        writer: LogWriter[SketchRecord],
        *,
        model: str,
        version: str,
        variant: str,
        pod: str,
    ) -> None:
        """Count into ``sketcher``; sealed buckets go to ``writer`` labelled with the rest."""
        self._sketcher = sketcher
        self._writer = writer
        self._labels = (model, version, variant, pod)
        self._random = random.Random()
        self._task: asyncio.Task[None] | None = None

    def add(
        self, now: float, records: Sequence[ValidRecord], probabilities: Sequence[float],
        predictions: Sequence[int],
    ) -> None:  # fmt: skip
        """Count answered records (Unix time ``now``, one probability and class each)."""
        add, source = self._sketcher.add, self._random
        for record, probability, prediction in zip(
            records, probabilities, predictions, strict=True
        ):
            add(now, random_key(source), record.values, probability, prediction)

    def start(self) -> None:
        """Start sealing ended buckets on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="drift-sketch")

    async def stop(self) -> None:
        """Seal every open bucket and hand it to the writer (which the caller stops)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._submit(None)

    async def _run(self) -> None:
        interval = min(SEAL_SECONDS, self._sketcher.bucket_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            self._submit(time.time())

    def _submit(self, now: float | None) -> None:
        model, version, variant, pod = self._labels
        digest = self._sketcher.layout.digest
        sealed = self._sketcher.seal(now)
        if sealed:
            self._writer.submit(
                [SketchRecord(model, version, variant, pod, digest, b) for b in sealed]
            )
