"""The inference log and its feedback: one row per prediction, one row per labelled request.

This module owns both tables and their writers and readers. PostgreSQL in production, SQLite by
default; both through SQLAlchemy Core so the schema is declared once. Features are stored as
JSON text so that the table does not change when a model's features do. Labels (ground truth)
arrive later, keyed by the model and the request id that served them, and are joined to the
predictions by ``read_labelled``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from driftline import partitions
from driftline.request_ids import MAX_REQUEST_ID
from driftline.sketch import BucketChunk, SealedBucket

logger = logging.getLogger("driftline.inference_log")

METADATA = sa.MetaData()
READ_CHUNK_ROWS = 50_000
# How often a serving process creates partitions ahead and applies retention.
MAINTENANCE_SECONDS = 3600.0

INFERENCE_LOG = sa.Table(
    "driftline_inference_log",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, doc="Unix time of the prediction, seconds"),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("variant", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(MAX_REQUEST_ID), nullable=False),
    sa.Column("features", sa.Text, nullable=False, doc="JSON object of the raw features"),
    sa.Column("prediction", sa.SmallInteger, nullable=False),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column(
        "sample_rate",
        sa.Float,
        nullable=False,
        server_default="1",
        doc="Share of requests whose rows were logged when this one was (1: every one)",
    ),
    sa.Index("ix_driftline_inference_log_window", "model", "version", "ts"),
    # Feedback checks and joins look rows up by request id.
    sa.Index("ix_driftline_inference_log_request", "model", "request_id"),
)

FEEDBACK = sa.Table(
    "driftline_feedback",
    METADATA,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("request_id", sa.String(MAX_REQUEST_ID), primary_key=True),
    sa.Column("label", sa.SmallInteger, nullable=False, doc="The true class, 0 or 1 (latest)"),
    sa.Column("arrived", sa.Float, nullable=False, doc="Unix time the first delivery arrived"),
    sa.Column("updated", sa.Float, nullable=False, doc="Unix time of the latest delivery"),
    sa.Column("deliveries", sa.Integer, nullable=False, doc="Times this label was posted"),
)


DRIFT_SKETCH = sa.Table(
    "driftline_drift_sketch",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("variant", sa.String(20), nullable=False),
    sa.Column("pod", sa.String(253), nullable=False, doc="The serving process that counted"),
    sa.Column("start", sa.Float, nullable=False, doc="Unix time the bucket starts, seconds"),
    sa.Column("seconds", sa.Float, nullable=False, doc="Bucket length, seconds"),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("positives", sa.BigInteger, nullable=False, doc="Requests predicted positive"),
    sa.Column("layout", sa.String(16), nullable=False, doc="driftline.sketch layout digest"),
    sa.Column("counts", sa.LargeBinary, nullable=False, doc="uint32 counts, layout order"),
    sa.Column("sample", sa.LargeBinary, nullable=False, doc="float32 bottom-k sample rows"),
    sa.Column("sample_rows", sa.Integer, nullable=False),
    sa.Column("sample_bound", sa.Float, nullable=False, doc="Largest kept key, 1 if all kept"),
    sa.Index("ix_driftline_drift_sketch_window", "model", "version", "start"),
)
SKETCH_CHUNK_ROWS = 2000


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
    sample_rate: float = 1.0


@dataclass(frozen=True)
class SketchRecord:
    """One sealed drift-sketch bucket of one pod and model version, as stored."""

    model: str
    version: str
    variant: str
    pod: str
    layout: str
    bucket: SealedBucket


@dataclass(frozen=True)
class Feedback:
    """One label for one served request, as posted."""

    ts: float
    model: str
    request_id: str
    label: int


@dataclass(frozen=True)
class Labelled:
    """Served predictions of a window joined with their labels, as columns (one entry a row).

    ``label`` is -1 and ``arrived`` NaN where no label has arrived (yet).
    """

    ts: np.ndarray
    version: np.ndarray
    variant: np.ndarray
    prediction: np.ndarray
    probability: np.ndarray
    label: np.ndarray
    arrived: np.ndarray


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
    """Create the tables and indexes when missing (idempotent).

    On PostgreSQL the inference log and sketch tables are partitioned by day
    (``driftline.partitions``), with partitions up to two days ahead. ``create_all`` skips
    the indexes of a table that exists, so an index added in a later release is created on
    its own.
    """
    # First: create_all would create these two unpartitioned.
    partitions.create_partitioned(engine, (INFERENCE_LOG, DRIFT_SKETCH), time.time())
    METADATA.create_all(engine, checkfirst=True)
    for index in INFERENCE_LOG.indexes:
        index.create(engine, checkfirst=True)
    # Likewise a column added in a later release (``sample_rate``, default 1: logs written
    # before sampling existed hold every row).
    present = {c["name"] for c in sa.inspect(engine).get_columns(INFERENCE_LOG.name)}
    for column in INFERENCE_LOG.columns:
        if column.name not in present:
            ddl = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
            with engine.begin() as connection:
                connection.execute(sa.text(f"ALTER TABLE {INFERENCE_LOG.name} ADD COLUMN {ddl}"))


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
            "sample_rate": r.sample_rate,
        }
        for r in records
    ]
    with engine.begin() as connection:
        connection.execute(INFERENCE_LOG.insert(), rows)


def insert_sketches(engine: sa.Engine, records: Sequence[SketchRecord]) -> None:
    """Insert sealed sketch buckets in one transaction.

    Two rows of one pod, version and bucket simply add up when merged (a bucket sealed at
    shutdown and reopened), so there is no uniqueness to enforce.
    """
    if not records:
        return
    rows = [
        {
            "model": r.model,
            "version": r.version,
            "variant": r.variant,
            "pod": r.pod,
            "start": r.bucket.start,
            "seconds": r.bucket.seconds,
            "requests": r.bucket.requests,
            "positives": r.bucket.positives,
            "layout": r.layout,
            "counts": r.bucket.counts,
            "sample": r.bucket.sample,
            "sample_rows": r.bucket.sample_rows,
            "sample_bound": r.bucket.sample_bound,
        }
        for r in records
    ]
    with engine.begin() as connection:
        connection.execute(DRIFT_SKETCH.insert(), rows)


def read_sketches(
    engine: sa.Engine, model: str, version: str, *, since: float, until: float
) -> Iterator[BucketChunk]:
    """The sketch buckets of ``model`` ``version`` starting in ``[since, until)``, in chunks.

    Chunks of ``SKETCH_CHUNK_ROWS`` buckets, streamed from the server, so a window of any
    length holds one chunk in memory at a time.
    """
    table = DRIFT_SKETCH
    if not _present_columns(engine, table):
        return  # a store no sketching pod has written to yet: no buckets
    query = sa.select(
        table.c.pod, table.c.seconds, table.c.requests, table.c.positives, table.c.layout,
        table.c.counts, table.c.sample, table.c.sample_bound,
    ).where(
        table.c.model == model, table.c.version == version,
        table.c.start >= since, table.c.start < until,
    )  # fmt: skip
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            yield from _binary_chunks(connection, query)
            return
        result = connection.execution_options(yield_per=SKETCH_CHUNK_ROWS).execute(query)
        for chunk in result.partitions():
            columns = list(zip(*chunk, strict=True))
            yield BucketChunk(*columns)


def _binary_chunks(connection: sa.Connection, query: sa.Select[Any]) -> Iterator[BucketChunk]:
    """Chunks of a sketch query from a server-side cursor in psycopg's binary format.

    In the text format bytea travels as hex, twice its size, and is decoded on arrival: that
    was most of the time a check spent reading sketches from PostgreSQL. SQLAlchemy has no
    option for the binary format, so this one query goes to the driver's own cursor.
    """
    compiled = query.compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    assert driver is not None, "an open connection has its driver connection"
    with driver.cursor(name="driftline_sketches", binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        while chunk := cursor.fetchmany(SKETCH_CHUNK_ROWS):
            yield BucketChunk(*zip(*chunk, strict=True))


def window_rows(
    engine: sa.Engine, model: str, version: str, *, since: float, until: float, limit: int
) -> tuple[int, bool]:
    """Logged rows of a window, counted up to ``limit + 1``, and whether any was sampled.

    Bounded work whatever the window holds: what a check needs to choose between reading
    rows and reading sketches.
    """
    table = INFERENCE_LOG
    where = (
        table.c.model == model, table.c.version == version,
        table.c.ts >= since, table.c.ts < until,
    )  # fmt: skip
    if "sample_rate" not in _present_columns(engine, table):
        # Written before sampling existed: every row was logged.
        limited = sa.select(table.c.id).where(*where).limit(limit + 1).subquery()
        with engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(limited))
            return int(count.scalar_one()), False
    limited = sa.select(table.c.sample_rate).where(*where).limit(limit + 1).subquery()
    query = sa.select(sa.func.count(), sa.func.min(limited.c.sample_rate))
    with engine.connect() as connection:
        count, lowest = connection.execute(query.select_from(limited)).one()
    return int(count), lowest is not None and lowest < 1


def upsert_feedback(engine: sa.Engine, labels: Sequence[Feedback]) -> None:
    """Store labels in one transaction; a repeat is counted, never a second row.

    A request labelled again keeps its first arrival time, takes the latest label (a correction
    wins) and adds to ``deliveries``. Safe under concurrent writers: the database resolves the
    conflict (``INSERT ... ON CONFLICT DO UPDATE`` in PostgreSQL and SQLite alike).
    """
    if not labels:
        return
    # One statement may not touch a row twice (PostgreSQL refuses it): fold repeats first.
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in labels:
        key = (item.model, item.request_id)
        row = rows.get(key)
        if row is None:
            rows[key] = {
                "model": item.model,
                "request_id": item.request_id,
                "label": item.label,
                "arrived": item.ts,
                "updated": item.ts,
                "deliveries": 1,
            }
        else:
            row.update(label=item.label, updated=item.ts, deliveries=row["deliveries"] + 1)
    insert = _dialect_insert(engine)(FEEDBACK)
    statement = insert.on_conflict_do_update(
        index_elements=[FEEDBACK.c.model, FEEDBACK.c.request_id],
        set_={
            "label": insert.excluded.label,
            "updated": insert.excluded.updated,
            "deliveries": FEEDBACK.c.deliveries + insert.excluded.deliveries,
        },
    )
    with engine.begin() as connection:
        connection.execute(statement, list(rows.values()))


def _dialect_insert(engine: sa.Engine) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def served_request_ids(engine: sa.Engine, model: str, request_ids: Sequence[str]) -> set[str]:
    """Which of ``request_ids`` the inference log holds a prediction of ``model`` for."""
    found: set[str] = set()
    unique = sorted(set(request_ids))
    table = INFERENCE_LOG
    with engine.connect() as connection:
        # Bounded IN lists: SQLite allows 32,766 parameters, and long lists plan slowly.
        for start in range(0, len(unique), 1000):
            chunk = unique[start : start + 1000]
            query = (
                sa.select(table.c.request_id)
                .where(table.c.model == model, table.c.request_id.in_(chunk))
                .distinct()
            )
            found.update(connection.execute(query).scalars())
    return found


class LogStore:
    """The inference log and feedback tables at one URL, for a serving process.

    Serving calls its writers from worker threads (``driftline_serving.log_writer``). The
    tables are created on first use, so a PostgreSQL server that is down at start is no reason
    not to serve: the caller buffers rows until it answers. After a successful write of
    predictions or sketches, at most once every ``MAINTENANCE_SECONDS``, the writing thread
    also creates day partitions ahead and applies retention (``partitions.maintain``).
    """

    def __init__(self, engine: sa.Engine, retention_days: int | None = None) -> None:
        """Use ``engine``; ``open_store`` builds one from a URL.

        ``retention_days``: days of predictions and sketches kept; 0 or None keeps all.
        """
        self.engine = engine
        self.retention_days = retention_days
        self._schema_ready = False
        self._maintenance_due = 0.0
        self._maintenance_lock = threading.Lock()

    def _ready(self) -> sa.Engine:
        if not self._schema_ready:
            create_schema(self.engine)
            self._schema_ready = True
        return self.engine

    def _maintain(self) -> None:
        now = time.time()
        # Non-blocking: another writer thread already maintaining is as good, and waiting
        # for it would hold back this thread's rows.
        if now < self._maintenance_due or not self._maintenance_lock.acquire(blocking=False):
            return
        try:
            # Due again in an hour whatever happens: a failing run is not retried per batch.
            self._maintenance_due = now + MAINTENANCE_SECONDS
            partitions.maintain(self.engine, self.retention_days, now)
        except Exception as exc:  # any store failure: the rows are written, serving goes on
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            logger.warning("inference log maintenance failed, next try in an hour: %s", reason)
        finally:
            self._maintenance_lock.release()

    def write(self, records: Sequence[LogRecord]) -> None:
        """Insert predictions (``insert_batch``); then maintenance when due."""
        insert_batch(self._ready(), records)
        self._maintain()

    def write_sketches(self, records: Sequence[SketchRecord]) -> None:
        """Insert sealed sketch buckets (``insert_sketches``); then maintenance when due."""
        insert_sketches(self._ready(), records)
        self._maintain()

    def write_feedback(self, labels: Sequence[Feedback]) -> None:
        """Store labels (``upsert_feedback``)."""
        upsert_feedback(self._ready(), labels)

    def served(self, model: str, request_ids: Sequence[str]) -> set[str]:
        """Which request ids have a logged prediction (``served_request_ids``)."""
        return served_request_ids(self._ready(), model, request_ids)


def open_store(url: str, retention_days: int | None = None) -> LogStore:
    """The store at ``url``, its tables created now for SQLite.

    ``retention_days`` as for ``LogStore``. A SQLite file is local, so one that cannot be
    created now will not appear later: raises ValueError (one line, with the cause) at once.
    """
    try:
        store = LogStore(engine_for(url), retention_days)
        if store.engine.dialect.name == "sqlite":
            store._ready()
    except (OSError, sa.exc.ArgumentError, sa.exc.OperationalError) as exc:
        reason = getattr(exc, "strerror", None) or str(getattr(exc, "orig", None) or exc)
        raise ValueError(f"cannot open the inference log: {reason}") from exc
    return store


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
    # A store an earlier release created has no sample_rate yet (serving adds it): rate 1.
    columns = [c for c in table.columns if c.name in _present_columns(engine, table)]
    query = sa.select(*columns).where(table.c.model == model)
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
            sample_rate=row.get("sample_rate", 1.0),
        )
        for row in reversed(rows)
    ]


def read_labelled(
    engine: sa.Engine, model: str, *, since: float, until: float, version: str | None = None
) -> Labelled:
    """Predictions of ``model`` served in ``[since, until)`` (Unix seconds) with their labels.

    Every variant's rows come back, shadow rows included: a shadow answer carries the request
    id of the champion's, so one label scores both. Rows are in serving order. Read in chunks
    of ``READ_CHUNK_ROWS`` straight into arrays, so a million rows never exist as Python
    objects at once.
    """
    log, feedback = INFERENCE_LOG, FEEDBACK
    same_request = sa.and_(
        feedback.c.model == log.c.model, feedback.c.request_id == log.c.request_id
    )
    selected = (
        log.c.ts, log.c.version, log.c.variant, log.c.prediction, log.c.probability,
        feedback.c.label, feedback.c.arrived,
    )  # fmt: skip
    query = (
        sa.select(*selected)
        .select_from(log.outerjoin(feedback, same_request))
        .where(log.c.model == model, log.c.ts >= since, log.c.ts < until)
        .order_by(log.c.ts, log.c.id)
    )
    if version is not None:
        query = query.where(log.c.version == version)
    parts: list[Labelled] = []
    # One str object per distinct version and variant, however many rows name it.
    names: dict[str, str] = {}
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=READ_CHUNK_ROWS).execute(query)
        for chunk in result.partitions():
            n = len(chunk)
            parts.append(
                Labelled(
                    ts=np.fromiter((r[0] for r in chunk), np.float64, n),
                    version=np.array([names.setdefault(r[1], r[1]) for r in chunk], object),
                    variant=np.array([names.setdefault(r[2], r[2]) for r in chunk], object),
                    prediction=np.fromiter((r[3] for r in chunk), np.int8, n),
                    probability=np.fromiter((r[4] for r in chunk), np.float64, n),
                    label=np.fromiter((-1 if r[5] is None else r[5] for r in chunk), np.int8, n),
                    arrived=np.fromiter(
                        (np.nan if r[6] is None else r[6] for r in chunk), np.float64, n
                    ),
                )
            )
    fields = [f.name for f in dataclasses.fields(Labelled)]
    if not parts:
        empty = {"version": object, "variant": object, "prediction": np.int8, "label": np.int8}
        return Labelled(**{f: np.empty(0, dtype=empty.get(f, np.float64)) for f in fields})
    return Labelled(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


@dataclass(frozen=True)
class LabelledRequest:
    """One served request with its label: what retraining on recent traffic learns from."""

    request_id: str
    ts: float
    features: dict[str, Any]
    label: int


def read_labelled_requests(
    engine: sa.Engine, model: str, *, since: float, until: float
) -> list[LabelledRequest]:
    """Labelled requests of ``model`` served in ``[since, until)``, oldest first, one per id.

    A request answered twice (a shadow copy beside the champion's answer, or a client's
    retry) has one features object and one label: it is returned once, at its first serving.
    """
    log, feedback = INFERENCE_LOG, FEEDBACK
    same_request = sa.and_(
        feedback.c.model == log.c.model, feedback.c.request_id == log.c.request_id
    )
    query = (
        sa.select(log.c.request_id, log.c.ts, log.c.features, feedback.c.label)
        .select_from(log.join(feedback, same_request))
        .where(log.c.model == model, log.c.ts >= since, log.c.ts < until)
        .order_by(log.c.ts, log.c.id)
    )
    seen: set[str] = set()
    out = []
    with engine.connect() as connection:
        for request_id, ts, features, label in connection.execute(query):
            if request_id in seen:
                continue
            seen.add(request_id)
            out.append(LabelledRequest(request_id, ts, json.loads(features), int(label)))
    return out


def _present_columns(engine: sa.Engine, table: sa.Table) -> set[str]:
    """The columns ``table`` has in the store (none when it does not exist).

    Readers (drift checks, the operator) may meet a store an earlier release created and no
    new serving pod has upgraded yet; they read what is there rather than fail.
    """
    inspector = sa.inspect(engine)
    if not inspector.has_table(table.name):
        return set()
    return {column["name"] for column in inspector.get_columns(table.name)}


def count_rows(engine: sa.Engine, model: str | None = None) -> int:
    """Number of logged predictions (of one model, when given)."""
    query = sa.select(sa.func.count()).select_from(INFERENCE_LOG)
    if model is not None:
        query = query.where(INFERENCE_LOG.c.model == model)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())
