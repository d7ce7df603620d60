"""Prometheus metrics of the operator: reconciles, their errors, and the last drift scores.

Drift checks run as Jobs that exit; the operator reads their summaries, so it is the one process
that can keep the latest scores for Prometheus to scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class OperatorMetrics:
    """The operator's metric families, in their own registry."""

    registry: CollectorRegistry
    reconciles: Counter
    reconcile_errors: Counter
    drift_max_psi: Gauge
    drift_detected: Gauge
    drift_feature_psi: Gauge

    def record_drift(self, namespace: str, policy: str, scores: dict[str, float]) -> None:
        """Export the scores of a drift check the operator has just read."""
        if scores:
            self.drift_max_psi.labels(namespace, policy).set(max(scores.values()))
        for feature, psi in scores.items():
            self.drift_feature_psi.labels(namespace, policy, feature).set(psi)


def operator_metrics() -> OperatorMetrics:
    """Create the metric families in a fresh registry."""
    registry = CollectorRegistry()
    policy = ["namespace", "policy"]
    return OperatorMetrics(
        registry=registry,
        reconciles=Counter(
            "driftline_operator_reconciles_total",
            "Reconciles run, by resource kind.",
            ["kind"],
            registry=registry,
        ),
        reconcile_errors=Counter(
            "driftline_operator_reconcile_errors_total",
            "Reconciles that failed, by resource kind and condition reason.",
            ["kind", "reason"],
            registry=registry,
        ),
        drift_max_psi=Gauge(
            "driftline_drift_max_psi",
            "Largest feature PSI of the last drift check, by DriftPolicy.",
            policy,
            registry=registry,
        ),
        drift_detected=Gauge(
            "driftline_drift_detected",
            "1 when the last drift check found drift, else 0, by DriftPolicy.",
            policy,
            registry=registry,
        ),
        drift_feature_psi=Gauge(
            "driftline_drift_feature_psi",
            "PSI of each feature in the last drift check, by DriftPolicy.",
            [*policy, "feature"],
            registry=registry,
        ),
    )
