"""Prometheus metrics of the operator: reconciles, errors, drift scores and rollout state.

Drift checks run as Jobs that exit, and rollout analyses run inside the operator; it is the one
process that can keep the latest scores and gate values for Prometheus to scrape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge

from driftline.api.v1alpha1.status_types import RolloutPhase
from driftline.job_contracts import VariantPerformance

PHASES: tuple[str, ...] = get_args(RolloutPhase)
# The figures exported per variant, realised and estimated (VariantPerformance's fields).
PERFORMANCE_FIGURES = ("roc_auc", "accuracy")


@dataclass
class OperatorMetrics:
    """The operator's metric families, in their own registry."""

    registry: CollectorRegistry
    reconciles: Counter
    reconcile_errors: Counter
    drift_max_psi: Gauge
    drift_detected: Gauge
    drift_feature_psi: Gauge
    rollout_phase: Gauge
    rollout_step: Gauge
    rollout_percent: Gauge
    gate_value: Gauge
    gate_threshold: Gauge
    gate_failed: Gauge
    performance_realised: Gauge
    performance_estimated: Gauge
    label_coverage: Gauge
    webhook_deliveries: Counter
    # (namespace, name) -> gate names exported, so gates no longer analysed are removed.
    _gates: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # (namespace, policy) -> (version, variant) pairs exported, likewise.
    _variants: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)

    def record_performance(
        self, namespace: str, policy: str, variants: list[VariantPerformance] | None
    ) -> None:
        """Export each variant's realised and estimated AUC and accuracy and label coverage.

        ``variants`` None (no check read in this reconcile) leaves the series as they are; a
        version or variant missing from a new check has its series removed.
        """
        if variants is None:
            return
        current = {(v.version, v.variant): v for v in variants}
        for version, variant in self._variants.pop((namespace, policy), set()) - set(current):
            self.label_coverage.remove(namespace, policy, version, variant)
            for metric in PERFORMANCE_FIGURES:
                for family in (self.performance_realised, self.performance_estimated):
                    family.remove(namespace, policy, version, variant, metric)
        for (version, variant), v in current.items():
            labels = (namespace, policy, version, variant)
            self.label_coverage.labels(*labels).set(v.coverage)
            for metric in PERFORMANCE_FIGURES:
                realised = getattr(v, metric)
                estimated = getattr(v, f"{metric}_estimated")
                self.performance_realised.labels(*labels, metric).set(
                    math.nan if realised is None else realised
                )
                self.performance_estimated.labels(*labels, metric).set(
                    math.nan if estimated is None else estimated
                )
        self._variants[(namespace, policy)] = set(current)

    def record_rollout(self, namespace: str, name: str, rollout: dict[str, Any] | None) -> None:
        """Export a ModelDeployment's ``status.rollout`` just written (None: no rollout).

        The phase is one series per phase, 1 for the current one (kube-state-metrics' style);
        gates are the last analysis's, with their thresholds and whether each failed. Series of
        gates the last analysis did not measure are removed, so an alert on a failed gate ends
        with the rollout.
        """
        current = (rollout or {}).get("phase")
        for phase in PHASES:
            self.rollout_phase.labels(namespace, name, phase).set(int(phase == current))
        gates = (rollout or {}).get("lastAnalysis") or {}
        measured = {gate["name"]: gate for gate in gates.get("gates") or []}
        for stale in self._gates.pop((namespace, name), set()) - set(measured):
            for family in (self.gate_value, self.gate_threshold, self.gate_failed):
                family.remove(namespace, name, stale)
        if rollout is None:
            for family in (self.rollout_step, self.rollout_percent):
                family.remove(namespace, name)
            return
        self.rollout_step.labels(namespace, name).set((rollout.get("step") or 0) + 1)
        self.rollout_percent.labels(namespace, name).set(rollout.get("percent") or 0)
        for gate_name, gate in measured.items():
            labels = (namespace, name, gate_name)
            # Every family gets every gate, so removal above finds each series it removes.
            self.gate_value.labels(*labels).set(
                gate["value"] if gate.get("value") is not None else math.nan
            )
            self.gate_threshold.labels(*labels).set(
                gate["threshold"] if gate.get("threshold") is not None else math.nan
            )
            self.gate_failed.labels(*labels).set(int(gate.get("verdict") == "Failed"))
        self._gates[(namespace, name)] = set(measured)

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
    variant = [*policy, "version", "variant"]
    deployment = ["namespace", "model_deployment"]
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
        webhook_deliveries=Counter(
            "driftline_webhook_deliveries_total",
            "Alerts sent to each webhook, by outcome (delivered; failed: refused, or no answer"
            " after every try; dropped: its queue was full).",
            ["webhook", "outcome"],
            registry=registry,
        ),
        performance_realised=Gauge(
            "driftline_performance_realised",
            "Realised performance on labelled traffic at the last check (metric: roc_auc,"
            " accuracy), by DriftPolicy, version and variant; NaN below minLabels.",
            [*variant, "metric"],
            registry=registry,
        ),
        performance_estimated=Gauge(
            "driftline_performance_estimated",
            "Performance estimated from the predicted probabilities (CBPE) over every served"
            " row at the last check, by DriftPolicy, version and variant.",
            [*variant, "metric"],
            registry=registry,
        ),
        label_coverage=Gauge(
            "driftline_label_coverage",
            "Share of the served rows of the last check's window that have a label.",
            variant,
            registry=registry,
        ),
        rollout_phase=Gauge(
            "driftline_rollout_phase",
            "1 for the rollout's current phase, 0 for the others, by ModelDeployment.",
            [*deployment, "phase"],
            registry=registry,
        ),
        rollout_step=Gauge(
            "driftline_rollout_step",
            "Current rollout step, 1-based, by ModelDeployment.",
            deployment,
            registry=registry,
        ),
        rollout_percent=Gauge(
            "driftline_rollout_challenger_percent",
            "Challenger share the rollout applies now, percent, by ModelDeployment.",
            deployment,
            registry=registry,
        ),
        gate_value=Gauge(
            "driftline_rollout_gate_value",
            "Value each gate measured in the last analysis, by ModelDeployment and gate.",
            [*deployment, "gate"],
            registry=registry,
        ),
        gate_threshold=Gauge(
            "driftline_rollout_gate_threshold",
            "Bound each gate is checked against, by ModelDeployment and gate.",
            [*deployment, "gate"],
            registry=registry,
        ),
        gate_failed=Gauge(
            "driftline_rollout_gate_failed",
            "1 when the gate failed in the last analysis, else 0, by ModelDeployment and gate.",
            [*deployment, "gate"],
            registry=registry,
        ),
    )
