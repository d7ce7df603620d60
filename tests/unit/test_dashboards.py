"""Grafana dashboards query only metrics the code exports.

Metric names are collected from the real registries (the inference server's, the router's and
the operator's, which also carries the last drift scores); each PromQL expression of every
dashboard is reduced to the metric names it selects, and each name must exist (histograms with
their ``_bucket``/``_sum``/``_count`` series).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftline_operator.metrics import operator_metrics
from driftline_serving.metrics import serving_metrics
from driftline_serving.router import Router
from driftline_serving.settings import RouterSettings

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "charts/driftline/dashboards").glob("*.json")
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan"}  # fmt: skip
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# Not preceded by a digit: "5m" in "offset 5m" is a duration, not the metric "m".
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")
LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def exported_metric_names() -> set[str]:
    """Every series name the inference server, the router and the operator can expose."""
    registries = [
        serving_metrics().registry,
        Router(RouterSettings(champion_url="http://x")).registry,
        operator_metrics().registry,
    ]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            if family.type == "counter":
                names.add(f"{family.name}_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression.

    Strings, label matchers ``{...}``, ranges ``[...]`` and grouping clauses are removed; what
    remains is function names (followed by ``(``), keywords, numbers and metric names.
    """
    text = STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    found = set()
    for match in IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        found.add(match.group())
    return found


def _exprs(node: Any) -> Iterator[str]:
    """Every ``expr`` of panels (rows nested) and every query variable's metric."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        query = node.get("query")
        if node.get("type") == "query" and isinstance(query, dict):
            yield from (f"{m}" for m in LABEL_VALUES.findall(query.get("query", "")))
        for value in node.values():
            yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


def test_metric_name_extraction() -> None:
    """The extractor keeps metric names and drops functions, labels, ranges and keywords."""
    expr = (
        "histogram_quantile(0.99, sum by (le, variant) (rate(driftline_request_duration_seconds"
        '_bucket{endpoint=~"/predict.*", variant!="x"}[$__rate_interval]))) / ignoring(type) '
        "driftline_errors_total offset 5m"
    )
    assert metric_names(expr) == {
        "driftline_request_duration_seconds_bucket",
        "driftline_errors_total",
    }


def test_there_are_dashboards() -> None:
    """The chart ships at least one dashboard (its ConfigMaps are built from these files)."""
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_metrics_exist(path: Path) -> None:
    """Every metric a dashboard queries is exported by the code, and queries exist at all."""
    dashboard = json.loads(path.read_text())
    exported = exported_metric_names()
    used: set[str] = set()
    for expr in _exprs(dashboard):
        names = metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        used |= names
    missing = used - exported
    assert not missing, f"{path.name} queries metrics nobody exports: {sorted(missing)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_the_issue(path: Path) -> None:
    """Latency quantiles, traffic, split, errors, log drops and drift are all on the board."""
    text = path.read_text()
    for needle in (
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "driftline_predictions_total",
        "driftline_router_split_bps",
        "driftline_errors_total",
        "driftline_log_dropped_rows_total",
        "driftline_unknown_categories_total",
        "Operator reconcile errors",
        "Drift scores per feature",
        "driftline_performance_realised",
        "driftline_label_coverage",
        "driftline_sketch_written_buckets_total",
        "driftline_log_sampled_out_rows_total",
    ):
        assert needle in text, needle
    dashboard = json.loads(text)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
