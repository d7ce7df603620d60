"""Prometheus metrics of the inference server (names with the driftline_ prefix).

Each app gets its own registry, so tests can run several servers in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Sub-millisecond buckets: the ONNX path answers in well under a millisecond.
LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


@dataclass
class ServingMetrics:
    """The server's metric families."""

    registry: CollectorRegistry
    request_seconds: Histogram
    predictions: Counter
    errors: Counter
    unknown_categories: Counter
    out_of_range: Counter
    log_buffer_rows: Gauge
    log_written: Counter
    log_dropped: Counter
    log_write_errors: Counter
    model_info: Gauge
    feedback_labels: Counter
    feedback_buffer_rows: Gauge
    feedback_written: Counter
    feedback_dropped: Counter
    feedback_write_errors: Counter
    log_sampled_out: Counter
    feedback_unsampled: Counter
    sketch_buffer_buckets: Gauge
    sketch_written: Counter
    sketch_dropped: Counter
    sketch_write_errors: Counter


def serving_metrics() -> ServingMetrics:
    """Create the metric families in a fresh registry."""
    registry = CollectorRegistry()
    labels = ["model", "version", "variant"]
    return ServingMetrics(
        registry=registry,
        request_seconds=Histogram(
            "driftline_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        predictions=Counter(
            "driftline_predictions_total", "Predictions served.", labels, registry=registry
        ),
        errors=Counter(
            "driftline_errors_total",
            "Requests answered with an error, by type.",
            ["type"],
            registry=registry,
        ),
        unknown_categories=Counter(
            "driftline_unknown_categories_total",
            "Category values unseen in training, accepted and counted, by feature.",
            ["feature"],
            registry=registry,
        ),
        out_of_range=Counter(
            "driftline_out_of_range_values_total",
            "Numbers outside the training range (not negative where training never was),"
            " accepted and counted, by feature.",
            ["feature"],
            registry=registry,
        ),
        log_buffer_rows=Gauge(
            "driftline_log_buffer_rows",
            "Inference log rows waiting to be written.",
            registry=registry,
        ),
        log_written=Counter(
            "driftline_log_written_rows_total", "Inference log rows written.", registry=registry
        ),
        log_dropped=Counter(
            "driftline_log_dropped_rows_total",
            "Inference log rows dropped because the buffer was full.",
            registry=registry,
        ),
        log_write_errors=Counter(
            "driftline_log_write_errors_total", "Failed inference log writes.", registry=registry
        ),
        model_info=Gauge(
            "driftline_model_info",
            "The model version served (value 1).",
            [*labels, "runtime"],
            registry=registry,
        ),
        feedback_labels=Counter(
            "driftline_feedback_accepted_labels_total",
            "Labels accepted by /feedback (refused calls count in driftline_errors_total).",
            registry=registry,
        ),
        feedback_buffer_rows=Gauge(
            "driftline_feedback_buffer_rows", "Labels waiting to be written.", registry=registry
        ),
        feedback_written=Counter(
            "driftline_feedback_written_rows_total", "Labels written.", registry=registry
        ),
        feedback_dropped=Counter(
            "driftline_feedback_dropped_rows_total",
            "Accepted labels dropped because the buffer was full.",
            registry=registry,
        ),
        feedback_write_errors=Counter(
            "driftline_feedback_write_errors_total", "Failed feedback writes.", registry=registry
        ),
        log_sampled_out=Counter(
            "driftline_log_sampled_out_rows_total",
            "Answered requests whose row was not logged (log sample rate below 1).",
            registry=registry,
        ),
        feedback_unsampled=Counter(
            "driftline_feedback_unsampled_labels_total",
            "Labels of ids the log sample rate left out (or unknown ids it would have):"
            " acknowledged, not stored.",
            registry=registry,
        ),
        sketch_buffer_buckets=Gauge(
            "driftline_sketch_buffer_buckets",
            "Sealed drift-sketch buckets waiting to be written.",
            registry=registry,
        ),
        sketch_written=Counter(
            "driftline_sketch_written_buckets_total",
            "Drift-sketch buckets written (one per version and time bucket).",
            registry=registry,
        ),
        sketch_dropped=Counter(
            "driftline_sketch_dropped_buckets_total",
            "Drift-sketch buckets dropped because the buffer was full.",
            registry=registry,
        ),
        sketch_write_errors=Counter(
            "driftline_sketch_write_errors_total",
            "Failed drift-sketch writes.",
            registry=registry,
        ),
    )
