"""Day partitions of the time-keyed inference log tables on PostgreSQL, and their retention.

On PostgreSQL ``driftline_inference_log`` (by ``ts``) and ``driftline_drift_sketch`` (by
``start``) are created ``PARTITION BY RANGE``, one partition per UTC day named
``<table>_pYYYYMMDD`` covering ``[midnight, next midnight)`` in Unix seconds, plus a DEFAULT
partition. Retention then drops whole days, which costs a catalog change instead of a DELETE
of millions of rows and the vacuum after it. Tables created unpartitioned by earlier releases,
and SQLite (the embedded default), keep their shape; retention deletes their old rows in
bounded batches instead.

The date arithmetic at the top is pure and needs nothing but the standard library; the
functions below it talk to the database. They import SQLAlchemy when called, so that the
arithmetic can be imported (and tested) without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

logger = logging.getLogger("driftline.partitions")

DAY_SECONDS = 86_400
EPOCH = date(1970, 1, 1)
DAYS_AHEAD = 2
# The partitioned tables and their partition keys (Unix seconds).
TIME_KEYS: dict[str, str] = {"driftline_inference_log": "ts", "driftline_drift_sketch": "start"}
DELETE_BATCH_ROWS = 10_000
# Deleting from a large legacy table runs in a writer's thread: bound one call, the next
# call goes on where this one stopped.
DELETE_BUDGET_SECONDS = 30.0
# Creating, attaching and dropping a partition lock the parent table. A lock request waiting
# behind a long read would queue every insert behind it; give up instead and retry later.
LOCK_TIMEOUT = "5s"

# What a racing pod's identical DDL looks like: duplicate_table, or unique_violation on the
# catalog row of a table created by a transaction that committed while ours waited.
_DUPLICATE = frozenset({"42P07", "23505"})
# check_violation: the DEFAULT partition holds rows of the day being created.
_DEFAULT_HOLDS_ROWS = "23514"
# undefined_table: a racing pod dropped the partition first.
_GONE = "42P01"


# Pure date arithmetic.


def day_of(ts: float) -> date:
    """The UTC day holding Unix time ``ts`` (seconds).

    Raises OverflowError for a time outside the years 1 to 9999.
    """
    return EPOCH + timedelta(days=int(ts // DAY_SECONDS))


def day_bounds(day: date) -> tuple[float, float]:
    """``(start, end)`` of a UTC day in Unix seconds: its midnight and the next, end excluded.

    UTC days are all ``DAY_SECONDS`` long in Unix time (it has no leap seconds).
    """
    start = (day - EPOCH).days * DAY_SECONDS
    return float(start), float(start + DAY_SECONDS)


def partition_name(table: str, day: date) -> str:
    """The name of ``table``'s partition for ``day``: ``<table>_pYYYYMMDD``."""
    return f"{table}_p{day:%Y%m%d}"


def default_partition_name(table: str) -> str:
    """The name of ``table``'s DEFAULT partition: ``<table>_default``."""
    return f"{table}_default"


def partition_day(table: str, name: str) -> date | None:
    """The day of ``table``'s partition called ``name``, or None.

    None when ``name`` is not one ``partition_name`` makes: the DEFAULT partition, another
    table's partition, eight digits that are no date.
    """
    prefix = f"{table}_p"
    digits = name[len(prefix) :]
    if not name.startswith(prefix) or len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:  # eight digits that are no date, such as 20250230
        return None


def days_ahead(now: float, ahead: int = DAYS_AHEAD) -> list[date]:
    """The UTC days to have partitions for at ``now``: today and the next ``ahead`` days.

    Raises ValueError when ``ahead`` is negative.
    """
    if ahead < 0:
        raise ValueError(f"ahead must be 0 or more, not {ahead}")
    today = day_of(now)
    return [today + timedelta(days=n) for n in range(ahead + 1)]


def retention_cutoff(now: float, retention_days: int | None) -> float | None:
    """Unix seconds before which rows have expired at ``now``; None when everything is kept.

    ``retention_days`` 0 or None keeps everything. Raises ValueError when it is negative.
    """
    if retention_days is not None and retention_days < 0:
        raise ValueError(f"retention_days must be 0 or more, not {retention_days}")
    if not retention_days:
        return None
    return now - retention_days * DAY_SECONDS


def expired_partitions(
    table: str, names: Iterable[str], now: float, retention_days: int | None
) -> list[str]:
    """Which of ``names`` are day partitions of ``table`` that end at or before the cutoff.

    A day whose end is after ``now - retention_days`` days still holds rows to keep, so it
    stays whole. Other names (the DEFAULT partition) are never expired. Sorted oldest first.
    """
    cutoff = retention_cutoff(now, retention_days)
    if cutoff is None:
        return []
    days = {name: partition_day(table, name) for name in names}
    # One prefix and fixed-width digits: the names sort as their days do.
    return sorted(name for name, day in days.items() if day and day_bounds(day)[1] <= cutoff)


# The database.


@dataclass(frozen=True)
class Expired:
    """What one ``drop_expired`` call removed."""

    partitions: tuple[str, ...]
    """Expired day partitions dropped (by this call, or by a racing one just before)."""
    rows: int
    """Rows deleted from DEFAULT partitions and from tables that are not partitioned."""


def create_partitioned(engine: sa.Engine, tables: Sequence[sa.Table], now: float) -> None:
    """Create ``tables`` partitioned by day where missing, and their partitions around ``now``.

    PostgreSQL only; elsewhere nothing happens (``create_all`` makes plain tables). Each
    missing table is created with its columns and indexes as declared, a primary key of
    ``id`` and the partition key (PostgreSQL requires the key in every unique index), and its
    DEFAULT partition, in one transaction; then ``ensure_partitions``. A table that exists
    unpartitioned is left as it is, with one warning line. Safe when many pods run it at once.

    Raises ValueError for a table not in ``TIME_KEYS``, and SQLAlchemy's errors when the
    database fails.
    """
    for table in tables:
        key = TIME_KEYS.get(table.name)
        if key is None or key not in table.c:
            raise ValueError(f"{table.name} is not partitioned by day (see TIME_KEYS)")
    if engine.dialect.name != "postgresql":
        return
    kinds = _kinds(engine)
    plain = sorted(t.name for t in tables if kinds[t.name] == "r")
    if plain:
        logger.warning(
            "%s predate day partitions and stay unpartitioned: retention deletes their old"
            " rows in batches instead of dropping days",
            ", ".join(plain),
        )
    for table in tables:
        if kinds[table.name] is None:
            _create_parent(engine, table, TIME_KEYS[table.name])
    ensure_partitions(engine, now)


def ensure_partitions(engine: sa.Engine, now: float, ahead: int = DAYS_AHEAD) -> list[str]:
    """Create the partitions of today and the next ``ahead`` UTC days where missing.

    PostgreSQL, partitioned tables only; returns the partitions this call created. Safe under
    concurrency: a partition a racing pod created first counts as there. When the DEFAULT
    partition already holds rows of a day (its partition was missing when they came), they
    are moved into the new partition. Raises SQLAlchemy's errors when the database fails,
    including a lock not granted within ``LOCK_TIMEOUT``.
    """
    if engine.dialect.name != "postgresql":
        return []
    kinds = _kinds(engine)
    created = []
    for table, key in TIME_KEYS.items():
        if kinds[table] != "p":
            continue
        with engine.connect() as connection:
            present = set(_partitions(connection, table))
        for day in days_ahead(now, ahead):
            name = partition_name(table, day)
            if name not in present and _create_day(engine, table, key, day):
                created.append(name)
    return created


def drop_expired(engine: sa.Engine, retention_days: int | None, now: float) -> Expired:
    """Remove rows older than ``retention_days`` days before ``now`` (Unix seconds).

    Partitioned tables lose whole day partitions ending at or before the cutoff, and the
    DEFAULT partition's rows before it. Tables that are not partitioned (SQLite, or created
    by an earlier release) have rows before the cutoff deleted, ``DELETE_BATCH_ROWS`` a
    transaction, for at most ``DELETE_BUDGET_SECONDS`` a table: the next call goes on.
    0 or None keeps everything. Idempotent, and safe when pods run it at once. Raises
    ValueError for a negative ``retention_days``, SQLAlchemy's errors when the database fails.
    """
    cutoff = retention_cutoff(now, retention_days)
    if cutoff is None:
        return Expired((), 0)
    dropped: list[str] = []
    rows = 0
    for table, kind in _kinds(engine).items():
        key = TIME_KEYS[table]
        if kind == "p":
            with engine.connect() as connection:
                names = _partitions(connection, table)
            for name in expired_partitions(table, names, now, retention_days):
                _drop(engine, name)
                dropped.append(name)
            if default_partition_name(table) in names:
                rows += _delete_before(engine, default_partition_name(table), key, cutoff)
        elif kind is not None:
            rows += _delete_before(engine, table, key, cutoff)
    if dropped or rows:
        logger.info(
            "inference log retention: dropped %d day partitions, deleted %d rows",
            len(dropped),
            rows,
        )
    return Expired(tuple(dropped), rows)


def maintain(engine: sa.Engine, retention_days: int | None, now: float) -> Expired:
    """What a serving process runs now and then: ``ensure_partitions``, then ``drop_expired``."""
    ensure_partitions(engine, now)
    return drop_expired(engine, retention_days, now)


def _kinds(engine: sa.Engine) -> dict[str, str | None]:
    """Each of ``TIME_KEYS``' tables: "p" partitioned, "r" plain, None missing."""
    if engine.dialect.name != "postgresql":
        import sqlalchemy as sa

        inspector = sa.inspect(engine)
        return {table: "r" if inspector.has_table(table) else None for table in TIME_KEYS}
    query = "SELECT relkind FROM pg_class WHERE oid = to_regclass(%(name)s)"
    with engine.connect() as connection:
        return {
            table: connection.exec_driver_sql(query, {"name": table}).scalar()
            for table in TIME_KEYS
        }


def _partitions(connection: sa.Connection, table: str) -> list[str]:
    query = (
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(%(table)s)"
    )
    return list(connection.exec_driver_sql(query, {"table": table}).scalars())


def _create_parent(engine: sa.Engine, table: sa.Table, key: str) -> None:
    import sqlalchemy as sa

    # A copy of the declared table, so that the columns, types, defaults and indexes come
    # from the one declaration; only the primary key and the partitioning differ.
    copy = table.to_metadata(sa.MetaData())
    copy.c[key].primary_key = True
    copy.append_constraint(sa.PrimaryKeyConstraint(copy.c.id, copy.c[key]))
    # With two key columns SQLAlchemy no longer makes ``id`` a sequence (BIGSERIAL) by itself.
    copy.c.id.autoincrement = True
    copy.dialect_kwargs["postgresql_partition_by"] = f"RANGE ({key})"
    quote = engine.dialect.identifier_preparer.quote
    default = quote(default_partition_name(table.name))
    try:
        with engine.begin() as connection:
            connection.execute(sa.schema.CreateTable(copy, if_not_exists=True))
            for index in copy.indexes:
                connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            # A DEFAULT partition rather than partitions created on demand: a row outside
            # every day partition (a skewed clock, maintenance that failed for days) is
            # stored by any writer in its one INSERT, with no error to catch and no DDL on
            # the write path. What it costs, a day whose rows sit in the DEFAULT partition,
            # ``_move_in`` repairs when that day's partition is created.
            connection.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {default} PARTITION OF {quote(table.name)} DEFAULT"
            )
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) not in _DUPLICATE:
            raise


def _create_day(engine: sa.Engine, table: str, key: str, day: date) -> bool:
    """Create one day partition; False when a racing pod created it first."""
    import sqlalchemy as sa

    quote = engine.dialect.identifier_preparer.quote
    start, end = day_bounds(day)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            connection.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {quote(partition_name(table, day))}"
                f" PARTITION OF {quote(table)} FOR VALUES FROM ({start!r}) TO ({end!r})"
            )
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) in _DUPLICATE:
            return False
        if _sqlstate(exc) != _DEFAULT_HOLDS_ROWS:
            raise
        return _move_in(engine, table, key, day)
    return True


def _move_in(engine: sa.Engine, table: str, key: str, day: date) -> bool:
    """Create ``day``'s partition from the DEFAULT partition's rows of that day, atomically."""
    import sqlalchemy as sa

    quote = engine.dialect.identifier_preparer.quote
    parent, default = quote(table), quote(default_partition_name(table))
    name, column = quote(partition_name(table, day)), quote(key)
    start, end = day_bounds(day)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # Writers wait (readers do not) until the commit: a row of the day inserted
            # between the move and the attach would make the attach fail.
            connection.exec_driver_sql(f"LOCK TABLE {parent} IN SHARE ROW EXCLUSIVE MODE")
            connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE {parent})")
            connection.exec_driver_sql(
                f"WITH moved AS (DELETE FROM {default} WHERE {column} >= %(start)s"
                f" AND {column} < %(end)s RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                {"start": start, "end": end},
            )
            # Attaching builds the parent's indexes, the primary key included, on the table.
            connection.exec_driver_sql(
                f"ALTER TABLE {parent} ATTACH PARTITION {name}"
                f" FOR VALUES FROM ({start!r}) TO ({end!r})"
            )
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) not in _DUPLICATE:
            raise
        return False
    logger.info("moved the rows of %s from %s into its new partition", day, default)
    return True


def _drop(engine: sa.Engine, name: str) -> None:
    import sqlalchemy as sa

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            connection.exec_driver_sql(
                f"DROP TABLE IF EXISTS {engine.dialect.identifier_preparer.quote(name)}"
            )
    except sa.exc.DBAPIError as exc:
        if _sqlstate(exc) != _GONE:
            raise


def _delete_before(engine: sa.Engine, table: str, key: str, cutoff: float) -> int:
    """Delete ``table``'s rows with ``key`` before ``cutoff`` in batches; the rows deleted."""
    import sqlalchemy as sa

    target = sa.table(table, sa.column("id"), sa.column(key))
    doomed = sa.select(target.c.id).where(target.c[key] < cutoff).limit(DELETE_BATCH_ROWS)
    statement = sa.delete(target).where(target.c.id.in_(doomed.scalar_subquery()))
    deadline = time.monotonic() + DELETE_BUDGET_SECONDS
    deleted = 0
    while True:
        # One short transaction a batch: no long lock on rows writers may be reading.
        with engine.begin() as connection:
            batch = connection.execute(statement).rowcount
        deleted += batch
        if batch < DELETE_BATCH_ROWS or time.monotonic() > deadline:
            return deleted


def _sqlstate(exc: Exception) -> str | None:
    return getattr(getattr(exc, "orig", None), "sqlstate", None)
