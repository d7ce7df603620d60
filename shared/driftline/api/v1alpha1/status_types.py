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


class ModelDeploymentStatus(ApiModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = Field(
        None, description="metadata.generation last reconciled."
    )
    champion: VariantStatus | None = Field(None, description="The champion variant.")
    challenger: ChallengerStatus | None = None
    promotion: PromotionStatus | None = None
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
    skipped_reason: str | None = Field(None, description="Why the latest breach did not start one.")


class DriftPolicyStatus(ApiModel):
    """Observed state, written by the operator only."""

    observed_generation: int | None = Field(
        None, description="metadata.generation last reconciled."
    )
    last_check: LastCheck | None = None
    last_retrain: LastRetrain | None = None
    conditions: list[Condition] | None = conditions_field("Ready and Degraded.")
