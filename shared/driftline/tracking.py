"""Where MLflow lives: a server when one is configured, else an embedded project-local store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrackingTarget:
    """A tracking URI, and the artifact root to give new experiments (embedded store only)."""

    uri: str
    artifact_root: str | None


def resolve_tracking(uri: str | None, home: Path) -> TrackingTarget:
    """Use ``uri`` when given; otherwise a SQLite store and artifact folder under ``home``.

    The embedded default lets ``driftline train`` run on a fresh machine with no server, and
    keeps every file in one folder instead of MLflow's cwd-relative ``mlruns``.
    """
    if uri:
        return TrackingTarget(uri, None)
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    return TrackingTarget(f"sqlite:///{home / 'mlflow.db'}", (home / "artifacts").as_uri())
