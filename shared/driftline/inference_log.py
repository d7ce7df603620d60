"""The inference log: one row per prediction, written by serving and read by drift checks.

This module owns the table and its one writer and reader. PostgreSQL in production, SQLite by
default; both through SQLAlchemy Core so the schema is declared once. Features are stored as
JSON text so that the table does not change when a model's features do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

METADATA = sa.MetaData()

INFERENCE_LOG = sa.Table(
    "driftline_inference_log",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, doc="Unix time of the prediction, seconds"),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("variant", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(200), nullable=False),
    sa.Column("features", sa.Text, nullable=False, doc="JSON object of the raw features"),
    sa.Column("prediction", sa.SmallInteger, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Index("ix_driftline_inference_log_window", "model", "version", "ts"),
)


@dataclass(frozen=True)
class LogRecord:
    """One prediction as logged."""

    ts: float
    model: str
    version: str
    variant: str
    request_id: str
    features: dict[str, Any]
    prediction: int
    probability: float
    latency_ms: float


def engine_for(url: str) -> sa.Engine:
    """An engine for a store URL (``sqlite:///path`` or ``postgresql://...``).

    Plain ``postgresql://`` URLs are mapped to the psycopg 3 driver, the one installed.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    options: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        # Serving writes from a background thread; SQLite needs to allow that connection use.
        options["connect_args"] = {"check_same_thread": False, "timeout": 5}
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            # A fresh container's writable /tmp has no folders yet.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, **options)


def create_schema(engine: sa.Engine) -> None:
    """Create the table and index when missing (idempotent)."""
    METADATA.create_all(engine, checkfirst=True)


def insert_batch(engine: sa.Engine, records: Sequence[LogRecord]) -> None:
    """Insert records in one transaction: all of them or, on error, none."""
    if not records:
        return
    rows = [
        {
            "ts": r.ts,
            "model": r.model,
            "version": r.version,
            "variant": r.variant,
            "request_id": r.request_id,
            "features": json.dumps(r.features, separators=(",", ":")),
            "prediction": r.prediction,
            "probability": r.probability,
            "latency_ms": r.latency_ms,
        }
        for r in records
    ]
    with engine.begin() as connection:
        connection.execute(INFERENCE_LOG.insert(), rows)


def open_writer(url: str) -> Callable[[Sequence[LogRecord]], None]:
    """A function inserting batches of records into the inference log at ``url``.

    Serving calls it from its log writer's worker thread (``driftline_serving.log_writer``).
    The table is created on the first write, so a PostgreSQL server that is down at start is
    no reason not to serve: the caller buffers rows until it answers. A SQLite file is local,
    so one that cannot be created now will not appear later: raises ValueError (one line, with
    the cause) at once.
    """
    try:
        engine = engine_for(url)
        if engine.dialect.name == "sqlite":
            create_schema(engine)
    except (OSError, sa.exc.ArgumentError, sa.exc.OperationalError) as exc:
        reason = getattr(exc, "strerror", None) or str(getattr(exc, "orig", None) or exc)
        raise ValueError(f"cannot open the inference log: {reason}") from exc
    # SQLite's table was made above; a server's is made by the first write that reaches it.
    schema_ready = [engine.dialect.name == "sqlite"]

    def write(records: Sequence[LogRecord]) -> None:
        if not schema_ready[0]:
            create_schema(engine)
            schema_ready[0] = True
        insert_batch(engine, records)

    return write


def read_window(
    engine: sa.Engine,
    model: str,
    version: str | None,
    *,
    lookback_seconds: float | None = None,
    limit: int | None = None,
    now: float | None = None,
) -> list[LogRecord]:
    """The newest logged predictions of a model (and version), oldest first.

    ``lookback_seconds`` keeps rows newer than ``now - lookback``; ``limit`` keeps the last N.
    """
    table = INFERENCE_LOG
    query = sa.select(table).where(table.c.model == model)
    if version is not None:
        query = query.where(table.c.version == version)
    if lookback_seconds is not None:
        since = (now if now is not None else time.time()) - lookback_seconds
        query = query.where(table.c.ts >= since)
    query = query.order_by(table.c.ts.desc(), table.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [
        LogRecord(
            ts=row["ts"],
            model=row["model"],
            version=row["version"],
            variant=row["variant"],
            request_id=row["request_id"],
            features=json.loads(row["features"]),
            prediction=row["prediction"],
            probability=row["probability"],
            latency_ms=row["latency_ms"],
        )
        for row in reversed(rows)
    ]


def count_rows(engine: sa.Engine, model: str | None = None) -> int:
    """Number of logged predictions (of one model, when given)."""
    query = sa.select(sa.func.count()).select_from(INFERENCE_LOG)
    if model is not None:
        query = query.where(INFERENCE_LOG.c.model == model)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
