import logging
import os
import uuid
from pathlib import Path

import pytest

from driftline_serving.router import SplitState
from driftline_serving.settings import RouterSettings
from driftline_serving.split import BPS_TOTAL, bucket, choose, parse_split, shadowed


def test_the_same_id_always_meets_the_same_variant() -> None:
    ids = [uuid.uuid4().hex for _ in range(10_000)]
    first = [choose(i, 2500) for i in ids]
    assert [choose(i, 2500) for i in ids] == first
    # Pinned values: a change of hash function would silently re-route every experiment.
    assert [bucket(x) for x in ("request-1", "r0", "r1", "r2")] == [5140, 4821, 1600, 3130]


@pytest.mark.parametrize("bps", [0, 100, 1000, 5000, 9000, 10_000])
def test_share_is_within_one_percent_of_the_setting(bps: int) -> None:
    ids = [f"req-{n}" for n in range(10_000)]
    share = sum(choose(i, bps) == "challenger" for i in ids) / len(ids)
    assert abs(share - bps / BPS_TOTAL) <= 0.01


def test_raising_the_split_only_moves_requests_to_the_challenger() -> None:
    ids = [f"req-{n}" for n in range(5000)]
    at_10 = {i for i in ids if choose(i, 1000) == "challenger"}
    at_20 = {i for i in ids if choose(i, 2000) == "challenger"}
    assert at_10 < at_20


def test_split_file_content() -> None:
    assert parse_split(" 1500\n") == 1500
    for bad in ("-1", "10001", "ten"):
        with pytest.raises(ValueError):
            parse_split(bad)


def test_a_split_file_problem_is_logged_when_it_starts_changes_and_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The router polls the file every second: a file that stays missing must not flood the log.
    split_file = tmp_path / "split"

    def write(text: str, mtime: float) -> None:
        split_file.write_text(text)
        os.utime(split_file, (mtime, mtime))  # explicit: two writes may share a timestamp

    def polls(times: int = 5) -> list[tuple[int, str]]:
        caplog.clear()
        for _ in range(times):
            state.refresh()
        return [(r.levelno, r.getMessage()) for r in caplog.records]

    def once() -> tuple[int, str]:
        logged = polls()
        assert len(logged) == 1, logged
        return logged[0]

    write("2500", 1000.0)
    state = SplitState(RouterSettings(champion_url="http://x", split_file=split_file))
    caplog.set_level(logging.INFO, logger="driftline.router")
    assert polls() == [
        (logging.INFO, f"split is now 2500 bps to the challenger (from {split_file})")
    ]
    split_file.unlink()
    level, message = once()
    assert level == logging.ERROR
    assert message.startswith(f"split file {split_file} unusable, keeping 2500 bps: [Errno 2]")
    write("ten", 1001.0)
    level, message = once()
    assert (level, "keeping 2500 bps" in message, "ten" in message) == (logging.ERROR, True, True)
    write("4000", 1002.0)
    assert polls() == [
        (logging.INFO, f"split is now 4000 bps to the challenger (from {split_file})")
    ]
    assert state.bps == 4000
    # Gone, then back with the same content and timestamp: nothing to re-read, but say so.
    split_file.unlink()
    assert once()[0] == logging.ERROR
    write("4000", 1002.0)
    assert polls() == [(logging.INFO, f"split file {split_file} usable again, keeping 4000 bps")]


def test_the_shadowed_share_is_its_own_and_independent_of_the_split() -> None:
    ids = [f"req-{n}" for n in range(10_000)]
    shadowed_ids = {i for i in ids if shadowed(i, 2000)}
    assert abs(len(shadowed_ids) / len(ids) - 0.2) <= 0.01
    champion_ids = {i for i in ids if choose(i, 5000) == "champion"}
    # About a fifth of the champion's requests are shadowed, not a skewed slice of them.
    assert abs(len(shadowed_ids & champion_ids) / len(champion_ids) - 0.2) <= 0.02
