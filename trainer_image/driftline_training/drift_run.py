"""One drift check as ``driftline drift-check`` and the operator's drift Job run it.

Gather the inputs (two files, or a window of the inference log against a model version's
baseline), decide, write ``report.json`` and ``report.html``, log the run to MLflow and shrink
the report to the ``DriftCheckSummary`` that is the Job's termination message. Everything comes
in as typed arguments; the CLI parses the command line and maps the errors raised here to exit
codes.

MLflow is imported only where it is used (live mode, or files mode with a tracking server):
importing it costs about a second that a check of two files does not need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.drift_report import SUMMARY_MAX_BYTES, DriftReport, summary
from driftline.job_contracts import (
    DriftCheckSummary,
    DriftThresholds,
    PerformanceRule,
    PerformanceSummary,
)
from driftline.registry_conventions import CHAMPION
from driftline_training.drift_check import (
    DriftInputs,
    WindowRead,
    live_inputs,
    run_check,
    write_report,
)
from driftline_training.drift_files import FilesOptions, files_inputs

if TYPE_CHECKING:
    from driftline.tracking_settings import TrackingSettings


@dataclass(frozen=True)
class FilesSource:
    """Files mode: a reference and a current table; the baseline is built from the reference."""

    reference: Path
    current: Path
    options: FilesOptions = field(default_factory=FilesOptions)


@dataclass(frozen=True)
class LiveSource:
    """Live mode: a window of the inference log against a model version's stored baseline.

    ``version`` None means the version the ``champion`` alias points at. The window is the
    newest ``last`` rows when given, else the rows (or the drift sketches, see ``read``) of the
    last ``lookback_seconds``.
    """

    model: str
    log_store: str
    version: str | None = None
    lookback_seconds: float | None = None
    last: int | None = None
    read: WindowRead = WindowRead.AUTO


@dataclass(frozen=True)
class CheckOutcome:
    """A finished check: the report, its summary and where both were written and logged."""

    report: DriftReport
    summary: DriftCheckSummary
    report_json: Path
    report_html: Path
    mlflow_run_id: str | None
    performance: PerformanceSummary | None = None


def run_drift_check(
    source: FilesSource | LiveSource,
    thresholds: DriftThresholds,
    *,
    tracking: TrackingSettings,
    output_dir: Path,
    experiment: str | None = None,
    summary_max_bytes: int = SUMMARY_MAX_BYTES,
    performance: PerformanceRule | None = None,
) -> CheckOutcome:
    """Check ``source`` against ``thresholds``; write the report into ``output_dir`` and log it.

    The run is logged to MLflow (``tracking``; ``experiment`` defaults to ``driftline-drift``)
    in live mode, and in files mode only when a tracking server is configured. The summary is
    at most ``summary_max_bytes`` as JSON. Raises ``TrainingError`` subclasses (bad inputs,
    an unreadable log store, an unwritable report folder), ``RegistryError`` (no such model,
    version or champion) and MLflow's ``MlflowException`` (the server failed).

    ``performance`` (live mode only) also judges the realised performance of the checked
    version on labelled traffic (``driftline.performance.judge``); its answer travels in the
    summary, the report and the run. Raises ValueError for a performance rule in files mode.
    """
    judged = None
    if isinstance(source, FilesSource):
        if performance is not None:
            raise ValueError("a performance rule needs live mode (labels join the log)")
        inputs = files_inputs(source.reference, source.current, source.options)
    else:
        inputs = _live_inputs(source, tracking)
        if performance is not None:
            judged = _judge_performance(source, inputs.source["version"], performance, tracking)
    report = run_check(inputs, thresholds)
    report_json, report_html = write_report(report, output_dir, judged)
    run_id = None
    if isinstance(source, LiveSource) or tracking.tracking_uri:
        run_id = _log(report, (report_json, report_html), tracking, experiment, judged)
    # The performance block takes its room first: the feature list is what gets cut.
    room = summary_max_bytes - (len(judged.model_dump_json()) + 20 if judged else 0)
    return CheckOutcome(
        report=report,
        summary=summary(report, room).model_copy(update={"performance": judged}),
        report_json=report_json,
        report_html=report_html,
        mlflow_run_id=run_id,
        performance=judged,
    )


def _judge_performance(
    source: LiveSource, version: str, rule: PerformanceRule, tracking: TrackingSettings
) -> PerformanceSummary:
    """Score the window's labelled rows and judge ``version`` against ``rule``.

    Raises RegistryError when ``rule.max_drop`` needs a training test score the version's run
    lacks (and no floor stands in), LogStoreError when the store cannot be read.
    """
    from driftline.mlflow_binding import open_registry
    from driftline.performance import judge
    from driftline.registry import RegistryError
    from driftline_training.performance_check import check_performance

    _, registry = open_registry(tracking)
    try:
        reference: float | None = registry.metric(source.model, version, rule.metric)
    except RegistryError:
        if rule.floor is None:
            raise
        reference = None
    now = time.time()
    report = check_performance(
        source.log_store,
        source.model,
        since=now - rule.lookback_seconds,
        until=now,
        min_labels=rule.min_labels,
    )
    return judge(report.groups, rule, version, reference)


def _live_inputs(source: LiveSource, tracking: TrackingSettings) -> DriftInputs:
    from driftline.mlflow_binding import open_registry
    from driftline.registry import RegistryError

    _, registry = open_registry(tracking)
    version = source.version or registry.alias_version(source.model, CHAMPION)
    if version is None:
        raise RegistryError(f"model {source.model!r} has no {CHAMPION!r}: pass --version")
    return live_inputs(
        registry,
        source.model,
        version,
        source.log_store,
        lookback_seconds=source.lookback_seconds,
        last=source.last,
        read=source.read,
    )


def _log(
    report: DriftReport,
    paths: tuple[Path, Path],
    tracking: TrackingSettings,
    experiment: str | None,
    performance: PerformanceSummary | None,
) -> str:
    from driftline.mlflow_binding import open_registry
    from driftline_training.drift_tracking import DRIFT_EXPERIMENT, log_drift_run

    target, _ = open_registry(tracking)
    return log_drift_run(report, paths, target, experiment or DRIFT_EXPERIMENT, performance)
