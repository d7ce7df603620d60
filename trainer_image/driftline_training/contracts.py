"""Where a feature-schema contract comes from: a ``feature_schema.json`` file or the champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from driftline.artifacts import FEATURE_SCHEMA
from driftline.registry_conventions import CHAMPION
from driftline.schema import FeatureSchema
from driftline_training.errors import DataSourceError

if TYPE_CHECKING:
    from driftline.registry import ModelRegistry


def read_schema(path: Path) -> FeatureSchema:
    """A ``feature_schema.json`` file; an unreadable or invalid one is a one-line error."""
    try:
        return FeatureSchema.from_json(path.read_text())
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataSourceError(f"cannot read the schema {path}: {first}") from exc


def champion_schema(registry: ModelRegistry, name: str) -> FeatureSchema | None:
    """The schema of ``name``'s champion, or None when there is no such model or champion.

    New training data must meet the contract of the model in production, when there is one.
    """
    if not registry.has_model(name):
        return None
    champion = registry.alias_version(name, CHAMPION)
    if champion is None:
        return None
    return FeatureSchema.from_json(registry.artifact_text(name, champion, FEATURE_SCHEMA))
