"""The API types and the CRDs generated from them (driftline.api): one source, kept in step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from driftline.api.crd import SchemaError, custom_resource_definition, structural
from driftline.api.k8s_types import ApiModel, ResourceKind
from driftline.api.v1alpha1 import RESOURCES, DriftPolicySpec, ModelDeploymentSpec
from tests.kube.cluster import REPO_ROOT

# Keys a structural schema may not carry (apiextensions.k8s.io/v1).
FORBIDDEN = {"$ref", "$defs", "title", "allOf", "oneOf", "propertyNames", "const"}


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object under ``node`` with its dotted path."""
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        found += walk(node.get(key), f"{path}.{key}")
    return found


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_committed_crd_is_the_generated_one(resource: ResourceKind) -> None:
    """`make manifests` was run: crds/ holds exactly what the API types generate."""
    committed = yaml.safe_load(
        (REPO_ROOT / f"crds/{resource.plural}.driftline.dev.yaml").read_text()
    )
    assert committed == custom_resource_definition(resource)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_generated_schema_is_structural(resource: ResourceKind) -> None:
    root = custom_resource_definition(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(root):
        assert not FORBIDDEN & node.keys(), path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(key, True) is True, f"{path}: {key} must be a boolean"
        assert node.get("default", 0) is not None, f"{path}: null default"


@pytest.mark.parametrize(
    ("model", "minimal"),
    [
        # Every optional block present and empty, so each default inside one is reached.
        (ModelDeploymentSpec, {
            "model": {"name": "m", "trackingUri": "http://m",
                      "credentialsSecretRef": {"name": "c"}},
            "serving": {"autoscaling": {}}, "logging": {"storeRef": {"secretName": "s"}},
            "rollout": {"steps": [{"challengerPercent": 10}]},
        }),
        (DriftPolicySpec, {"modelDeploymentRef": {"name": "m"}, "performance": {"floor": 0.8},
                           "retrain": {"data": {}}}),
    ],
)  # fmt: skip
def test_every_schema_default_is_the_models(model: type[ApiModel], minimal: dict[str, Any]) -> None:
    """A default written in the schema equals what the model fills in for the absent field."""
    schema = structural(model.model_json_schema(by_alias=True))
    filled = model.model_validate(minimal).model_dump(by_alias=True, exclude_none=True)
    for path, node in walk(schema):
        if "default" not in node or ".items" in path or ".additionalProperties" in path:
            continue
        value: Any = filled
        for key in path.strip(".").split("."):
            value = value[key]
        if node["default"] == {}:
            # The server fills in ``{}``, then the defaults inside it (checked on their own).
            assert isinstance(value, dict), path
        else:
            assert value == node["default"], path


def test_a_union_without_a_structural_form_is_refused() -> None:
    with pytest.raises(SchemaError, match="no structural form"):
        structural({"anyOf": [{"type": "integer"}, {"type": "boolean"}]})


def test_optional_fields_and_references_are_inlined() -> None:
    schema = {
        "$defs": {"Inner": {"type": "object", "title": "Inner", "description": "in",
                            "properties": {"n": {"type": "integer", "exclusiveMinimum": 0,
                                                 "title": "N"}}}},
        "type": "object",
        "properties": {"inner": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}],
                                 "default": None}},
    }  # fmt: skip
    assert structural(schema) == {
        "type": "object",
        "properties": {
            "inner": {"type": "object", "description": "in",
                      "properties": {"n": {"type": "integer", "minimum": 0,
                                           "exclusiveMinimum": True}}},
        },
    }  # fmt: skip
