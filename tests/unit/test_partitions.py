"""The day arithmetic of the inference log's partitions: bounds, names, which days expire."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from driftline.partitions import (
    DAY_SECONDS,
    TIME_KEYS,
    day_bounds,
    day_of,
    days_ahead,
    default_partition_name,
    expired_partitions,
    partition_day,
    partition_name,
    retention_cutoff,
)

TABLE = "driftline_inference_log"
# 2025-03-10 00:00:00 UTC
MARCH_10 = datetime(2025, 3, 10, tzinfo=UTC).timestamp()


def test_day_bounds_are_utc_midnights_in_unix_seconds() -> None:
    assert day_bounds(date(1970, 1, 1)) == (0.0, 86_400.0)
    assert day_bounds(date(2025, 3, 10)) == (MARCH_10, MARCH_10 + DAY_SECONDS)
    # 2024-02-29 exists, and a daylight-saving change in some zone changes nothing in UTC.
    start, end = day_bounds(date(2024, 2, 29))
    assert datetime.fromtimestamp(start, UTC) == datetime(2024, 2, 29, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2024, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "day"),
    [
        (MARCH_10, date(2025, 3, 10)),
        (MARCH_10 - 0.000001, date(2025, 3, 9)),
        (MARCH_10 + DAY_SECONDS - 0.5, date(2025, 3, 10)),
        (0.0, date(1970, 1, 1)),
        (-1.0, date(1969, 12, 31)),
    ],
)
def test_a_time_belongs_to_the_day_whose_bounds_hold_it(ts: float, day: date) -> None:
    assert day_of(ts) == day
    start, end = day_bounds(day)
    assert start <= ts < end


def test_names_carry_the_day_and_parse_back() -> None:
    assert partition_name(TABLE, date(2025, 3, 1)) == "driftline_inference_log_p20250301"
    assert partition_day(TABLE, "driftline_inference_log_p20250301") == date(2025, 3, 1)
    assert default_partition_name(TABLE) == "driftline_inference_log_default"
    # Names PostgreSQL accepts unquoted, within its 63 bytes.
    for table in TIME_KEYS:
        name = partition_name(table, date(9999, 12, 31))
        assert len(name) <= 63 and name == name.lower()


@pytest.mark.parametrize(
    "name",
    [
        "driftline_inference_log_default",
        "driftline_inference_log_p2025030",
        "driftline_inference_log_p202503011",
        "driftline_inference_log_p20250230",
        "driftline_inference_log_pabcdefgh",
        "driftline_drift_sketch_p20250301",
        "other_driftline_inference_log_p20250301",
    ],
)
def test_other_names_are_no_day_partitions(name: str) -> None:
    assert partition_day(TABLE, name) is None


def test_partitions_are_made_for_today_and_two_days_ahead() -> None:
    assert days_ahead(MARCH_10 + 3600) == [date(2025, 3, 10), date(2025, 3, 11), date(2025, 3, 12)]
    # The last second of a month and year.
    new_year = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    assert days_ahead(new_year - 1, ahead=1) == [date(2024, 12, 31), date(2025, 1, 1)]
    assert days_ahead(MARCH_10, ahead=0) == [date(2025, 3, 10)]
    with pytest.raises(ValueError, match="ahead"):
        days_ahead(MARCH_10, ahead=-1)


def test_the_cutoff_is_now_minus_whole_days_and_zero_keeps_everything() -> None:
    assert retention_cutoff(MARCH_10, 7) == MARCH_10 - 7 * DAY_SECONDS
    assert retention_cutoff(MARCH_10, 0) is None
    assert retention_cutoff(MARCH_10, None) is None
    with pytest.raises(ValueError, match="retention_days"):
        retention_cutoff(MARCH_10, -1)


def test_only_days_ending_by_the_cutoff_expire() -> None:
    names = [partition_name(TABLE, date(2025, 3, d)) for d in range(1, 13)]
    names += [default_partition_name(TABLE), "driftline_drift_sketch_p20250301"]
    # At noon on the 10th with 3 days kept, the cutoff is noon on the 7th: the 7th still
    # holds an afternoon to keep, the 6th ended before the cutoff.
    noon = MARCH_10 + DAY_SECONDS / 2
    expired = expired_partitions(TABLE, reversed(names), noon, 3)
    assert expired == [partition_name(TABLE, date(2025, 3, d)) for d in range(1, 7)]
    # A day ending exactly at the cutoff holds nothing newer: it goes.
    assert expired_partitions(TABLE, names, MARCH_10, 3)[-1] == partition_name(
        TABLE, date(2025, 3, 6)
    )
    assert expired_partitions(TABLE, names, MARCH_10 - 1, 3)[-1] == partition_name(
        TABLE, date(2025, 3, 5)
    )
    assert expired_partitions(TABLE, names, noon, 0) == []
    assert expired_partitions(TABLE, names, noon, None) == []


def test_the_partition_keys_are_columns_of_the_declared_tables() -> None:
    from driftline.inference_log import DRIFT_SKETCH, INFERENCE_LOG

    assert {t.name: t.c[TIME_KEYS[t.name]].name for t in (INFERENCE_LOG, DRIFT_SKETCH)} == {
        "driftline_inference_log": "ts",
        "driftline_drift_sketch": "start",
    }


def test_the_arithmetic_imports_without_sqlalchemy() -> None:
    code = "import sys, driftline.partitions; assert 'sqlalchemy' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
