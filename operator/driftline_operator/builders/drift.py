"""Builders of a DriftPolicy's drift-check CronJob and its training Job (pure).

The drift check writes its summary to ``/dev/termination-log``, where the operator reads it
back from the finished Pod's status: no shared volume, no extra service.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from driftline_operator import names
from driftline_operator.builders import pods

TERMINATION_LOG = "/dev/termination-log"
# Job names become a label value (job-name) on their Pods: 63 characters at most.
MAX_JOB_NAME = 63
DRIFT_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


def drift_labels(policy: str, component: str) -> dict[str, str]:
    """Labels of a policy's Jobs; the operator lists Jobs by them."""
    return names.managed_labels(component, **{names.LABEL_DRIFT_POLICY: policy})


def drift_check_args(dp_spec: dict[str, Any], model_name: str) -> list[str]:
    """``driftline drift-check`` in live mode with the policy's window and thresholds."""
    window = dp_spec.get("window", {})
    thresholds = dp_spec.get("thresholds", {})
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
        str(window.get("lookback", "1h")),
        "--min-samples",
        str(window.get("minSamples", 500)),
        "--psi-threshold",
        str(thresholds.get("psi", 0.2)),
        "--p-value",
        str(thresholds.get("pValue", 0.05)),
        "--prediction-psi",
        str(thresholds.get("predictionPsi", 0.2)),
        "--output-dir",
        f"{pods.TMP_PATH}/drift",
    ]


def build_drift_cronjob(dp: dict[str, Any], md_spec: dict[str, Any]) -> dict[str, Any]:
    """The CronJob running the drift check on the policy's schedule, one run at a time."""
    policy = dp["metadata"]["name"]
    spec = dp["spec"]
    labels = drift_labels(policy, names.COMPONENT_DRIFT)
    container = _container(
        "drift-check",
        spec.get("image", "driftline/trainer:0.1.0"),
        drift_check_args(spec, md_spec["model"]["name"]),
        md_spec,
        DRIFT_RESOURCES,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": names.child_metadata(dp, names.cronjob_name(policy), labels),
        "spec": {
            "schedule": spec.get("schedule", "*/15 * * * *"),
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


def build_training_job(dp: dict[str, Any], md_spec: dict[str, Any], trigger: str) -> dict[str, Any]:
    """The Job training a new version and registering it as ``challenger``."""
    policy = dp["metadata"]["name"]
    retrain = dp["spec"].get("retrain", {})
    labels = {
        **drift_labels(policy, names.COMPONENT_TRAIN),
        names.LABEL_TRIGGER: trigger[:MAX_JOB_NAME],
    }
    args = [
        "train",
        "--register",
        md_spec["model"]["name"],
        "--alias",
        names.CHALLENGER,
        "--json",
        "--termination-log",
        TERMINATION_LOG,
        *retrain.get("args", []),
    ]
    container = _container(
        "train",
        retrain.get("image", "driftline/trainer:0.1.0"),
        args,
        md_spec,
        retrain.get("resources", {}),
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": names.child_metadata(dp, training_job_name(policy, trigger), labels),
        "spec": {
            # One attempt: a failing training is reported as a condition, never retried in a loop.
            "backoffLimit": 0,
            "activeDeadlineSeconds": retrain.get("activeDeadlineSeconds", 3600),
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": _pod_template(labels, container),
        },
    }


def _container(
    name: str, image: str, args: list[str], md_spec: dict[str, Any], resources: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "args": args,
        "env": [
            {"name": "HOME", "value": pods.TMP_PATH},
            {"name": "DRIFTLINE_HOME", "value": f"{pods.TMP_PATH}/driftline"},
            *pods.mlflow_env(md_spec["model"]),
            *pods.log_store_env(md_spec.get("logging")),
        ],
        "resources": copy.deepcopy(resources),
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
