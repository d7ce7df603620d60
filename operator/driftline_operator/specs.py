"""The edge where a custom resource's body becomes typed: its owner identity and parsed spec.

The API server validated the body against the generated CRD, so parsing fails only when the
stored object predates a schema change; that is an ``InvalidSpecError`` naming the field, which
the wiring reports as a ``Degraded`` condition rather than a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from driftline.api.v1alpha1 import DriftPolicySpec, ModelDeploymentSpec
from driftline_operator.names import Owner

S = TypeVar("S", bound=BaseModel)


class InvalidSpecError(Exception):
    """A stored spec the API types refuse (a field named in the message)."""


@dataclass(frozen=True)
class CustomObject(Generic[S]):
    """One ModelDeployment or DriftPolicy: who owns the children, its spec and generation."""

    owner: Owner
    spec: S
    generation: int


ModelDeploymentObject = CustomObject[ModelDeploymentSpec]
DriftPolicyObject = CustomObject[DriftPolicySpec]


def parse(body: dict[str, Any], model: type[S]) -> CustomObject[S]:
    """``body`` (a custom resource as read from the API) with its spec parsed as ``model``.

    Raises InvalidSpecError with the first refused field's path (``spec.serving.replicas``).
    """
    try:
        spec = model.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(["spec", *(str(part) for part in error["loc"])])
        kind, name = body.get("kind", "object"), body["metadata"].get("name", "")
        raise InvalidSpecError(f"{kind} {name}: {path}: {error['msg']}") from exc
    return CustomObject(Owner.of(body), spec, int(body["metadata"].get("generation", 0)))


def model_deployment(body: dict[str, Any]) -> ModelDeploymentObject:
    """A ModelDeployment body, typed (InvalidSpecError on a refused spec)."""
    return parse(body, ModelDeploymentSpec)


def drift_policy(body: dict[str, Any]) -> DriftPolicyObject:
    """A DriftPolicy body, typed (InvalidSpecError on a refused spec)."""
    return parse(body, DriftPolicySpec)
