"""Every object one ModelDeployment should own, given the resolved versions (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftline_operator import names
from driftline_operator.builders import router, serving
from driftline_operator.settings import OperatorSettings
from driftline_operator.specs import ModelDeploymentObject


@dataclass(frozen=True)
class DesiredChildren:
    """What to apply (in order) and which possible children must not exist."""

    objects: list[dict[str, Any]]
    absent: list[tuple[str, str]] = field(default_factory=list)
    hpa_owned: frozenset[str] = frozenset()


def desired_children(
    md: ModelDeploymentObject,
    champion: str,
    challenger: str | None,
    percent: int,
    settings: OperatorSettings,
) -> DesiredChildren:
    """Variants, router, split and HPAs for the resolved champion and challenger versions.

    ``percent`` is the challenger's share now: ``traffic.challengerPercent``, or the current
    step's when a rollout governs the challenger.

    ``absent`` lists (kind, name) of children this resource may have had (a cleared challenger,
    a removed autoscaling block) so the caller deletes them; ``hpa_owned`` names the
    Deployments whose replicas an HPA owns.
    """
    md_name = md.owner.name
    autoscaled = md.spec.serving.autoscaling is not None
    versions = {names.CHAMPION: champion, names.CHALLENGER: challenger}
    objects: list[dict[str, Any]] = []
    absent: list[tuple[str, str]] = []
    hpa_owned: set[str] = set()
    for variant, version in versions.items():
        child = names.variant_name(md_name, variant)
        if version is None:
            absent += [
                ("Deployment", child),
                ("Service", child),
                ("HorizontalPodAutoscaler", child),
            ]
            continue
        objects.append(serving.build_variant_deployment(md, variant, version, settings))
        objects.append(serving.build_variant_service(md.owner, variant))
        if autoscaled:
            objects.append(serving.build_variant_hpa(md, variant))
            hpa_owned.add(child)
        else:
            absent.append(("HorizontalPodAutoscaler", child))
    basis_points = router.split_basis_points(percent, challenger is not None)
    objects.append(router.build_split_configmap(md.owner, basis_points))
    objects.append(router.build_router_deployment(md, challenger is not None, settings))
    objects.append(router.build_router_service(md.owner))
    return DesiredChildren(objects, absent, frozenset(hpa_owned))


def without_replicas(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Deployment without ``spec.replicas``, so applying it never fights an HPA."""
    spec = {k: v for k, v in obj["spec"].items() if k != "replicas"}
    return {**obj, "spec": spec}
