"""The inference log writer: the table appears on first write; a dead SQLite path fails at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from driftline.inference_log import (
    LogRecord,
    count_rows,
    engine_for,
    open_store,
    read_sketches,
    read_window,
    window_rows,
)


def test_writes_land_in_the_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    record = LogRecord(1.0, "m", "1", "champion", "r1", {"age": 30}, 1, 0.9, 2.0)
    open_store(url).write([record, record])
    engine = engine_for(url)
    assert count_rows(engine, "m") == 2
    assert read_window(engine, "m", "1")[0] == record


def test_a_sqlite_file_that_cannot_be_created_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"^cannot open the inference log: ") as refused:
        open_store(f"sqlite:///{blocker / 'log.db'}")
    assert "\n" not in str(refused.value)


def test_a_store_from_the_release_before_sketches_is_read_and_then_upgraded(
    tmp_path: Path,
) -> None:
    """No sample_rate column, no sketch table: readers read it, the next writer upgrades it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE driftline_inference_log (id INTEGER PRIMARY KEY, ts FLOAT NOT NULL,"
                " model VARCHAR(200) NOT NULL, version VARCHAR(50) NOT NULL, variant VARCHAR(20)"
                " NOT NULL, request_id VARCHAR(200) NOT NULL, features TEXT NOT NULL,"
                " prediction SMALLINT NOT NULL, probability FLOAT NOT NULL,"
                " latency_ms FLOAT NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO driftline_inference_log (ts, model, version, variant, request_id,"
                " features, prediction, probability, latency_ms)"
                " VALUES (100, 'm', '1', 'champion', 'r1', '{\"age\": 30}', 1, 0.9, 2)"
            )
        )
    (old,) = read_window(engine, "m", "1")
    assert old.sample_rate == 1.0 and old.features == {"age": 30}
    assert window_rows(engine, "m", "1", since=0, until=200, limit=10) == (1, False)
    assert list(read_sketches(engine, "m", "1", since=0, until=200)) == []
    record = LogRecord(150.0, "m", "1", "champion", "r2", {"age": 31}, 0, 0.2, 1.0, 0.5)
    open_store(url).write([record])
    assert [r.sample_rate for r in read_window(engine, "m", "1")] == [1.0, 0.5]
    assert window_rows(engine, "m", "1", since=0, until=200, limit=10) == (2, True)
