"""The ``driftline.dev/v1alpha1`` API: ModelDeployment and DriftPolicy (pure).

The single source of both custom resources, laid out as Kubebuilder's ``api/v1alpha1/*_types.go``:
``make manifests`` generates their CRDs (crds/) from these models (``driftline.api.crd``), with
every field's description, default, bound, enum and pattern; the operator parses each object's
spec into these models once, at the edge. Adding a spec field is one field in a ``*_types``
module, the builder that uses it, and a test.
"""

from __future__ import annotations

from driftline.api.k8s_types import ResourceKind, printer_column
from driftline.api.v1alpha1.drift_policy_types import (
    DriftPolicySpec,
    ModelDeploymentRef,
    Performance,
    Retrain,
    RetrainData,
    Thresholds,
    Window,
)
from driftline.api.v1alpha1.model_deployment_types import (
    MODEL_DEPLOYMENT_NAME,
    Analysis,
    Autoscaling,
    CredentialsSecretRef,
    EnvVar,
    Logging,
    LogStoreRef,
    ModelDeploymentSpec,
    ModelRef,
    Promotion,
    Rollout,
    RolloutStep,
    Router,
    Serving,
    Traffic,
)
from driftline.api.v1alpha1.status_types import (
    AnalysisResult,
    ChallengerStatus,
    DriftPolicyStatus,
    Gate,
    LastCheck,
    LastPerformance,
    LastRetrain,
    ModelDeploymentStatus,
    PromotionDecision,
    PromotionStatus,
    RolloutStatus,
    VariantStatus,
)

__all__ = [
    "API_VERSION",
    "DRIFT_POLICY",
    "GROUP",
    "MODEL_DEPLOYMENT",
    "RESOURCES",
    "VERSION",
    "Analysis",
    "AnalysisResult",
    "Autoscaling",
    "ChallengerStatus",
    "CredentialsSecretRef",
    "DriftPolicySpec",
    "DriftPolicyStatus",
    "EnvVar",
    "Gate",
    "LastCheck",
    "LastPerformance",
    "LastRetrain",
    "LogStoreRef",
    "Logging",
    "ModelDeploymentRef",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelRef",
    "Performance",
    "Promotion",
    "PromotionDecision",
    "PromotionStatus",
    "Retrain",
    "RetrainData",
    "Rollout",
    "RolloutStatus",
    "RolloutStep",
    "Router",
    "Serving",
    "Thresholds",
    "Traffic",
    "VariantStatus",
    "Window",
]

GROUP = "driftline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MODEL_DEPLOYMENT = ResourceKind(
    kind="ModelDeployment",
    plural="modeldeployments",
    short_names=("md",),
    description="A registered model served as champion and challenger behind a canary router.",
    spec=ModelDeploymentSpec,
    status=ModelDeploymentStatus,
    printer_columns=(
        printer_column(
            "Champion", "string", ".status.champion.version", "Model version serving as champion."
        ),
        printer_column(
            "Challenger",
            "string",
            ".status.challenger.version",
            "Model version serving as challenger.",
        ),
        printer_column(
            "Split",
            "integer",
            ".status.challenger.trafficPercent",
            "Percent of requests sent to the challenger.",
        ),
        printer_column(
            "Rollout", "string", ".status.rollout.phase", "Phase of the step-wise rollout."
        ),
        printer_column("Step", "string", ".status.rollout.position", "Rollout step of steps."),
        printer_column(
            "Ready",
            "string",
            '.status.conditions[?(@.type=="Ready")].status',
            "Whether every variant and the router are available.",
        ),
        printer_column("Age", "date", ".metadata.creationTimestamp"),
    ),
    # Children are named <name>-challenger (a Service: DNS-1035 label, 63 characters).
    name_rule={
        "rule": "self.metadata.name.size() <= 52"
        f" && self.metadata.name.matches('{MODEL_DEPLOYMENT_NAME}')",
        "message": "metadata.name must be a DNS-1035 label of at most 52 characters (its"
        " Services are <name>-challenger)",
    },
)

DRIFT_POLICY = ResourceKind(
    kind="DriftPolicy",
    plural="driftpolicies",
    short_names=("dp",),
    description="Scheduled drift checks of a ModelDeployment and retraining on a breach.",
    spec=DriftPolicySpec,
    status=DriftPolicyStatus,
    printer_columns=(
        printer_column(
            "Model", "string", ".spec.modelDeploymentRef.name", "The ModelDeployment watched."
        ),
        printer_column("Schedule", "string", ".spec.schedule", "Cron schedule of the drift check."),
        printer_column(
            "Last-Check", "date", ".status.lastCheck.time", "When the last check finished."
        ),
        printer_column(
            "Drifted", "boolean", ".status.lastCheck.drifted", "Whether the last check found drift."
        ),
        printer_column(
            "Performance",
            "string",
            ".status.lastCheck.performance.status",
            "The performance rule's answer at the last check (breach, ok, insufficient_labels).",
        ),
        printer_column("Age", "date", ".metadata.creationTimestamp"),
    ),
    # The CronJob is named <name>-drift and must fit 52 characters; the name is also a label
    # value of every Job and Pod of the policy.
    name_rule={
        "rule": "self.metadata.name.size() <= 46"
        " && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "message": "metadata.name must be a DNS-1123 label of at most 46 characters (its"
        " CronJob is <name>-drift)",
    },
)

RESOURCES = (MODEL_DEPLOYMENT, DRIFT_POLICY)
