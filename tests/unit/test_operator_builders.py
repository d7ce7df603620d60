"""Pure builders of the operator: a call and assertions, no cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from driftline.job_contracts import DriftThresholds
from driftline_operator import specs
from driftline_operator.builders.children import desired_children, without_replicas
from driftline_operator.builders.drift import (
    build_drift_cronjob,
    build_training_job,
    training_job_name,
)
from driftline_operator.kube import KINDS
from driftline_operator.settings import OperatorSettings
from tests.kube.cluster import REPO_ROOT

MD: dict[str, Any] = {
    "apiVersion": "driftline.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "income", "namespace": "ml", "uid": "u-1"},
    "spec": {
        "model": {"name": "adult-income", "trackingUri": "http://mlflow:5000",
                  "credentialsSecretRef": {"name": "mlflow-creds"}},
        "serving": {"image": "inf:1", "runtime": "onnx", "replicas": 2,
                    "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}}},
        "traffic": {"challengerPercent": 10},
        "logging": {"storeRef": {"secretName": "log-db"}},
    },
}  # fmt: skip
DP: dict[str, Any] = {
    "apiVersion": "driftline.dev/v1alpha1",
    "kind": "DriftPolicy",
    "metadata": {"name": "income-drift", "namespace": "ml", "uid": "u-2"},
    "spec": {"modelDeploymentRef": {"name": "income"}, "schedule": "*/5 * * * *",
             "window": {"lookback": "1h", "minSamples": 300},
             "thresholds": {"psi": 0.3, "pValue": 0.01, "predictionPsi": 0.25},
             "retrain": {"image": "trainer:1", "args": ["--folds", "2"]}},
}  # fmt: skip


MD_SPEC = specs.model_deployment(MD).spec
SETTINGS = OperatorSettings(inference_image="inf:default", trainer_image="trainer:default")


def children(md: dict[str, Any], champion: str, challenger: str | None) -> Any:
    typed = specs.model_deployment(md)
    percent = typed.spec.traffic.challenger_percent if challenger else 0
    return desired_children(typed, champion, challenger, percent, SETTINGS)


def by_kind_name(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_children_pin_versions_and_are_owned() -> None:
    desired = children(MD, "7", "8")
    objects = by_kind_name(desired.objects)
    assert set(objects) == {
        ("Deployment", "income-champion"), ("Deployment", "income-challenger"),
        ("Service", "income-champion"), ("Service", "income-challenger"),
        ("ConfigMap", "income-split"), ("Deployment", "income-router"), ("Service", "income"),
    }  # fmt: skip
    for obj in desired.objects:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner == {"apiVersion": "driftline.dev/v1alpha1", "kind": "ModelDeployment",
                         "name": "income", "uid": "u-1", "controller": True,
                         "blockOwnerDeletion": True}  # fmt: skip
        assert obj["kind"] in KINDS
    champion = objects[("Deployment", "income-champion")]
    env = {e["name"]: e for e in champion["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DRIFTLINE_MODEL_VERSION"]["value"] == "7"
    assert champion["spec"]["template"]["metadata"]["annotations"] == {
        "driftline.dev/model-version": "7"
    }
    assert objects[("ConfigMap", "income-split")]["data"] == {"split_bps": "1000"}
    assert desired.absent == [("HorizontalPodAutoscaler", "income-champion"),
                              ("HorizontalPodAutoscaler", "income-challenger")]  # fmt: skip


def test_pods_are_secure_and_secrets_only_by_reference() -> None:
    for obj in children(MD, "7", "8").objects:
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        for env in container["env"]:
            if env["name"] in {"MLFLOW_TRACKING_PASSWORD", "DRIFTLINE_LOG_STORE"}:
                assert "value" not in env and env["valueFrom"]["secretKeyRef"]["name"]


def test_serving_and_router_pods_drain_before_they_stop() -> None:
    """Every Deployment's server drains on SIGTERM for less than its grace period."""
    deployments = [o for o in children(MD, "7", "8").objects if o["kind"] == "Deployment"]
    assert len(deployments) == 3
    for obj in deployments:
        pod = obj["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        drain = float(env["DRIFTLINE_DRAIN_SECONDS"])
        # The default grace period (30 s) must cover the drain and uvicorn's own shutdown.
        assert 0 < drain < pod.get("terminationGracePeriodSeconds", 30) - 10


def test_no_challenger_means_no_challenger_children_and_no_split() -> None:
    desired = children(MD, "7", None)
    objects = by_kind_name(desired.objects)
    assert ("Deployment", "income-challenger") not in objects
    assert ("Deployment", "income-challenger") in desired.absent
    assert objects[("ConfigMap", "income-split")]["data"] == {"split_bps": "0"}
    router_args = objects[("Deployment", "income-router")]["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert "--challenger" not in router_args


def test_shadow_traffic_reaches_the_router_only_with_a_challenger() -> None:
    shadowing = {
        **MD,
        "spec": {**MD["spec"], "traffic": {"challengerPercent": 0, "shadowPercent": 25}},
    }

    def router_args(challenger: str | None) -> list[str]:
        objects = by_kind_name(children(shadowing, "7", challenger).objects)
        deployment = objects[("Deployment", "income-router")]
        return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])

    args = router_args("8")
    assert args[args.index("--shadow-bps") + 1] == "2500"
    assert "--shadow-bps" not in router_args(None)


def test_autoscaling_adds_hpas_that_own_replicas() -> None:
    scaling = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 60}
    serving = {**MD["spec"]["serving"], "autoscaling": scaling}
    md = {**MD, "spec": {**MD["spec"], "serving": serving}}
    desired = children(md, "7", "8")
    hpa = by_kind_name(desired.objects)[("HorizontalPodAutoscaler", "income-champion")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "income-champion"
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert desired.hpa_owned == {"income-champion", "income-challenger"}
    deployment = by_kind_name(desired.objects)[("Deployment", "income-champion")]
    assert "replicas" not in without_replicas(deployment)["spec"]
    assert deployment["spec"]["replicas"] == 2


def test_drift_cronjob_runs_live_check_with_policy_values() -> None:
    cronjob = build_drift_cronjob(specs.drift_policy(DP), MD_SPEC, SETTINGS)
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("*/5 * * * *", "Forbid")
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    pairs = dict(zip(args[4::2], args[5::2], strict=True))
    assert args[:4] == ["drift-check", "--json", "--termination-log", "/dev/termination-log"]
    thresholds = DriftThresholds.model_validate_json(pairs.pop("--thresholds"))
    assert thresholds == DriftThresholds(
        psi=0.3, p_value=0.01, prediction_psi=0.25, min_samples=300
    )
    assert pairs == {"--model": "adult-income", "--log-store": "$(DRIFTLINE_LOG_STORE)",
                     "--lookback": "1h", "--output-dir": "/tmp/drift"}  # fmt: skip
    assert container["image"] == "trainer:default"
    assert cronjob["metadata"]["ownerReferences"][0]["kind"] == "DriftPolicy"


def test_training_job_is_named_after_its_trigger() -> None:
    job = build_training_job(
        specs.drift_policy(DP), MD_SPEC, "income-drift-drift-29000000", SETTINGS
    )
    assert job["metadata"]["name"] == training_job_name(
        "income-drift", "income-drift-drift-29000000"
    )
    assert job["metadata"]["name"] != training_job_name("income-drift", "other")
    assert len(training_job_name("x" * 80, "t")) <= 63
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "train", "--register", "adult-income", "--alias", "challenger", "--json",
        "--termination-log", "/dev/termination-log", "--folds", "2",
    ]  # fmt: skip
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "trainer:1"


def test_training_job_learns_from_recent_traffic_when_asked() -> None:
    policy = copy.deepcopy(DP)
    policy["spec"]["retrain"]["data"] = {"recentLookback": "2d", "holdoutFraction": 0.25}
    job = build_training_job(specs.drift_policy(policy), MD_SPEC, "t", SETTINGS)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--recent-log-store") :][:8] == [
        "--recent-log-store", "$(DRIFTLINE_LOG_STORE)", "--recent-lookback", "2d",
        "--recent-holdout", "0.25", "--recent-min-labels", "200",
    ]  # fmt: skip
    store = next(e for e in container["env"] if e["name"] == "DRIFTLINE_LOG_STORE")
    assert store["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_every_crd_field_has_a_description(path: Any) -> None:
    crd = yaml.safe_load(path.read_text())
    missing: list[str] = []

    def walk(node: dict[str, Any], where: str) -> None:
        if where.split(".")[-1] != "metadata" and "description" not in node:
            missing.append(where)
        for key, child in node.get("properties", {}).items():
            walk(child, f"{where}.{key}")
        if "items" in node:
            walk(node["items"], f"{where}[]")

    walk(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    assert missing == []


def with_serving_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {**MD, "spec": {**MD["spec"], "serving": {**MD["spec"]["serving"], "env": env}}}


def test_extra_env_reaches_the_inference_container_after_the_operators_own() -> None:
    extra = [
        {"name": "DRIFTLINE_ONNX_THREADS", "value": "2"},
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t"}}},
    ]
    objects = by_kind_name(children(with_serving_env(extra), "7", "8").objects)
    for variant in ("champion", "challenger"):
        (container,) = objects[("Deployment", f"income-{variant}")]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["env"][-2:] == [
            {"name": "DRIFTLINE_ONNX_THREADS", "value": "2"},
            {"name": "API_TOKEN",
             "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t", "optional": False}}},
        ]  # fmt: skip
        names = [e["name"] for e in container["env"]]
        assert len(names) == len(set(names))
    (router,) = objects[("Deployment", "income-router")]["spec"]["template"]["spec"]["containers"]
    assert "API_TOKEN" not in {e["name"] for e in router["env"]}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ([{"name": "HOME", "value": "/"}], "HOME is set by the operator"),
        ([{"name": "MLFLOW_TRACKING_URI", "value": "http://x"}], "set by the operator"),
        ([{"name": "A"}], "exactly one of value and valueFrom"),
        ([{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
         "exactly one of value and valueFrom"),
        ([{"name": "A", "valueFrom": {}}], "exactly one of secretKeyRef and configMapKeyRef"),
        ([{"name": "1A", "value": "1"}], "should match pattern"),
    ],
)  # fmt: skip
def test_extra_env_is_refused_with_the_field_named(env: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(specs.InvalidSpecError, match=message) as refused:
        specs.model_deployment(with_serving_env(env))
    assert "spec.serving.env.0" in str(refused.value)


def test_images_default_to_the_operators_and_the_spec_wins() -> None:
    spec = {**MD["spec"], "serving": {"replicas": 1}}
    objects = by_kind_name(children({**MD, "spec": spec}, "7", None).objects)
    for name in ("income-champion", "income-router"):
        (container,) = objects[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "inf:default"
    objects = by_kind_name(children(MD, "7", None).objects)
    (container,) = objects[("Deployment", "income-champion")]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == "inf:1"


def test_inference_pods_get_the_logging_settings_and_their_own_name() -> None:
    md = copy.deepcopy(MD)
    md["spec"]["logging"] = {
        "storeRef": {"secretName": "log-db"},
        "sampleRate": 0.01,
        "sketchBucketSeconds": 30,
    }
    settings = SETTINGS.model_copy(update={"log_retention_days": 7})
    built = desired_children(specs.model_deployment(md), "7", "8", 10, settings)
    serving = [
        o for o in built.objects
        if o["kind"] == "Deployment" and "router" not in o["metadata"]["name"]
    ]  # fmt: skip
    assert len(serving) == 2
    for obj in serving:
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["DRIFTLINE_LOG_SAMPLE_RATE"] == "0.01"
        assert env["DRIFTLINE_LOG_RETENTION_DAYS"] == "7"
        assert env["DRIFTLINE_SKETCH_BUCKET_SECONDS"] == "30"
        assert env["DRIFTLINE_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["DRIFTLINE_LOG_STORE"]["secretKeyRef"]["name"] == "log-db"
