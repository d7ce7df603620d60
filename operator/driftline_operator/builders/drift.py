"""Builders of a DriftPolicy's drift-check CronJob and its training Job (pure).

The drift check writes its summary to ``/dev/termination-log``, where the operator reads it
back from the finished Pod's status: no shared volume, no extra service.
"""

from __future__ import annotations

import hashlib
from typing import Any

from driftline.api.k8s_types import ResourceRequirements
from driftline.api.v1alpha1 import DriftPolicySpec, ModelDeploymentSpec
from driftline_operator import names
from driftline_operator.builders import pods
from driftline_operator.settings import OperatorSettings
from driftline_operator.specs import DriftPolicyObject

TERMINATION_LOG = "/dev/termination-log"
# Job names become a label value (job-name) on their Pods: 63 characters at most.
MAX_JOB_NAME = 63
DRIFT_RESOURCES = ResourceRequirements(
    requests={"cpu": "250m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "1Gi"}
)


def drift_labels(policy: str, component: str) -> dict[str, str]:
    """Labels of a policy's Jobs; the operator lists Jobs by them."""
    return names.managed_labels(component, **{names.LABEL_DRIFT_POLICY: policy})


def drift_check_args(dp_spec: DriftPolicySpec, model_name: str) -> list[str]:
    """``driftline drift-check`` in live mode with the policy's window and decision rule.

    The rule travels as one ``DriftThresholds`` JSON object (``--thresholds``), the type the
    check parses it back into; a performance rule likewise as a ``PerformanceRule``
    (``--performance``).
    """
    performance = dp_spec.performance
    judged = ["--performance", performance.rule().model_dump_json()] if performance else []
    return [
        "drift-check",
        "--json",
        "--termination-log",
        TERMINATION_LOG,
        "--model",
        model_name,
        # The kubelet expands $(VAR) from the container's env: the URL stays in the Secret.
        "--log-store",
        "$(DRIFTLINE_LOG_STORE)",
        "--lookback",
        dp_spec.window.lookback,
        "--thresholds",
        dp_spec.drift_thresholds().model_dump_json(),
        *judged,
        "--output-dir",
        f"{pods.TMP_PATH}/drift",
    ]


def build_drift_cronjob(
    dp: DriftPolicyObject, md_spec: ModelDeploymentSpec, settings: OperatorSettings
) -> dict[str, Any]:
    """The CronJob running the drift check on the policy's schedule, one run at a time.

    The image is the policy's, else the operator's ``trainer_image``.
    """
    policy, spec = dp.owner.name, dp.spec
    labels = drift_labels(policy, names.COMPONENT_DRIFT)
    container = _container(
        "drift-check",
        spec.image or settings.trainer_image,
        drift_check_args(spec, md_spec.model.name),
        md_spec,
        DRIFT_RESOURCES.manifest(),
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": names.child_metadata(dp.owner, names.cronjob_name(policy), labels),
        "spec": {
            "schedule": spec.schedule,
            # A slow check must not overlap the next one: both would read the same window.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    # A failed check is reported, not retried: the next schedule tries again.
                    "backoffLimit": 0,
                    "template": _pod_template(labels, container),
                },
            },
        },
    }


def training_job_name(policy: str, trigger: str) -> str:
    """A name derived from the drift Job that caused it: a retried create cannot duplicate it."""
    digest = hashlib.sha256(trigger.encode()).hexdigest()[:10]
    suffix = f"-train-{digest}"
    return policy[: MAX_JOB_NAME - len(suffix)] + suffix


def build_training_job(
    dp: DriftPolicyObject, md_spec: ModelDeploymentSpec, trigger: str, settings: OperatorSettings
) -> dict[str, Any]:
    """The Job training a new version and registering it as ``challenger``.

    The image is ``retrain.image``, else the operator's ``trainer_image``.
    """
    policy = dp.owner.name
    retrain = dp.spec.retrain
    labels = {
        **drift_labels(policy, names.COMPONENT_TRAIN),
        names.LABEL_TRIGGER: trigger[:MAX_JOB_NAME],
    }
    recent = []
    logging = md_spec.logging
    if retrain.data is not None and logging is not None and logging.store_ref is not None:
        recent = [
            # The kubelet expands $(VAR) from the container's env: the URL stays in the Secret.
            "--recent-log-store",
            "$(DRIFTLINE_LOG_STORE)",
            "--recent-lookback",
            retrain.data.recent_lookback,
            "--recent-holdout",
            str(retrain.data.holdout_fraction),
            "--recent-min-labels",
            str(retrain.data.min_labels),
        ]
    args = [
        "train",
        "--register",
        md_spec.model.name,
        "--alias",
        names.CHALLENGER,
        "--json",
        "--termination-log",
        TERMINATION_LOG,
        *recent,
        *retrain.args,
    ]
    container = _container(
        "train",
        retrain.image or settings.trainer_image,
        args,
        md_spec,
        retrain.resources.manifest(),
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": names.child_metadata(dp.owner, training_job_name(policy, trigger), labels),
        "spec": {
            # One attempt: a failing training is reported as a condition, never retried in a loop.
            "backoffLimit": 0,
            "activeDeadlineSeconds": retrain.active_deadline_seconds,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": _pod_template(labels, container),
        },
    }


def _container(
    name: str, image: str, args: list[str], md_spec: ModelDeploymentSpec, resources: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "args": args,
        "env": [
            {"name": "HOME", "value": pods.TMP_PATH},
            {"name": "DRIFTLINE_HOME", "value": f"{pods.TMP_PATH}/driftline"},
            *pods.mlflow_env(md_spec.model),
            *pods.log_store_env(md_spec.logging),
        ],
        "resources": resources,
        "securityContext": pods.container_security_context(),
        "volumeMounts": [pods.tmp_mount()],
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _pod_template(labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": pods.pod_security_context(),
            "containers": [container],
            "volumes": [pods.tmp_volume()],
        },
    }
