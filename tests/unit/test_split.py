import uuid

import pytest

from driftline_serving.split import BPS_TOTAL, bucket, choose, parse_split


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
