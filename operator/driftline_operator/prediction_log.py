"""What each variant predicted in a rollout step's window, read from the inference log.

The serving pods append every prediction to the inference log (SQLite or PostgreSQL); the
operator reads the two versions' rows of the step so far for the model-behaviour gates
(``analysis.behaviour_gates``). Reads at most ``limit`` rows per version, the newest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from driftline.registry_conventions import SHADOW
from driftline_operator.analysis import Predictions

MAX_ROWS = 20_000


class LogUnavailableError(Exception):
    """The inference log could not be read: the behaviour gates are inconclusive."""


class PredictionLog:
    """Reads the inference log table that serving pods append to."""

    def __init__(self, url: str) -> None:
        """Build the engine for the log store ``url`` at start-up.

        No connection is made yet; a missing SQLAlchemy or database driver fails here, when the
        operator starts, rather than at the first analysis.
        """
        from driftline.inference_log import engine_for

        self._engine: Any = engine_for(url)

    def predictions(
        self, model: str, version: str, since: datetime, now: datetime, limit: int = MAX_ROWS
    ) -> Predictions:
        """What ``version`` of ``model`` logged in [since, now], shadow answers included.

        Raises LogUnavailableError when the store cannot be read.
        """
        import sqlalchemy as sa

        from driftline.inference_log import read_window

        try:
            rows = read_window(
                self._engine,
                model,
                version,
                lookback_seconds=(now - since).total_seconds(),
                limit=limit,
                now=now.timestamp(),
            )
        except sa.exc.SQLAlchemyError as exc:
            raise LogUnavailableError(f"inference log unreadable: {exc}".splitlines()[0]) from exc
        return Predictions(
            np.array([row.probability for row in rows], dtype=np.float64),
            np.array([row.prediction for row in rows], dtype=np.float64),
            tuple(row.request_id for row in rows),
            np.array([row.variant == SHADOW for row in rows], dtype=bool),
        )
