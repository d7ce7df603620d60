"""Seniority priorities of the operator's kopf peering."""

from __future__ import annotations

import pytest

from driftline_operator.peering import TIEBREAKS, seniority_priority


def test_an_older_replica_outranks_a_newer_one_whatever_their_draws() -> None:
    older = seniority_priority(1_800_000_000.000, 0)
    newer = seniority_priority(1_800_000_000.001, TIEBREAKS - 1)
    assert older > newer


def test_replicas_started_in_the_same_millisecond_are_ordered_by_their_draw() -> None:
    assert seniority_priority(1_800_000_000.0, 7) != seniority_priority(1_800_000_000.0, 8)


def test_priorities_stay_exact_in_json_numbers() -> None:
    assert seniority_priority(0.0, TIEBREAKS - 1) < 2**53


@pytest.mark.parametrize(("started_at", "tiebreak"), [(1.0, -1), (1.0, TIEBREAKS), (-1.0, 0)])
def test_out_of_range_inputs_are_refused(started_at: float, tiebreak: int) -> None:
    with pytest.raises(ValueError):
        seniority_priority(started_at, tiebreak)
