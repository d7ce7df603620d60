"""Opening the inference log store for a batch job: no silent new SQLite file, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from driftline_training.errors import LogStoreError

T = TypeVar("T")


def from_store(shown: str, call: Callable[[], T]) -> T:
    """``call()``, its SQLAlchemy errors raised as LogStoreError naming ``shown`` (exit 8)."""
    import sqlalchemy.exc

    try:
        return call()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LogStoreError(f"cannot read the inference log at {shown}: {first}") from exc


def existing_store(url: str) -> str:
    """``url``, unless it names a SQLite file that does not exist (LogStoreError).

    SQLite creates missing database files on connect; a typo must not look like no traffic.
    """
    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.exists():
            raise LogStoreError(f"inference log store not found: {path}")
    return url


def masked(url: str) -> str:
    """The URL with its password hidden, for messages and reports."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url
