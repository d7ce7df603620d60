"""Status types of both resources: what the operator observed and decided (written by it only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from driftline.api.k8s_types import ApiModel, Condition, conditions_field


class VariantStatus(ApiModel):
    """One variant as observed."""

    version: str | None = Field(None, description="Resolved model version.")
    ready: bool | None = Field(None, description="All desired replicas are available.")


class ChallengerStatus(VariantStatus):
    """The challenger variant (absent version when no challenger alias)."""

    traffic_percent: int | None = Field(None, description="Percent of requests routed to it.")
    ready_since: str | None = Field(
        None,
        description="When this version's pods were first all available (RFC 3339): online"
        " figures before it belong to the previous challenger.",
    )


PromotionOutcome = Literal["Promoted", "Rejected", "Failed", "Waiting"]


class PromotionDecision(ApiModel):
    """The latest promotion decision."""

    time: str | None = Field(None, description="When it was taken (RFC 3339).")
    outcome: PromotionOutcome | None = Field(
        None, description="Promoted, Rejected, Failed or Waiting."
    )
    reason: str | None = Field(None, description="Why, in one line.")
    from_version: str | None = Field(None, description="Champion before.")
    to_version: str | None = Field(None, description="Candidate version.")


class PromotionStatus(ApiModel):
    """Promotion bookkeeping."""

    handled_request: str | None = Field(
        None, description="Last value of the driftline.dev/promote annotation acted on."
    )
    last_decision: PromotionDecision | None = None


RolloutPhase = Literal["Progressing", "Analysing", "Paused", "Aborted", "Promoted"]
Verdict = Literal["Passed", "Failed", "Inconclusive"]


class Gate(ApiModel):
    """One gate of an analysis: what was measured against what bound."""

    name: str = Field(description="The gate, e.g. requests, errorRate, latencyP95IncreaseMs.")
    value: float | None = Field(None, description="Measured value (absent: not measurable).")
    threshold: float | None = Field(None, description="The bound it is checked against.")
    verdict: Verdict = Field(description="Passed, Failed or Inconclusive.")
    message: str | None = Field(None, description="The comparison in words.")


class AnalysisResult(ApiModel):
    """One analysis of a step's window."""

    time: str | None = Field(None, description="When it ran (RFC 3339).")
    verdict: Verdict | None = Field(
        None, description="Failed if any gate failed, else Inconclusive if any was, else Passed."
    )
    window_seconds: float | None = Field(None, description="Length of the window analysed.")
    gates: list[Gate] | None = Field(None, description="Every gate, in evaluation order.")


class RolloutStatus(ApiModel):
    """Where the step-wise rollout of the current challenger is (spec.rollout)."""

    version: str | None = Field(None, description="Challenger version being rolled out.")
    phase: RolloutPhase | None = Field(
        None, description="Progressing, Analysing, Paused, Aborted or Promoted."
    )
    step: int | None = Field(None, description="Index of the current step (0-based).")
    steps: int | None = Field(None, description="Number of steps.")
    position: str | None = Field(None, description="Step of steps, 1-based (2/4).")
    plan: str | None = Field(
        None,
        description="The steps this rollout follows, as share@pause (10@5m,50@10m,100@-): an"
        " edit of spec.rollout.steps restarts the rollout.",
    )
    percent: int | None = Field(None, description="Challenger share now applied, percent.")
    step_started_at: str | None = Field(None, description="When the step started (RFC 3339).")
    failures: int | None = Field(None, description="Failed analyses in a row.")
    message: str | None = Field(None, description="Why the rollout is where it is.")
    promotion_refused: str | None = Field(
        None,
        description="Why the registry refused to promote after the last step; auto promotion"
        " does not try again, the promote annotation forces it.",
    )
    last_analysis: AnalysisResult | None = None
    handled_abort: str | None = Field(
        None, description="Last value of the driftline.dev/abort annotation acted on."
    )
    handled_retry: str | None = Field(
        None, description="Last value of the driftline.dev/retry annotation acted on."
    )


class ModelDeploymentStatus(ApiModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = Field(
        None, description="metadata.generation last reconciled."
    )
    champion: VariantStatus | None = Field(None, description="The champion variant.")
    challenger: ChallengerStatus | None = None
    promotion: PromotionStatus | None = None
    rollout: RolloutStatus | None = None
    conditions: list[Condition] | None = conditions_field("Ready, Progressing and Degraded.")


class LastCheck(ApiModel):
    """Summary of the latest finished drift check."""

    job: str | None = Field(None, description="The drift-check Job.")
    time: str | None = Field(None, description="When it finished (RFC 3339).")
    state: Literal["Succeeded", "Failed"] | None = Field(None, description="Succeeded or Failed.")
    failure: Literal["DriftCheckFailed", "DriftSummaryUnreadable"] | None = Field(
        None,
        description="Why a Failed check failed: the Job failed, or its termination message is"
        " not a DriftCheckSummary (the Degraded condition's reason).",
    )
    status: Literal["drift", "no_drift", "insufficient_data"] | None = Field(
        None, description="The check's answer (drift, no_drift, insufficient_data)."
    )
    drifted: bool | None = Field(None, description="Whether drift was found.")
    reason: str | None = Field(None, description="The decision's reason.")
    samples: int | None = Field(None, description="Logged rows compared.")
    max_psi: float | None = Field(None, description="Largest feature PSI.")
    features: list[str] | None = Field(
        None,
        description="Top drifted features, largest PSI first.",
        json_schema_extra={"items": {"type": "string", "description": "Feature name."}},
    )
    performance: LastPerformance | None = Field(
        None, description="With spec.performance: realised performance and its verdict."
    )


RetrainCause = Literal["drift", "performance", "drift and performance"]


class LastPerformance(ApiModel):
    """The performance rule's answer at the latest check."""

    status: Literal["breach", "ok", "insufficient_labels"] | None = Field(
        None, description="breach, ok or insufficient_labels."
    )
    reason: str | None = Field(None, description="The decision's reason.")
    metric: str | None = Field(None, description="The metric judged.")
    version: str | None = Field(None, description="The version judged (champion rows).")
    value: float | None = Field(None, description="Realised value on the labelled rows.")
    low: float | None = Field(None, description="Lower end of the 95% interval.")
    high: float | None = Field(None, description="Upper end of the 95% interval.")
    limit: float | None = Field(None, description="The bound the interval was judged against.")
    labelled: int | None = Field(None, description="Labelled rows judged.")


class LastRetrain(ApiModel):
    """The latest training Job created by this policy."""

    job: str | None = Field(None, description="Training Job name.")
    started_at: str | None = Field(None, description="When it was created (RFC 3339).")
    state: Literal["Running", "Succeeded", "Failed"] | None = Field(
        None, description="Running, Succeeded or Failed."
    )
    registered_version: str | None = Field(
        None,
        description="Model version the Job registered as challenger (from its termination"
        " message).",
    )
    trigger: str | None = Field(None, description="The drift-check Job that caused it.")
    cause: RetrainCause | None = Field(
        None, description="Which breach started it: drift, performance, or both."
    )
    skipped_reason: str | None = Field(None, description="Why the latest breach did not start one.")


class DriftPolicyStatus(ApiModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = Field(
        None, description="metadata.generation last reconciled."
    )
    last_check: LastCheck | None = None
    last_retrain: LastRetrain | None = None
    conditions: list[Condition] | None = conditions_field("Ready and Degraded.")
