"""Which replica acts when several run: kopf peering, ranked by seniority (pure).

kopf pauses a replica while it sees a live peer of higher priority, and freezes every replica
that shares its priority with a live peer (kopf docs, "Peering"). Ranking by start time gives
leader election without a takeover on restart: the oldest live replica acts, a replacement
waits behind it, and when the acting one dies the next oldest resumes once the dead one's
record is older than the peering lifetime.
"""

from __future__ import annotations

# Past any start time in milliseconds until the year 2255; keeps priorities positive and,
# times TIEBREAKS, below 2**53.
EPOCH_MS = 9 * 10**12
# Random draws that separate replicas started in the same millisecond.
TIEBREAKS = 1000


def seniority_priority(started_at: float, tiebreak: int) -> int:
    """Kopf peering priority of a replica started at ``started_at`` (Unix seconds).

    Earlier starts get higher priorities; ``tiebreak`` in ``[0, TIEBREAKS)`` orders replicas
    started in the same millisecond. The result stays below 2**53, so it survives JSON
    round trips through the API server exactly. Raises ValueError for a tiebreak out of range
    or a start time outside [0, EPOCH_MS) milliseconds.
    """
    started_ms = int(started_at * 1000)
    if not 0 <= tiebreak < TIEBREAKS:
        raise ValueError(f"tiebreak must be in [0, {TIEBREAKS}), got {tiebreak}")
    if not 0 <= started_ms < EPOCH_MS:
        raise ValueError(f"start time out of range: {started_at}")
    return (EPOCH_MS - started_ms) * TIEBREAKS + tiebreak
