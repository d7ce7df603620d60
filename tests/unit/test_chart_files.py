"""The packaging files parse, and the generated copies equal their one source.

Rendering, schema validation and the API server's verdict are in tests/kube/test_manifests.py
(helm, kubeconform and kubectl are binaries of that tier); this tier needs only Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.manifests_script import load_manifests_script

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/driftline"
# Every YAML file of the chart (templates aside: they are Go templates), kustomize, kind and CI.
YAML_FILES = sorted(
    [
        *CHART.glob("*.yaml"),
        *(CHART / "crds").glob("*.yaml"),
        *(CHART / "files").glob("*.yaml"),
        *(ROOT / "k8s").rglob("*.yaml"),
        *(ROOT / ".github/workflows").glob("*.yaml"),
    ]
)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    """Every document of every file is YAML that loads to a mapping or a list."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict | list) for doc in docs)


def test_values_schema_is_json_and_covers_every_value() -> None:
    """Every top-level value has a schema entry, and unknown keys are refused."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) == set(schema["properties"])


def test_values_spell_out_secure_defaults() -> None:
    """The secure pod settings are in values.yaml, visible, not hidden in templates."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for part in ("operator", "mlflow"):
        pod = values[part]["podSecurityContext"]
        container = values[part]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["readOnlyRootFilesystem"] is True
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}
        assert values[part]["resources"]["requests"] and values[part]["resources"]["limits"]
    images = values["images"]
    assert {name: image["repository"] for name, image in images.items()} == {
        "operator": "driftline/operator",
        "inference": "driftline/inference",
        "trainer": "driftline/trainer",
    }


def test_crd_copies_equal_the_source() -> None:
    """charts/driftline/crds and k8s/base/crds are byte-for-byte copies of crds/."""
    sources = {path.name: path.read_bytes() for path in (ROOT / "crds").glob("*.yaml")}
    assert sources
    for copy_dir in ("charts/driftline/crds", "k8s/base/crds"):
        copies = {path.name: path.read_bytes() for path in (ROOT / copy_dir).glob("*.yaml")}
        assert copies == sources, f"{copy_dir} is stale: run `make manifests`"


def test_chart_rbac_rules_equal_the_kustomize_rbac() -> None:
    """The chart's rules file is k8s/base/rbac.yaml's ClusterRole rules, comments and all."""
    manifests = load_manifests_script()
    rbac = (ROOT / "k8s/base/rbac.yaml").read_text()
    role = next(d for d in yaml.safe_load_all(rbac) if d and d["kind"] == "ClusterRole")
    chart_rules = manifests.RBAC_RULES.read_text()
    assert yaml.safe_load(chart_rules) == role["rules"]
    assert chart_rules.endswith(manifests.rbac_rules_text(rbac)), "run `make manifests`"
    # Each rule keeps the comment that says why it exists.
    assert chart_rules.count("\n# ") >= len(role["rules"])


def test_kustomize_base_lists_every_generated_crd() -> None:
    """A CRD added to crds/ is also listed in the kustomize base."""
    kustomization = yaml.safe_load((ROOT / "k8s/base/kustomization.yaml").read_text())
    listed = {Path(r).name for r in kustomization["resources"] if r.startswith("crds/")}
    assert listed == {path.name for path in (ROOT / "crds").glob("*.yaml")}


def test_kind_workflow_runs_kind_up() -> None:
    """The hosted-runner workflow is valid and runs `make kind-up`."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/kind-e2e.yaml").read_text())
    # YAML 1.1 reads the bare key `on` as True.
    assert workflow.get("on", workflow.get(True))
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any("make kind-up" in step.get("run", "") for step in steps)
