"""Kubernetes value types shared by the API versions: names, quantities, resources (pure).

Each type carries the OpenAPI schema the API server validates it with (``WithJsonSchema`` or
``json_schema_extra``), so the CRD generated from the models admits what the models accept.
Rules the API server checks with CEL (a request not above its limit) are left to it: the
models accept every value it admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

# A DNS-1123 subdomain: Secret names.
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A key of a Secret or ConfigMap.
CONFIG_KEY = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
# A quantity as Kubernetes writes it: 250m, 1.5, 512Mi, 1e3 (no sign: requests are never < 0).
QUANTITY = r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE]\+?[0-9]+))?$"
# An image reference: anything without whitespace (the runtime resolves it).
IMAGE = r"^\S+$"

SecretName = Annotated[str, StringConstraints(max_length=253, pattern=DNS1123_SUBDOMAIN)]
SecretKey = Annotated[str, StringConstraints(max_length=253, pattern=CONFIG_KEY)]
Image = Annotated[str, StringConstraints(pattern=IMAGE)]

_QUANTITY_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "minimum": 0,
    "maxLength": 24,
    "pattern": QUANTITY,
}
# Strict int: "1" stays the string the user wrote (lax mode would turn it into 1).
Quantity = Annotated[
    StrictInt | Annotated[str, StringConstraints(max_length=24, pattern=QUANTITY)],
    WithJsonSchema(_QUANTITY_SCHEMA),
]
ResourceName = Literal["cpu", "memory", "ephemeral-storage"]
RESOURCE_NAMES: tuple[str, ...] = get_args(ResourceName)


class ApiModel(BaseModel):
    """Base of every API type: camelCase on the wire, snake_case in Python, unknown fields ignored.

    Unknown fields are ignored rather than refused: the API server prunes them before they
    reach the operator, and a newer CRD's field must not break an older operator.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


def cel(*rule_and_message: str) -> dict[str, Any]:
    """``x-kubernetes-validations``: CEL rules the API server checks, as (rule, message) pairs.

    Source: Kubernetes, "Validation rules" (CustomResourceDefinition x-kubernetes-validations).
    """
    pairs = zip(rule_and_message[::2], rule_and_message[1::2], strict=True)
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in pairs]}


def resource_list(description: str) -> Any:
    """A ``requests`` or ``limits`` map: cpu, memory, ephemeral-storage to quantities."""
    return Field(
        None,
        description=description,
        max_length=len(RESOURCE_NAMES),
        json_schema_extra=cel(
            f"self.all(k, k in {list(RESOURCE_NAMES)})",
            f"resources are {', '.join(RESOURCE_NAMES[:-1])} and {RESOURCE_NAMES[-1]}",
        ),
    )


class ResourceRequirements(ApiModel):
    """Requests and limits of a container (a subset of core/v1 ResourceRequirements)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits)"
            " || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k])))"
            " <= 0)",
            "a request must not exceed its limit",
        )
    )

    requests: dict[ResourceName, Quantity] | None = resource_list(
        "Resources reserved for the container."
    )
    limits: dict[ResourceName, Quantity] | None = resource_list(
        "Most resources the container may use."
    )

    def manifest(self) -> dict[str, Any]:
        """The ``resources`` block of a container spec."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Condition(ApiModel):
    """One standard condition (metav1.Condition without its required time)."""

    type: str = Field(description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(description="Condition status.")
    reason: str | None = Field(None, description="CamelCase reason.")
    message: str | None = Field(None, description="Human-readable detail.")
    last_transition_time: str | None = Field(None, description="When status last changed.")
    observed_generation: int | None = Field(None, description="Generation the condition describes.")


def conditions_field(description: str) -> Any:
    """``status.conditions``: a list map keyed by ``type`` (server-side apply merges by it)."""
    return Field(
        None,
        description=description,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def nested(model: type[ApiModel], description: str) -> Any:
    """A nested block that defaults to its own defaults (``default: {}`` in the CRD)."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})


class KeyRef(ApiModel):
    """A key of a Secret or ConfigMap in the same namespace."""

    name: SecretName = Field(description="Secret or ConfigMap name in the same namespace.")
    key: SecretKey = Field(description="The key whose value is used.")
    optional: bool = Field(False, description="Start the pod even when the key is missing.")


class EnvSource(ApiModel):
    """Where a variable's value comes from: a Secret key (secrets by reference) or a ConfigMap's."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "has(self.secretKeyRef) != has(self.configMapKeyRef)",
            "name exactly one of secretKeyRef and configMapKeyRef",
        )
    )

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("name exactly one of secretKeyRef and configMapKeyRef")
        return self


def printer_column(name: str, type_: str, json_path: str, description: str = "") -> dict[str, str]:
    """One ``additionalPrinterColumns`` entry of ``kubectl get``."""
    column = {"name": name, "type": type_, "jsonPath": json_path}
    return {**column, "description": description} if description else column


@dataclass(frozen=True)
class ResourceKind:
    """A custom resource kind: its names, types, printer columns and object-level rule."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[ApiModel]
    status: type[ApiModel]
    printer_columns: tuple[dict[str, str], ...]
    # A CEL rule on the whole object (its metadata.name fits the children's names).
    name_rule: dict[str, str]


def resources_field(default: dict[str, Any], description: str) -> Any:
    """A container's ``resources`` with ``default`` when unset (the CRD carries the same)."""
    return Field(
        default_factory=lambda: ResourceRequirements.model_validate(default),
        description=description,
        json_schema_extra={"default": default},
    )
