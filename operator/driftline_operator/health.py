"""Online health of a variant for auto promotion, read from the inference log.

The source is injectable (``HealthSource``): the operator uses the inference log, tests may
pass anything with the same method. The log holds successful predictions only, so errors are
reported as 0 here; the error-rate bound is enforced when a source can count errors.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from driftline_operator.decisions import VariantHealth, percentile


class HealthSource(Protocol):
    """Where online figures of a served version come from."""

    def health(self, model: str, version: str, window_seconds: float) -> VariantHealth:
        """Requests, errors and p95 latency of ``version`` over the last ``window_seconds``."""


class InferenceLogHealth:
    """Reads the inference log table (SQLite or PostgreSQL) that serving pods append to."""

    def __init__(self, url: str) -> None:
        """Build the engine for the log store ``url`` at start-up.

        No connection is made yet; a missing SQLAlchemy or database driver fails here, when the
        operator starts, rather than at the first auto promotion.
        """
        from driftline.inference_log import engine_for

        self._engine: Any = engine_for(url)

    def health(self, model: str, version: str, window_seconds: float) -> VariantHealth:
        """Count of logged predictions and their p95 latency in the window."""
        import sqlalchemy as sa

        from driftline.inference_log import INFERENCE_LOG

        table = INFERENCE_LOG
        query = sa.select(table.c.latency_ms).where(
            table.c.model == model,
            table.c.version == version,
            table.c.ts >= time.time() - window_seconds,
        )
        with self._engine.connect() as connection:
            latencies = [float(row[0]) for row in connection.execute(query)]
        return VariantHealth(len(latencies), 0, percentile(latencies, 0.95))
