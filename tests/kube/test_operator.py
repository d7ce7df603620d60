"""The operator on the real API server tier, against a real MLflow server: ModelDeployment
children, status and printer columns, alias moves, HPA-owned replicas, garbage collection,
MLflow outages and schema validation. The operator runs as its own ServiceAccount (the
ClusterRole of k8s/base/rbac.yaml)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import MlflowServer
from tests.kube.cluster import REPO_ROOT, Kubectl
from tests.kube.operator_fixtures import (
    RESOLVE_INTERVAL,
    Models,
    OperatorProcess,
    custom,
    events,
    model_deployment,
    wait_status,
)
from tests.processes import free_port, wait_for

pytestmark = pytest.mark.kube

CHILDREN = [
    ("Deployment", "{}-champion"),
    ("Deployment", "{}-challenger"),
    ("Deployment", "{}-router"),
    ("Service", "{}-champion"),
    ("Service", "{}-challenger"),
    ("Service", "{}"),
    ("ConfigMap", "{}-split"),
]


def apply(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def read(api_client: kubernetes.client.ApiClient, kind: str, namespace: str, name: str) -> Any:
    apps = kubernetes.client.AppsV1Api(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    auto = kubernetes.client.AutoscalingV2Api(api_client)
    reader = {
        "Deployment": apps.read_namespaced_deployment,
        "Service": core.read_namespaced_service,
        "ConfigMap": core.read_namespaced_config_map,
        "HorizontalPodAutoscaler": auto.read_namespaced_horizontal_pod_autoscaler,
    }[kind]
    return reader(name, namespace)


def env_of(deployment: Any) -> dict[str, str]:
    container = deployment.spec.template.spec.containers[0]
    return {e.name: e.value for e in container.env if e.value is not None}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_)


def test_children_status_and_printer_columns(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """Apply a ModelDeployment -> every child within 2 s, owned, pinned to the right version;
    status and conditions written; `kubectl get md` shows them."""
    model = models.create("children", [0.90, 0.91])
    models.registry().set_challenger(model, "2")
    manifest = model_deployment(
        "income", model, mlflow_server.uri, traffic={"challengerPercent": 10}
    )
    started = time.monotonic()
    apply(kubectl, namespace, manifest)

    def all_children() -> list[Any]:
        return [read(api_client, kind, namespace, name.format("income")) for kind, name in CHILDREN]

    children = wait_for(all_children, 2.0, "the operator did not create every child within 2 s")
    elapsed = time.monotonic() - started
    md = custom(api_client).get_namespaced_custom_object(
        "driftline.dev", "v1alpha1", namespace, "modeldeployments", "income"
    )
    for child in children:
        (owner,) = child.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "ModelDeployment",
            "income",
            md["metadata"]["uid"],
            True,
        )
    champion, challenger = children[0], children[1]
    assert env_of(champion)["DRIFTLINE_MODEL_VERSION"] == "1"
    assert env_of(challenger)["DRIFTLINE_MODEL_VERSION"] == "2"
    assert env_of(challenger)["DRIFTLINE_VARIANT"] == "challenger"
    assert children[6].data == {"split_bps": "1000"}
    router_args = children[2].spec.template.spec.containers[0].args
    assert "--challenger" in router_args and "--split-file" in router_args
    print(f"children complete after {elapsed:.2f}s")

    md = wait_status(
        api_client, namespace, "modeldeployments", "income",
        lambda o: o.get("status", {}).get("observedGeneration") == o["metadata"]["generation"],
        10, "status.observedGeneration was not written",
    )  # fmt: skip
    status = md["status"]
    assert status["champion"] == {"version": "1", "ready": False}
    assert status["challenger"]["version"] == "2" and status["challenger"]["trafficPercent"] == 10
    # No kubelet: pods never become available, so the rollout stays in progress.
    assert condition(md, "Ready")["status"] == "False"
    assert condition(md, "Ready")["reason"] == "RolloutInProgress"
    assert condition(md, "Progressing")["status"] == "True"
    assert condition(md, "Degraded")["status"] == "False"
    assert all(
        c["observedGeneration"] == md["metadata"]["generation"] for c in status["conditions"]
    )

    table = kubectl("get", "md", "income", "-n", namespace).stdout.split("\n")
    header, row = table[0].split(), table[1].split()
    assert header == ["NAME", "CHAMPION", "CHALLENGER", "SPLIT", "ROLLOUT", "STEP", "READY", "AGE"]
    # No spec.rollout: the rollout columns are blank, so the row has two fewer words.
    assert row[:5] == ["income", "1", "2", "10", "False"] and len(row) == len(header) - 2


def test_champion_move_rolls_out_keeps_hpa_replicas_and_gc_collects(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """Moving champion in MLflow rolls out within the timer interval; replicas set through the
    scale subresource (what an HPA does) survive the rollout; deleting the resource lets the
    garbage collector remove every child."""
    model = models.create("move", [0.90, 0.91])
    autoscaling = {"autoscaling": {"minReplicas": 1, "maxReplicas": 4}}
    apply(
        kubectl,
        namespace,
        model_deployment("scaled", model, mlflow_server.uri, serving=autoscaling),
    )
    apps = kubernetes.client.AppsV1Api(api_client)
    wait_for(
        lambda: read(api_client, "HorizontalPodAutoscaler", namespace, "scaled-champion"),
        5,
        "no HPA",
    )
    # The HPA controller cannot compute (no metrics server in this tier): scale like it does.
    apps.patch_namespaced_deployment_scale("scaled-champion", namespace, {"spec": {"replicas": 3}})

    models.registry().make_champion(model, "2")
    moved = time.monotonic()
    deployment = wait_for(
        lambda: (
            (d := apps.read_namespaced_deployment("scaled-champion", namespace))
            and env_of(d)["DRIFTLINE_MODEL_VERSION"] == "2"
            and d
        ),
        RESOLVE_INTERVAL * 2 + 3,
        "the champion Deployment did not roll out the new version",
    )
    print(f"rollout {time.monotonic() - moved:.2f}s after the alias move")
    assert deployment.spec.replicas == 3, "the operator reverted the HPA's replicas"
    assert deployment.spec.template.metadata.annotations["driftline.dev/model-version"] == "2"
    # kopf posts Events from a queue: they may trail the rollout slightly.
    wait_for(
        lambda: "ChampionMoved" in [e.reason for e in events(api_client, namespace, "scaled")],
        5,
        "no ChampionMoved Event",
    )

    kubectl("delete", "md", "scaled", "-n", namespace, "--wait=false")
    names = [name.format("scaled") for kind, name in CHILDREN if kind == "Deployment"]

    def collected() -> bool:
        left = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
        return not left & set(names)

    wait_for(collected, 30, "garbage collection left the ModelDeployment's Deployments")


def test_mlflow_unreachable_degrades_and_leaves_deployments(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """MLflow down -> Degraded with a reason and an Event, the running Deployment unchanged."""
    model = models.create("outage", [0.9])
    apply(kubectl, namespace, model_deployment("outage", model, mlflow_server.uri))
    apps = kubernetes.client.AppsV1Api(api_client)
    before = wait_for(
        lambda: apps.read_namespaced_deployment("outage-champion", namespace), 5, "no champion"
    )
    dead = f"http://127.0.0.1:{free_port()}"
    apply(kubectl, namespace, model_deployment("outage", model, dead))
    md = wait_status(
        api_client, namespace, "modeldeployments", "outage",
        lambda o: any(c["type"] == "Degraded" and c["status"] == "True"
                      for c in o.get("status", {}).get("conditions", [])),
        15, "no Degraded condition while MLflow is unreachable",
    )  # fmt: skip
    assert condition(md, "Degraded")["reason"] == "MlflowUnavailable"
    after = apps.read_namespaced_deployment("outage-champion", namespace)
    assert after.metadata.generation == before.metadata.generation
    assert env_of(after)["MLFLOW_TRACKING_URI"] == mlflow_server.uri
    wait_for(
        lambda: "MlflowUnavailable" in [e.reason for e in events(api_client, namespace, "outage")],
        5,
        "no MlflowUnavailable Event",
    )
    errors = [
        s.value
        for family in text_string_to_metric_families(httpx.get(operator.metrics_url).text)
        for s in family.samples
        if s.name == "driftline_operator_reconcile_errors_total"
        and s.labels == {"kind": "ModelDeployment", "reason": "MlflowUnavailable"}
    ]
    assert errors and errors[0] >= 1


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "http://x"},
                             "traffic": {"challengerPercent": 101}},
         "spec.traffic.challengerPercent"),
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "http://x"},
                             "promotion": {"mode": "sometimes"}}, "spec.promotion.mode"),
        ("ModelDeployment", {"model": {"trackingUri": "http://x"}}, "spec.model.name"),
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "mlflow:5000"}},
         "spec.model.trackingUri"),
        ("DriftPolicy", {"modelDeploymentRef": {"name": "m"}, "window": {"lookback": "1 hour"}},
         "spec.window.lookback"),
        ("DriftPolicy", {"modelDeploymentRef": {"name": "m"}, "thresholds": {"pValue": 2}},
         "spec.thresholds.pValue"),
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "http://x"},
                             "rollout": {"steps": [{"challengerPercent": 50},
                                                   {"challengerPercent": 20}]}},
         "spec.rollout"),
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "http://x"},
                             "rollout": {"steps": []}}, "spec.rollout.steps"),
        ("ModelDeployment", {"model": {"name": "m", "trackingUri": "http://x"},
                             "rollout": {"steps": [{"challengerPercent": 10, "pause": "10"}]}},
         "spec.rollout.steps[0].pause"),
    ],
    ids=["split-above-100", "mode-not-in-enum", "model-name-missing", "uri-pattern",
         "lookback-pattern", "p-value-above-1", "steps-falling", "no-steps", "pause-pattern"],
)  # fmt: skip
def test_invalid_specs_are_rejected_naming_the_field(
    crds: None,
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    kind: str,
    spec: dict[str, Any],
    field: str,
) -> None:
    """The CRD schemas reject bad specs at the API server with 422 naming the field."""
    plural = {"ModelDeployment": "modeldeployments", "DriftPolicy": "driftpolicies"}[kind]
    body = {"apiVersion": "driftline.dev/v1alpha1", "kind": kind, "metadata": {"name": "bad"}}
    with pytest.raises(ApiException) as excinfo:
        custom(api_client).create_namespaced_custom_object(
            "driftline.dev", "v1alpha1", namespace, plural, {**body, "spec": spec}
        )
    assert excinfo.value.status == 422
    causes = [c["field"] for c in json.loads(excinfo.value.body)["details"]["causes"]]
    assert field in causes


def test_manual_promotion_by_annotation_once(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    """`driftline.dev/promote: "true"` moves champion to the challenger once (the handled value
    is kept in status, not by rewriting metadata), and the challenger's children go away."""
    model = models.create("manual", [0.90, 0.85])
    models.registry().set_challenger(model, "2")
    apply(kubectl, namespace, model_deployment("manual", model, mlflow_server.uri))
    apps = kubernetes.client.AppsV1Api(api_client)
    wait_for(
        lambda: apps.read_namespaced_deployment("manual-challenger", namespace), 5, "no challenger"
    )
    kubectl("annotate", "md", "manual", "-n", namespace, "driftline.dev/promote=true")
    md = wait_status(
        api_client, namespace, "modeldeployments", "manual",
        lambda o: o.get("status", {}).get("champion", {}).get("version") == "2",
        30, "the annotation did not promote the challenger",
    )  # fmt: skip
    assert md["status"]["promotion"]["handledRequest"] == "true"
    assert md["status"]["promotion"]["lastDecision"]["outcome"] == "Promoted"
    assert models.aliases(model) == {"champion": "2"}
    assert "driftline.dev/promote" in md["metadata"]["annotations"], "metadata was rewritten"
    wait_for(
        lambda: (
            "manual-challenger"
            not in {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
        ),
        10,
        "the cleared challenger's Deployment was not removed",
    )
    champion = apps.read_namespaced_deployment("manual-champion", namespace)
    assert env_of(champion)["DRIFTLINE_MODEL_VERSION"] == "2"
    time.sleep(RESOLVE_INTERVAL * 2)
    assert models.aliases(model) == {"champion": "2"}
    promoted = [
        e for e in events(api_client, namespace, "manual") if e.reason == "PromotionPromoted"
    ]
    assert len(promoted) == 1


def test_samples_are_valid(crds: None, kubectl: Kubectl, namespace: str) -> None:
    """The numbered samples in k8s/samples/ pass the API server's validation (dry run)."""
    samples = REPO_ROOT / "k8s" / "samples"
    done = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(samples))
    assert "modeldeployment.driftline.dev/adult-income created (server dry run)" in done.stdout
    assert "driftpolicy.driftline.dev/adult-income-drift created (server dry run)" in done.stdout
