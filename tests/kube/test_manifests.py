"""The Helm chart and the kustomize overlays against real tools and the real API server.

``make chart-check`` (and ``make test-kube``) runs this: ``helm lint``; ``helm template`` and
``kubectl kustomize`` output through ``kubeconform -strict`` with schemas generated offline
(built-in kinds from this tier's kube-apiserver, our kinds from crds/); then ``kubectl apply
--dry-run=server`` of the same output, after the CRDs (and any Namespace the output declares)
were applied for real. Bad values must be refused by values.schema.json.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from driftline_operator.main import receivers
from driftline_operator.settings import OperatorSettings
from tests.kube import kubeconform_schemas
from tests.kube.cluster import REPO_ROOT, KubeCluster, Kubectl, MissingBinaryError
from tests.manifests_script import load_manifests_script

CHART = REPO_ROOT / "charts/driftline"
OVERLAYS = ("k8s/base", "k8s/overlays/dev", "k8s/overlays/prod")
SAMPLES = REPO_ROOT / "k8s/samples"
# No schema exists offline for the Prometheus Operator's kind; its shape is asserted below.
NO_SCHEMA_KINDS = ("ServiceMonitor",)
WATCHED = ("team-a", "team-b")
# Every optional part switched on, with production-like stores (credentials by Secret name).
ALL_ON = (
    "mlflow.enabled=true",
    "mlflow.backendStore.type=postgresql",
    "mlflow.backendStore.postgresql.host=postgres.db",
    "mlflow.backendStore.postgresql.passwordSecret.name=mlflow-db",
    "mlflow.artifactStore.type=s3",
    "mlflow.artifactStore.s3.destination=s3://mlflow/artifacts",
    "mlflow.artifactStore.s3.endpointUrl=http://minio.minio:9000",
    "mlflow.artifactStore.s3.credentialsSecret.name=minio",
    "operator.healthLogStore.secretName=inference-log-db",
    f"operator.watchNamespaces={{{','.join(WATCHED)}}}",
    "serviceMonitor.enabled=true",
    "grafanaDashboards.enabled=true",
    "postgresql.enabled=true",
    "postgresql.passwordSecret.name=driftline-db",
)
VALUE_SETS = {"defaults": (), "all-on": ALL_ON, "mlflow-dev": ("mlflow.enabled=true",)}
# A bad value and a word the failure must contain (the offending field).
BAD_VALUES = (
    ("images.operator.pullPolicy=Sometimes", "pullPolicy"),
    ("operator.securityContext.readOnlyRootFilesystem=false", "readOnlyRootFilesystem"),
    ("operator.livenessPort=70000", "livenessPort"),
    ("operator.settings.resolveIntervalSeconds=0", "resolveIntervalSeconds"),
    ("mlflow.backendStore.type=mysql", "type"),
    ("operator.replicas=-1", "replicas"),
    ("operator.peeringLifetimeSeconds=1", "peeringLifetimeSeconds"),
    ("postgresql.enabled=true", "passwordSecret"),
    ("postgresql.databases={Bad-Name}", "databases"),
    ("mlflow.enabled=true,mlflow.backendStore.type=postgresql", "host"),
)


def _tool(cluster: KubeCluster, name: str) -> str:
    path = cluster.bin_dir / name
    if not path.is_file():
        raise MissingBinaryError(f"missing {path}; build it with scripts/build-kube-bins.sh")
    return str(path)


def _run(argv: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=300)


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def kube_version(kube_cluster: KubeCluster) -> str:
    """The API server's version, e.g. ``v1.33.13``."""
    out = Kubectl(kube_cluster)("version", "-o", "json").stdout
    return str(json.loads(out)["serverVersion"]["gitVersion"])


@pytest.fixture(scope="module")
def schema_locations(
    kube_cluster: KubeCluster, kube_version: str, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """kubeconform ``-schema-location`` values: our CRDs first, then the built-in kinds."""
    kubectl = Kubectl(kube_cluster)
    builtin = kubeconform_schemas.cached_builtin_dir(
        kube_version, lambda: json.loads(kubectl("get", "--raw", "/openapi/v2").stdout)
    )
    crd_dir = kubeconform_schemas.write_schemas(
        tmp_path_factory.mktemp("crd-schemas"),
        kubeconform_schemas.crd_schemas(sorted((REPO_ROOT / "crds").glob("*.yaml"))),
    )
    return [kubeconform_schemas.schema_location(d) for d in (crd_dir, builtin)]


@pytest.fixture(scope="module")
def helm(kube_cluster: KubeCluster, kube_version: str) -> Any:
    """``helm(*args)`` -> CompletedProcess, with the tier's Kubernetes version for templates."""
    binary = _tool(kube_cluster, "helm")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        extra = ["--kube-version", kube_version] if args[0] in ("template", "lint") else []
        return _run([binary, *args, *extra])

    return run


@pytest.fixture(scope="module")
def kubeconform(kube_cluster: KubeCluster, schema_locations: list[str]) -> Any:
    """``kubeconform(manifests)`` -> CompletedProcess of ``kubeconform -strict`` on stdin."""
    binary = _tool(kube_cluster, "kubeconform")

    def run(manifests: str) -> subprocess.CompletedProcess[str]:
        argv = [binary, "-strict", "-summary", "-skip", ",".join(NO_SCHEMA_KINDS)]
        for location in schema_locations:
            argv += ["-schema-location", location]
        return _run([*argv, "-"], manifests)

    return run


def _template(helm: Any, namespace: str, sets: Sequence[str], *extra: str) -> str:
    args = ["template", "driftline", str(CHART), "--namespace", namespace, *extra]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args)
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout)


def _assert_valid(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, f"kubeconform rejected {what}:\n{result.stdout}{result.stderr}"
    assert "Invalid: 0, Errors: 0" in result.stdout, result.stdout


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_helm_lint(helm: Any, values: str) -> None:
    """``helm lint --strict`` passes with the defaults and with every option on."""
    sets = [arg for item in VALUE_SETS[values] for arg in ("--set", item)]
    proc = helm("lint", "--strict", str(CHART), *sets)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_chart_passes_kubeconform(helm: Any, kubeconform: Any, values: str) -> None:
    """Every rendered object (CRDs included) matches its schema, unknown fields refused."""
    rendered = _template(helm, "driftline-system", VALUE_SETS[values], "--include-crds")
    kinds = {doc["kind"] for doc in _docs(rendered)}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole"} <= kinds
    _assert_valid(kubeconform(rendered), f"the chart with {values} values")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_passes_kubeconform(kubectl: Kubectl, kubeconform: Any, overlay: str) -> None:
    """``kubectl kustomize`` of the base and each overlay matches the schemas."""
    rendered = kubectl("kustomize", str(REPO_ROOT / overlay)).stdout
    _assert_valid(kubeconform(rendered), overlay)


def test_kubeconform_schemas_are_strict(kubeconform: Any) -> None:
    """The generated schemas refuse what they must: without this, a schema that failed to
    compile or allowed anything would let every manifest above pass."""
    bad = {
        "an unknown Deployment field": "apiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: x}\nspec: {selector: {}, template: {}, replica: 2}\n",
        "a string where an integer goes": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: eighty}]}\n",
        "a split above 100%": "apiVersion: driftline.dev/v1alpha1\nkind: ModelDeployment\n"
        "metadata: {name: x}\nspec: {model: {name: m, trackingUri: 'http://m'},"
        " traffic: {challengerPercent: 900}}\n",
        "a kind without a schema": "apiVersion: example.com/v1\nkind: Widget\n"
        "metadata: {name: x}\n",
    }
    for what, manifest in bad.items():
        assert kubeconform(manifest).returncode != 0, f"kubeconform accepted {what}"


def test_rbac_is_the_same_in_chart_and_kustomize(helm: Any, kubectl: Kubectl) -> None:
    """One source: the chart's ClusterRole grants exactly k8s/base/rbac.yaml's rules."""
    chart = _docs(_template(helm, "driftline-system", ()))
    base = _docs(kubectl("kustomize", str(REPO_ROOT / "k8s/base")).stdout)

    def rules(docs: list[dict[str, Any]]) -> Any:
        return next(doc["rules"] for doc in docs if doc["kind"] == "ClusterRole")

    assert rules(chart) == rules(base)


def test_secure_defaults_rendered(helm: Any) -> None:
    """Every container the chart renders runs non-root, read-only, without capabilities."""
    for doc in _docs(_template(helm, "driftline-system", ALL_ON)):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"] and container["resources"]["requests"]
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, doc["metadata"]["name"]


def test_service_monitor_selects_operator_children(helm: Any) -> None:
    """No offline schema for ServiceMonitor: its shape is checked here instead."""
    docs = _docs(_template(helm, "driftline-system", ALL_ON))
    monitor = next(doc for doc in docs if doc["kind"] == "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    # The labels the operator stamps on its Services (operator/driftline_operator/names.py).
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "driftline-operator",
        "app.kubernetes.io/name": "driftline",
    }
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    targets = {relabel["targetLabel"] for relabel in endpoint["relabelings"]}
    assert {"variant", "model_deployment"} <= targets


@pytest.mark.parametrize(("bad", "field"), BAD_VALUES, ids=[bad for bad, _ in BAD_VALUES])
def test_values_schema_rejects(helm: Any, bad: str, field: str) -> None:
    """values.schema.json turns a bad value into a failed install naming the field."""
    proc = helm("template", "driftline", str(CHART), "--set", bad)
    assert proc.returncode != 0, f"--set {bad} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert field in proc.stderr, proc.stderr


@pytest.mark.usefixtures("crds")
def test_helm_install_dry_run_prints_notes(kube_cluster: KubeCluster, namespace: str) -> None:
    """``helm install --dry-run=server`` against the real API server (its version checked
    against the chart's kubeVersion) renders NOTES.txt with the next steps.

    The release has a name of its own: other tests of the tier create the cluster-scoped
    ClusterRole ``driftline-operator`` (k8s/base/rbac.yaml), which Helm would refuse to adopt.
    """
    release = "notes-driftline"
    proc = _run(
        [_tool(kube_cluster, "helm"), "install", release, str(CHART), "--namespace",
         namespace, "--dry-run=server", "--kubeconfig", str(kube_cluster.kubeconfig),
         "--set", "mlflow.enabled=true"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert f"-n {namespace} rollout status deployment/{release}-operator" in notes, notes
    assert f"http://{release}-mlflow.{namespace}:5000" in notes, notes
    assert "WARNING" in notes, "the emptyDir stores must be called out"
    assert "driftline.dev/promote" in notes, notes


def _apply_dry_run(kubectl: Kubectl, manifests: str) -> str:
    """Namespaces for real (dry-run objects cannot land in a namespace that only
    dry-run-exists), then everything with ``--dry-run=server``: admission and the stored
    schemas of the real API server, CRD validation included, nothing persisted."""
    docs = _docs(manifests)
    namespaces = [doc for doc in docs if doc["kind"] == "Namespace"]
    if namespaces:
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all(namespaces))
    return kubectl("apply", "--dry-run=server", "-f", "-", input=manifests).stdout


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("values", ["defaults", "mlflow-dev"])
def test_chart_dry_run_server(helm: Any, kubectl: Kubectl, namespace: str, values: str) -> None:
    """The rendered chart is accepted by the real API server (ServiceMonitor left out: the
    Prometheus Operator's CRDs are not in this cluster)."""
    sets = [*VALUE_SETS[values], "grafanaDashboards.enabled=true"]
    out = _apply_dry_run(kubectl, _template(helm, namespace, sets))
    assert "deployment.apps/driftline-operator created (server dry run)" in out, out


@pytest.mark.usefixtures("crds")
def test_chart_all_on_dry_run_server(helm: Any, kubectl: Kubectl, namespace: str) -> None:
    """Every option but the ServiceMonitor, through the real API server."""
    sets = [*ALL_ON, "serviceMonitor.enabled=false"]
    # The watched namespaces exist where an operator is limited to them: their KopfPeerings
    # are created in them.
    watched = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in WATCHED]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(watched))
    out = _apply_dry_run(kubectl, _template(helm, namespace, sets))
    assert "deployment.apps/driftline-mlflow created (server dry run)" in out, out
    assert out.count("kopfpeering.kopf.dev/driftline created (server dry run)") == len(WATCHED)


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_dry_run_server(kubectl: Kubectl, overlay: str) -> None:
    """Each overlay is accepted by the real API server."""
    out = _apply_dry_run(kubectl, kubectl("kustomize", str(REPO_ROOT / overlay)).stdout)
    assert "deployment.apps/driftline-operator" in out, out


@pytest.mark.usefixtures("crds")
def test_samples_dry_run_server(kubectl: Kubectl, namespace: str) -> None:
    """The samples the chart's NOTES and kind-up point at validate against the CRDs."""
    out = kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(SAMPLES)
    ).stdout  # fmt: skip
    assert "modeldeployment.driftline.dev/adult-income created" in out, out
    assert "driftpolicy.driftline.dev/adult-income-drift created" in out, out


def test_kustomize_copies_are_the_chart_rendering(kube_cluster: KubeCluster) -> None:
    """What ``make verify`` proves through git, here without git: k8s/base/operator.yaml and
    k8s/overlays/dev/mlflow.yaml are the chart's templates rendered as scripts/manifests.py
    renders them."""
    manifests = load_manifests_script()
    helm = _tool(kube_cluster, "helm")
    operator = manifests.for_kustomize(
        manifests.render(helm, manifests.OPERATOR_TEMPLATE, manifests.NAMESPACE)
    )
    mlflow = manifests.dev_mlflow_objects(
        manifests.render(
            helm, manifests.MLFLOW_TEMPLATE, manifests.DEV_MLFLOW_NAMESPACE,
            manifests.DEV_MLFLOW_VALUES,
        )
    )  # fmt: skip
    for path, expected in ((manifests.OPERATOR_BASE, operator), (manifests.DEV_MLFLOW, mlflow)):
        assert _docs(path.read_text()) == expected, f"{path} is stale: run `make manifests`"


def test_webhooks_render_to_the_settings_the_operator_reads(
    helm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's webhook values become DRIFTLINE_WEBHOOKS and a secretKeyRef per secret."""
    webhooks = [
        {"name": "ops-1", "url": "https://hooks.example.com/d", "types": ["dev.driftline.rollback"],
         "secretRef": {"name": "hooks", "key": "ops"}},
        {"name": "chat", "url": "https://slack.example.com/x", "payload": "slack"},
    ]  # fmt: skip
    values = f"operator.webhooks={json.dumps(webhooks)}"
    proc = helm("template", "driftline", str(CHART), "--set-json", values)
    assert proc.returncode == 0, proc.stderr
    deployment = next(
        doc for doc in _docs(proc.stdout)
        if doc["kind"] == "Deployment" and "operator" in doc["metadata"]["name"]
    )  # fmt: skip
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DRIFTLINE_WEBHOOK_SECRET_OPS_1"]["valueFrom"]["secretKeyRef"] == {
        "name": "hooks", "key": "ops",
    }  # fmt: skip
    assert "DRIFTLINE_WEBHOOK_SECRET_CHAT" not in env
    monkeypatch.setenv("DRIFTLINE_WEBHOOKS", env["DRIFTLINE_WEBHOOKS"]["value"])
    settings = OperatorSettings()
    secrets = {"DRIFTLINE_WEBHOOK_SECRET_OPS_1": "k"}
    (ops, chat) = receivers(settings, secrets)
    assert (ops.name, ops.secret, ops.types) == ("ops-1", b"k", {"dev.driftline.rollback"})
    assert (chat.payload, chat.secret, chat.types) == ("slack", None, frozenset())
