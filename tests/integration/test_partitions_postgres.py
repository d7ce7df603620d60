"""Day partitions of the inference log on a real PostgreSQL: created once however many pods
race, rows routed to their day (or kept in the DEFAULT partition), old days dropped whole,
tables of earlier releases left unpartitioned with DELETE retention, and every reader and
writer of ``driftline.inference_log`` unchanged on top."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import count
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from driftline import partitions
from driftline.inference_log import (
    DRIFT_SKETCH,
    INFERENCE_LOG,
    METADATA,
    Feedback,
    LogRecord,
    LogStore,
    SketchRecord,
    count_rows,
    create_schema,
    engine_for,
    insert_batch,
    insert_sketches,
    read_labelled,
    read_labelled_requests,
    read_sketches,
    read_window,
    served_request_ids,
    upsert_feedback,
    window_rows,
)
from driftline.partitions import DAY_SECONDS, day_bounds, drop_expired, ensure_partitions
from driftline.sketch import SealedBucket
from tests.integration.postgres import PostgresServer

pytestmark = pytest.mark.integration

LOG, SKETCH = INFERENCE_LOG.name, DRIFT_SKETCH.name
TABLES = (INFERENCE_LOG, DRIFT_SKETCH)
# Noon, 2025-03-10 UTC: a fixed "now", so that days and cutoffs are known.
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC).timestamp()
MARCH = [date(2025, 3, d) for d in range(1, 32)]
FAR_PAST, FAR_FUTURE = 0.0, datetime(2100, 1, 1, tzinfo=UTC).timestamp()
_databases = count()


@pytest.fixture
def url(postgres: PostgresServer) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL."""
    yield postgres.fresh_database(f"partitions_{next(_databases)}")


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = engine_for(url)
    yield engine
    engine.dispose()


def _record(ts: float, request_id: str = "r", model: str = "m") -> LogRecord:
    return LogRecord(ts, model, "1", "champion", request_id, {"age": 30}, 1, 0.75, 2.0)


def _sketch(start: float, pod: str = "pod-a") -> SketchRecord:
    counts = np.array([3, 4], "<u4").tobytes()
    sample = np.array([[0.5]], "<f4").tobytes()
    bucket = SealedBucket(start, 60.0, 7, 2, counts, sample, 1, 1.0)
    return SketchRecord("m", "1", "champion", pod, "layout01", bucket)


def _noon(day: date) -> float:
    return day_bounds(day)[0] + DAY_SECONDS / 2


def _kind(engine: sa.Engine, table: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
        ).scalar()


def _partitions(engine: sa.Engine, table: str) -> list[str]:
    query = sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
    )
    with engine.connect() as connection:
        return list(connection.execute(query, {"t": table}).scalars())


def _placement(engine: sa.Engine, table: str, key: str) -> dict[float, str]:
    """Each row's key and the partition that holds it."""
    query = sa.text(f"SELECT {key}, tableoid::regclass::text FROM {table}")
    with engine.connect() as connection:
        return dict(connection.execute(query).all())


def _names(table: str, days: list[date]) -> list[str]:
    return [partitions.partition_name(table, day) for day in days]


def _concurrently(url: str, work: Callable[[sa.Engine], object], pods: int = 8) -> None:
    """Run ``work`` in ``pods`` threads at once, each with its own engine; raise the first
    error any of them met."""
    start = threading.Barrier(pods)
    errors: list[BaseException] = []

    def pod() -> None:
        engine = engine_for(url)
        try:
            start.wait()
            work(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=pod) for _ in range(pods)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_tables_are_created_partitioned_by_day_as_declared(engine: sa.Engine) -> None:
    create_schema(engine)
    today = datetime.now(UTC).date()
    days = [today + timedelta(days=n) for n in range(3)]
    inspector = sa.inspect(engine)
    for table, key in ((INFERENCE_LOG, "ts"), (DRIFT_SKETCH, "start")):
        assert _kind(engine, table.name) == "p"
        assert _partitions(engine, table.name) == sorted(
            [*_names(table.name, days), partitions.default_partition_name(table.name)]
        )
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == ["id", key]
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name: c.nullable for c in table.columns}
        indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
        assert indexes == {i.name: [c.name for c in i.columns] for i in table.indexes}
    assert _kind(engine, "driftline_feedback") == "r"
    # Creating again is a no-op.
    create_schema(engine)
    assert len(_partitions(engine, LOG)) == 4


def test_rows_land_in_their_day_and_strays_in_the_default_partition(engine: sa.Engine) -> None:
    partitions.create_partitioned(engine, TABLES, NOW)
    march_11 = day_bounds(MARCH[10])[0]
    times = [_noon(MARCH[9]), march_11, march_11 - 1e-6, _noon(MARCH[11]), FAR_PAST, FAR_FUTURE]
    insert_batch(engine, [_record(ts, f"r{i}") for i, ts in enumerate(times)])
    insert_sketches(engine, [_sketch(ts) for ts in times])
    for table, key in ((LOG, "ts"), (SKETCH, "start")):
        assert _placement(engine, table, key) == {
            times[0]: f"{table}_p20250310",
            times[1]: f"{table}_p20250311",
            times[2]: f"{table}_p20250310",
            times[3]: f"{table}_p20250312",
            FAR_PAST: f"{table}_default",
            FAR_FUTURE: f"{table}_default",
        }
    assert [r.ts for r in read_window(engine, "m", "1")] == sorted(times)


def test_a_days_rows_in_the_default_partition_move_into_its_new_partition(
    engine: sa.Engine,
) -> None:
    partitions.create_partitioned(engine, TABLES, NOW)
    # The 15th has no partition yet: its row waits in the DEFAULT partition.
    stray = _noon(MARCH[14])
    insert_batch(engine, [_record(stray, "early"), _record(FAR_FUTURE, "later")])
    assert _placement(engine, LOG, "ts")[stray] == f"{LOG}_default"
    created = ensure_partitions(engine, NOW + 4 * DAY_SECONDS)
    assert sorted(created) == sorted(_names(LOG, MARCH[13:16]) + _names(SKETCH, MARCH[13:16]))
    assert _placement(engine, LOG, "ts") == {
        stray: f"{LOG}_p20250315",
        FAR_FUTURE: f"{LOG}_default",
    }
    # The moved-into partition carries the parent's indexes, its primary key included.
    with engine.connect() as connection:
        indexed = connection.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"),
            {"t": f"{LOG}_p20250315"},
        ).scalars()
        definitions = " | ".join(indexed)
    assert "UNIQUE INDEX" in definitions and "(id, ts)" in definitions
    assert "(model, version, ts)" in definitions and "(model, request_id)" in definitions
    insert_batch(engine, [_record(stray + 1, "after")])
    assert count_rows(engine) == 3


def test_drop_expired_drops_exactly_the_old_days_and_their_rows(engine: sa.Engine) -> None:
    partitions.create_partitioned(engine, TABLES, NOW)
    for day in MARCH[:9]:
        ensure_partitions(engine, _noon(day), ahead=0)
    insert_batch(engine, [_record(_noon(day), f"r{day.day}") for day in MARCH[:12]])
    insert_batch(engine, [_record(FAR_PAST, "past"), _record(FAR_FUTURE, "future")])
    insert_sketches(engine, [_sketch(_noon(day)) for day in MARCH[:12]])

    # Three days before noon on the 10th is noon on the 7th: the 7th keeps its afternoon.
    expired = drop_expired(engine, 3, NOW)
    assert sorted(expired.partitions) == sorted(_names(LOG, MARCH[:6]) + _names(SKETCH, MARCH[:6]))
    assert expired.rows == 1  # the 1970 row, from the DEFAULT partition
    for table in (LOG, SKETCH):
        assert _partitions(engine, table) == sorted(
            [*_names(table, MARCH[6:12]), f"{table}_default"]
        )
    assert [r.ts for r in read_window(engine, "m", None)] == [
        *[_noon(day) for day in MARCH[6:12]],
        FAR_FUTURE,
    ]
    sketches = list(read_sketches(engine, "m", "1", since=0, until=FAR_FUTURE))
    assert sum(len(chunk.pods) for chunk in sketches) == 6

    # Again, or with retention off: nothing more goes.
    assert drop_expired(engine, 3, NOW) == partitions.Expired((), 0)
    assert drop_expired(engine, 0, NOW + 365 * DAY_SECONDS).partitions == ()
    assert drop_expired(engine, None, NOW + 365 * DAY_SECONDS).partitions == ()
    assert count_rows(engine) == 7


def test_racing_pods_create_move_and_drop_without_failing(url: str, engine: sa.Engine) -> None:
    _concurrently(url, lambda e: partitions.create_partitioned(e, TABLES, NOW))
    assert _partitions(engine, LOG) == sorted([*_names(LOG, MARCH[9:12]), f"{LOG}_default"])
    insert_batch(engine, [_record(_noon(MARCH[13]), "stray")])
    for days in range(1, 6):  # each step adds a day; the 14th's row moves in under the race
        _concurrently(url, partial(ensure_partitions, now=NOW + days * DAY_SECONDS))
    assert _partitions(engine, LOG) == sorted([*_names(LOG, MARCH[9:17]), f"{LOG}_default"])
    assert _placement(engine, LOG, "ts") == {_noon(MARCH[13]): f"{LOG}_p20250314"}
    _concurrently(url, lambda e: drop_expired(e, 2, NOW + 5 * DAY_SECONDS))
    assert _partitions(engine, LOG) == sorted([*_names(LOG, MARCH[12:17]), f"{LOG}_default"])
    assert count_rows(engine) == 1


def test_a_table_of_an_earlier_release_keeps_working_with_delete_retention(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    METADATA.create_all(engine)  # what releases before partitioning created
    insert_batch(engine, [_record(_noon(MARCH[day]), f"old{day}") for day in range(10)])
    with caplog.at_level(logging.WARNING, logger="driftline.partitions"):
        create_schema(engine)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "driftline.partitions"]
    assert f"{SKETCH}, {LOG} predate day partitions" in warning
    assert _kind(engine, LOG) == "r" and _partitions(engine, LOG) == []
    insert_batch(engine, [_record(_noon(MARCH[day]), f"new{day}") for day in range(10)])

    monkeypatch.setattr(partitions, "DELETE_BATCH_ROWS", 3)  # several batches
    expired = drop_expired(engine, 3, NOW)
    assert expired == partitions.Expired((), 12)  # the 1st to the 6th, two rows a day
    assert [r.ts for r in read_window(engine, "m", None)] == sorted(
        2 * [_noon(day) for day in MARCH[6:10]]
    )
    assert drop_expired(engine, 3, NOW).rows == 0


def test_the_log_readers_and_writers_work_on_partitioned_tables(engine: sa.Engine) -> None:
    create_schema(engine)
    now = time.time()
    # Yesterday is behind the partitions made ahead: those rows go to the DEFAULT partition.
    times = [now - DAY_SECONDS, now - 60, now]
    insert_batch(engine, [_record(ts, f"q{i}") for i, ts in enumerate(times)])
    assert [r.request_id for r in read_window(engine, "m", "1")] == ["q0", "q1", "q2"]
    assert [r.ts for r in read_window(engine, "m", "1", lookback_seconds=120, now=now)] == times[1:]
    assert window_rows(engine, "m", "1", since=now - 120, until=now + 1, limit=10) == (2, False)
    assert served_request_ids(engine, "m", ["q1", "nope"]) == {"q1"}

    upsert_feedback(engine, [Feedback(now, "m", "q1", 1), Feedback(now + 1, "m", "q1", 0)])
    upsert_feedback(engine, [Feedback(now + 2, "m", "q2", 1)])
    labelled = read_labelled(engine, "m", since=now - 2 * DAY_SECONDS, until=now + 1)
    assert list(labelled.label) == [-1, 0, 1]
    assert list(labelled.ts) == times
    assert np.isnan(labelled.arrived[0]) and labelled.arrived[1] == now
    requests = read_labelled_requests(engine, "m", since=now - 120, until=now + 1)
    assert [(r.request_id, r.label) for r in requests] == [("q1", 0), ("q2", 1)]

    insert_sketches(engine, [_sketch(now - DAY_SECONDS, "a"), _sketch(now, "b")])
    (chunk,) = read_sketches(engine, "m", "1", since=now - 2 * DAY_SECONDS, until=now + 1)
    assert sorted(chunk.pods) == ["a", "b"] and list(chunk.requests) == [7, 7]


def test_the_store_maintains_on_its_first_write_and_a_failure_never_stops_writes(
    postgres: PostgresServer, url: str, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    create_schema(engine)
    week_ago = time.time() - 7 * DAY_SECONDS
    ensure_partitions(engine, week_ago, ahead=0)
    old = partitions.partition_name(LOG, partitions.day_of(week_ago))
    store = LogStore(engine_for(url), retention_days=3)
    store.write([_record(time.time(), "first")])
    store.engine.dispose()
    assert old not in _partitions(engine, LOG)

    # A role that may write but not drop tables, as a production database user may be: the
    # store's maintenance fails, its writes do not.
    ensure_partitions(engine, week_ago, ahead=0)
    with engine.begin() as connection:
        for statement in (
            "CREATE ROLE writer LOGIN",
            "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO writer",
            "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO writer",
        ):
            connection.execute(sa.text(statement))
    writer = engine_for(url.replace("//driftline@", "//writer@"))
    store = LogStore(writer, retention_days=3)
    try:
        with caplog.at_level(logging.WARNING, logger="driftline.inference_log"):
            store.write([_record(time.time(), "second")])
            store.write_sketches([_sketch(time.time())])
            store.write([_record(time.time(), "third")])
    finally:
        writer.dispose()
        with engine.begin() as connection:
            connection.execute(sa.text("DROP OWNED BY writer"))
            connection.execute(sa.text("DROP ROLE writer"))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "driftline.inference_log"]
    assert warning.startswith("inference log maintenance failed, next try in an hour: ")
    assert "must be owner" in warning and "\n" not in warning
    assert old in _partitions(engine, LOG)
    assert count_rows(engine) == 3


def test_sqlite_keeps_plain_tables_and_its_store_deletes_expired_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = engine_for(url)
    create_schema(engine)
    now = time.time()
    insert_batch(engine, [_record(now - d * DAY_SECONDS, f"r{d}") for d in (0, 1, 5, 9)])
    insert_sketches(engine, [_sketch(now - 9 * DAY_SECONDS), _sketch(now)])
    LogStore(engine, retention_days=3).write([_record(now, "new")])
    assert sorted(r.request_id for r in read_window(engine, "m", None)) == ["new", "r0", "r1"]
    (chunk,) = read_sketches(engine, "m", "1", since=0, until=now + 1)
    assert len(chunk.pods) == 1
    assert sa.inspect(engine).get_table_names() == sorted(METADATA.tables)
    engine.dispose()
