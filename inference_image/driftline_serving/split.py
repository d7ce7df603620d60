"""Deterministic traffic split (pure): a stable hash of the request id picks the variant."""

from __future__ import annotations

import hashlib

from driftline.registry_conventions import CHALLENGER, CHAMPION

BPS_TOTAL = 10_000
# Set by the router on a shadow copy: the challenger logs its answer as variant ``shadow``.
SHADOW_HEADER = "x-driftline-shadow"


def bucket(request_id: str) -> int:
    """The request id's bucket in [0, 10000): the same id always lands in the same bucket.

    BLAKE2b rather than Python's ``hash``: that one is salted per process, so replicas and
    restarts would disagree.
    """
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BPS_TOTAL


def choose(request_id: str, challenger_bps: int) -> str:
    """The variant for a request: challenger when its bucket falls in the challenger's share."""
    return CHALLENGER if bucket(request_id) < challenger_bps else CHAMPION


def shadowed(request_id: str, shadow_bps: int) -> bool:
    """Whether a champion request's copy also goes to the challenger.

    Hashed with a prefix, so the shadowed share is independent of the split's buckets.
    """
    return bucket("shadow:" + request_id) < shadow_bps


def logged(request_id: str, sample_rate: float) -> bool:
    """Whether a request's row goes to the inference log at ``sample_rate`` (0..1).

    Hashed with its own prefix, independent of the split and the shadow share, so every
    variant logs the same share. Deterministic, so the feedback path knows which ids have rows:
    an unknown id the hash says was logged is refused (a typo, or not written yet); one it says
    was not cannot be told from a typo, and is acknowledged without being stored. Steps of one
    basis point.
    """
    return bucket("log:" + request_id) < round(sample_rate * BPS_TOTAL)


def parse_split(text: str) -> int:
    """Basis points from a split file's content (an integer 0..10000); ValueError otherwise."""
    value = int(text.strip())
    if not 0 <= value <= BPS_TOTAL:
        raise ValueError(f"split must be within 0..{BPS_TOTAL} basis points, got {value}")
    return value
