"""CustomResourceDefinitions generated from the API models (pure; ``make manifests`` calls it).

Pydantic writes JSON Schema 2020-12; the API server wants a structural OpenAPI v3 schema.
``structural`` converts one into the other: references inlined, optional (``X | None``) fields
collapsed to ``X``, ``exclusiveMinimum: n`` rewritten as ``minimum: n`` and
``exclusiveMinimum: true``, and what a structural schema forbids (titles, null defaults,
``additionalProperties: false``, ``propertyNames``) dropped. Source: Kubernetes, "Specifying a
structural schema" (apiextensions.k8s.io/v1 CustomResourceDefinition).
"""

from __future__ import annotations

from typing import Any

from driftline.api.k8s_types import ResourceKind
from driftline.api.v1alpha1 import GROUP, VERSION

# The order keys are written in, so a generated CRD reads like a hand-written one.
KEY_ORDER = (
    "type",
    "description",
    "required",
    "default",
    "enum",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
    "items",
    "additionalProperties",
    "properties",
)
DROPPED = frozenset({"title", "propertyNames", "$defs"})


class SchemaError(ValueError):
    """A model uses a JSON Schema construct that has no structural equivalent."""


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pydantic JSON schema (``model_json_schema(by_alias=True)``) as a structural schema.

    Raises SchemaError on a union of two real types (other than Kubernetes' int-or-string).
    """
    defs = schema.get("$defs", {}) if defs is None else defs
    node = _resolved(schema, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED or (key == "default" and value is None):
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: structural(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value
    return _ordered(out)


def _resolved(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref``, ``allOf`` of one and ``X | None`` merged into one object."""
    node = dict(node)
    options = node.get("anyOf")
    if options is not None and not node.get("x-kubernetes-int-or-string"):
        real = [o for o in options if o != {"type": "null"}]
        if len(real) != 1:
            raise SchemaError(f"a union has no structural form: {options}")
        del node["anyOf"]
        node = {**real[0], **node}
    parts = node.pop("allOf", [{}])
    if len(parts) != 1:
        raise SchemaError(f"an allOf of {len(parts)} schemas has no structural form")
    (only,) = parts
    node = {**only, **node}
    ref = node.pop("$ref", None)
    if ref is not None:
        target = defs[ref.rsplit("/", 1)[-1]]
        # The field's own keys (its description, default) win over the model's.
        node = {**_resolved(target, defs), **node}
    return node


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(rank))))


def custom_resource_definition(resource: ResourceKind) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CRD of ``resource``: one served and stored version."""
    spec = structural(resource.spec.model_json_schema(by_alias=True))
    status = structural(resource.status.model_json_schema(by_alias=True))
    root = {
        "type": "object",
        "description": resource.description,
        "required": ["spec"],
        "x-kubernetes-validations": [resource.name_rule],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation.",
            },
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    singular = resource.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": singular,
                "shortNames": list(resource.short_names),
                "categories": ["driftline"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(resource.printer_columns),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
