"""Helpers shared by the serving and router tests: request bodies from Adult, metric values."""

from __future__ import annotations

import json

import pandas as pd


def rows(adult: pd.DataFrame, n: int, seed: int = 0) -> list[dict]:
    """``n`` Adult rows without the label, as JSON-ready feature dicts."""
    sample = adult.drop(columns=["income"]).sample(n, random_state=seed)
    records = json.loads(sample.to_json(orient="records"))
    return records


def metric(text: str, name: str) -> float:
    """The sum of every sample in a Prometheus text page whose line starts with ``name``
    (give labels in ``name`` to pick one series)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total
