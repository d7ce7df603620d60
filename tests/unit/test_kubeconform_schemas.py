"""The OpenAPI -> kubeconform schema conversion (tests/kube/kubeconform_schemas.py), by example."""

from __future__ import annotations

from pathlib import Path

from tests.kube.kubeconform_schemas import builtin_schemas, crd_schemas, schema_file_name, strict

ROOT = Path(__file__).resolve().parents[2]


def test_file_names_follow_kubeconform_kind_suffix() -> None:
    """Group cut at its first dot, core group without one, all lowercase."""
    assert schema_file_name("Deployment", "apps", "v1") == "deployment-apps-v1.json"
    assert schema_file_name("Service", "", "v1") == "service-v1.json"
    assert schema_file_name("ClusterRole", "rbac.authorization.k8s.io", "v1") == (
        "clusterrole-rbac-v1.json"
    )
    assert schema_file_name("ModelDeployment", "driftline.dev", "v1alpha1") == (
        "modeldeployment-driftline-v1alpha1.json"
    )


def test_strict_closes_objects_and_allows_null() -> None:
    """Known properties only; null where a value may be left out; int-or-string both ways."""
    converted = strict(
        {
            "type": "object",
            "properties": {
                "port": {"type": "string", "format": "int-or-string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "properties": {"a": {"type": "string"}}},
            },
        }
    )  # fmt: skip
    assert converted["additionalProperties"] is False
    assert converted["type"] == ["object", "null"]
    port = converted["properties"]["port"]
    assert "type" not in port
    assert {"type": "integer"} in port["anyOf"] and {"type": "string"} in port["anyOf"]
    assert "additionalProperties" not in converted["properties"]["free"]


def test_property_names_that_are_keywords_stay_properties() -> None:
    """JSONSchemaProps has properties named "anyOf", "type" and "format": they are schemas to
    convert, never keywords to act on (mangling them made kubeconform drop the CRD schema)."""
    converted = strict(
        {
            "type": "object",
            "properties": {
                "anyOf": {"type": "array", "items": {"type": "object"}},
                "format": {"type": "string"},
                "x-kubernetes-int-or-string": {"type": "boolean"},
            },
        }
    )
    assert set(converted["properties"]) == {"anyOf", "format", "x-kubernetes-int-or-string"}
    assert converted["properties"]["anyOf"]["type"] == ["array", "null"]
    assert converted["properties"]["x-kubernetes-int-or-string"]["type"] == ["boolean", "null"]


def test_builtin_kinds_carry_their_definitions() -> None:
    """Each kind file holds the definitions it reaches (recursion included); CRD kinds that the
    cluster happened to serve are left to crd_schemas."""
    prefix = "io.k8s.api.apps.v1."
    openapi = {
        "definitions": {
            prefix + "Thing": {
                "type": "object",
                "properties": {"spec": {"$ref": "#/definitions/" + prefix + "Node"}},
                "x-kubernetes-group-version-kind": [
                    {"group": "apps", "version": "v1", "kind": "Thing"}
                ],
            },
            prefix + "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/" + prefix + "Node"}},
            },
            "dev.driftline.v1alpha1.ModelDeployment": {
                "type": "object",
                "x-kubernetes-group-version-kind": [
                    {"group": "driftline.dev", "version": "v1alpha1", "kind": "ModelDeployment"}
                ],
            },
        }
    }
    files = builtin_schemas(openapi)
    assert set(files) == {"thing-apps-v1.json"}
    assert set(files["thing-apps-v1.json"]["definitions"]) == {prefix + "Thing", prefix + "Node"}


def test_crd_schemas_from_the_repository() -> None:
    """One strict schema per served version of each CRD in crds/."""
    files = crd_schemas(sorted((ROOT / "crds").glob("*.yaml")))
    assert set(files) == {
        "modeldeployment-driftline-v1alpha1.json",
        "driftpolicy-driftline-v1alpha1.json",
        # kopf's peering records: the chart ships them for operator replicas.
        "clusterkopfpeering-kopf-v1.json",
        "kopfpeering-kopf-v1.json",
    }
    spec = files["modeldeployment-driftline-v1alpha1.json"]["properties"]["spec"]
    assert spec["additionalProperties"] is False
