"""The inference log writer: the table appears on first write; a dead SQLite path fails at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.inference_log import LogRecord, count_rows, engine_for, open_store, read_window


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
