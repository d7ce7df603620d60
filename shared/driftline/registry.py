"""The MLflow model registry as Driftline uses it: versions, two aliases and a champion history.

Only the aliases ``champion`` and ``challenger`` carry meaning (no deprecated stages). Every move
of ``champion`` (first champion, promotion, rollback) claims the model's next *generation*
before writing (see ``champion_claim``), so two racing promotions cannot both move the alias;
the history lives in model version tags so ``rollback`` can step back.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.champion_claim import (
    Claim,
    ClaimConflictError,
    ClaimExpiredError,
    claim_generation,
)
from driftline.promotion import Comparison, ComparisonRule, compare, compare_paired
from driftline.registry_conventions import (
    CHALLENGER,
    CHAMPION,
    METRIC_PREFIX,
    PAIRED_CHAMPION_TAG,
    PAIRED_DATASETS,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

TAG_GENERATION = "driftline.generation"
TAG_CHAMPION_SEQ = "driftline.champion_seq"
TAG_ARCHIVED = "driftline.archived"
TAG_ROLLED_BACK = "driftline.rolled_back"
TAG_PROMOTED_AT = "driftline.promoted_at"


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why in one line."""


class ModelNotFoundError(RegistryError):
    """The registered model or version does not exist."""


class NoChallengerError(RegistryError):
    """Promotion was asked for but no challenger is set."""


class PromotionConflictError(RegistryError):
    """Another promotion or rollback moved ``champion`` concurrently."""


class PromotionRejectedError(RegistryError):
    """The challenger does not beat the champion by the rule's delta."""


@dataclass(frozen=True)
class VersionInfo:
    """One model version as listed by ``driftline models``."""

    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created: int
    tags: dict[str, str]


@dataclass(frozen=True)
class AliasMove:
    """What a promotion or rollback did."""

    model: str
    previous_champion: str | None
    champion: str
    generation: int
    comparison: Comparison | None = None
    # What the move did beyond the plain alias change (no rule applied, forced), or None.
    note: str | None = None


class ModelRegistry:
    """Registry operations on one MLflow tracking/registry server."""

    def __init__(
        self,
        client: MlflowClient,
        clock: Callable[[], float] = time.time,
        claim_seconds: float = 120.0,
    ) -> None:
        """Wrap an ``MlflowClient``; ``clock`` stamps promotion tags (Unix seconds).

        ``claim_seconds`` is the lease of a champion move's claim (see ``champion_claim``).
        """
        self._client = client
        self._clock = clock
        self._claim_seconds = claim_seconds

    def register(self, name: str, model_uri: str, run_id: str, model_id: str | None) -> str:
        """Create a new version of ``name`` (creating the registered model if needed)."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self._client.create_model_version(
            name, source=model_uri, run_id=run_id, model_id=model_id
        )
        return str(version.version)

    def register_run(self, name: str, run_id: str) -> str:
        """Register the model logged by a training run as a new version of ``name``."""
        run = _not_found_as(lambda: self._client.get_run(run_id), f"no run {run_id!r}")
        logged = self._client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{_quote(run_id)}'",
        )
        if not logged:
            raise ModelNotFoundError(f"run {run_id!r} logged no model")
        model_id = logged[0].model_id
        return self.register(name, f"models:/{model_id}", run_id, model_id)

    def apply_alias(self, name: str, version: str, alias: str | None) -> str | None:
        """Point ``alias`` at a new version; returns the alias set, or None.

        With no alias asked for, a model that has no champion gets this version as its first
        champion: otherwise a fresh store would have nothing to serve, promote against or roll
        back to.
        """
        if alias is None and self.alias_version(name, CHAMPION) is None:
            alias = CHAMPION
        if alias == CHAMPION:
            self.make_champion(name, version)
        elif alias == CHALLENGER:
            self.set_challenger(name, version)
        elif alias is not None:
            raise RegistryError(f"unknown alias {alias!r}; use {CHAMPION!r} or {CHALLENGER!r}")
        return alias

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points to, or None when the alias is not set."""
        aliases = self._model(name).aliases
        value = aliases.get(alias)
        return str(value) if value is not None else None

    def set_challenger(self, name: str, version: str) -> None:
        """Point ``challenger`` at a version."""
        self._version(name, version)
        self._client.set_registered_model_alias(name, CHALLENGER, version)

    def make_champion(self, name: str, version: str) -> AliasMove:
        """Point ``champion`` at a version directly (first deployment or a forced promotion)."""
        self._version(name, version)
        return self._move_champion(name, version, None)

    def promote(
        self, name: str, rule: ComparisonRule, *, version: str | None = None, force: bool = False
    ) -> AliasMove:
        """Move ``champion`` to the challenger (or ``version``) and clear ``challenger``.

        Unless ``force``, the candidate must beat the current champion by the rule. With no
        champion there is nothing to compare with: the move happens and ``note`` says so.
        Raises ``NoChallengerError``, ``PromotionRejectedError``, ``PromotionConflictError``.
        """
        candidate = version or self.alias_version(name, CHALLENGER)
        if candidate is None:
            raise NoChallengerError(f"model {name!r} has no {CHALLENGER!r} to promote")
        self._version(name, candidate)
        champion = self.alias_version(name, CHAMPION)
        if champion == candidate:
            raise RegistryError(f"version {candidate} of {name!r} is already the champion")
        if champion is None:
            note = f"no champion to compare with: the {rule.metric} rule was not applied"
            return self._move_champion(name, candidate, None, note=note)
        comparison = self._paired(name, candidate, champion, rule) or compare(
            rule,
            self.metric(name, champion, rule.metric),
            self.metric(name, candidate, rule.metric),
        )
        refusal = (
            f"version {candidate} does not beat champion {champion} on {rule.metric}:"
            f" {comparison.challenger:.4f} vs {comparison.champion:.4f}"
        )
        if comparison.low is None:
            refusal += f" (improvement {comparison.improvement:+.4f} < {rule.min_delta})"
        else:
            refusal += (
                f" paired on {comparison.rows} {comparison.dataset} rows (improvement"
                f" {comparison.improvement:+.4f}, 95% interval {comparison.low:+.4f} to"
                f" {comparison.high:+.4f}: lower bound not above {rule.min_delta})"
            )
        if comparison.challenger_wins:
            return self._move_champion(name, candidate, comparison)
        if not force:
            raise PromotionRejectedError(refusal)
        return self._move_champion(name, candidate, comparison, note=f"forced: {refusal}")

    def _paired(
        self, name: str, candidate: str, champion: str, rule: ComparisonRule
    ) -> Comparison | None:
        """The candidate's paired comparison with ``champion`` on ``rule.metric``, or None.

        Only a comparison its training run measured against that very version counts; the
        recent holdout is preferred to the test split.
        """
        metrics, tags = self.run_data(name, candidate)
        if tags.get(PAIRED_CHAMPION_TAG) != champion:
            return None
        for dataset in PAIRED_DATASETS:
            key = f"paired_{dataset}_{rule.metric}"
            if f"{key}_low" in metrics:
                return compare_paired(
                    rule,
                    metrics[f"{key}_champion"],
                    metrics[f"{key}_challenger"],
                    (metrics[f"{key}_low"], metrics[f"{key}_high"]),
                    dataset,
                    int(metrics[f"paired_{dataset}_rows"]),
                )
        return None

    def rollback(self, name: str) -> AliasMove:
        """Move ``champion`` back to the version that held it before the current one."""
        current = self.alias_version(name, CHAMPION)
        if current is None:
            raise RegistryError(f"model {name!r} has no {CHAMPION!r} to roll back")
        history = self.champion_history(name)
        position = history.index(current) if current in history else len(history)
        if position == 0:
            raise RegistryError(f"version {current} of {name!r} has no earlier champion")
        previous = history[position - 1]
        return self._move_champion(name, previous, None, rolled_back=current)

    def champion_history(self, name: str) -> list[str]:
        """Versions that have been champion and were not rolled back, oldest first."""
        versions = self._client.search_model_versions(f"name = '{_quote(name)}'")
        ranked = [
            (int(v.tags[TAG_CHAMPION_SEQ]), str(v.version))
            for v in versions
            if TAG_CHAMPION_SEQ in v.tags
        ]
        return [version for _, version in sorted(ranked)]

    def metric(self, name: str, version: str, metric: str) -> float:
        """A test metric of the run that produced a version."""
        metrics, _ = self.run_data(name, version)
        key = METRIC_PREFIX + metric
        if key not in metrics:
            raise RegistryError(f"the run of version {version} has no metric {key!r}")
        return float(metrics[key])

    def run_data(self, name: str, version: str) -> tuple[dict[str, float], dict[str, str]]:
        """The metrics and tags of the run that produced a version."""
        run_id = self._version(name, version).run_id
        if not run_id:
            raise RegistryError(f"version {version} of {name!r} has no training run")
        data = self._client.get_run(run_id).data
        return dict(data.metrics), dict(data.tags)

    def artifact_text(self, name: str, version: str, path: str) -> str:
        """A text artifact of the run that produced a version (for example its schema)."""
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.download(name, version, path, tmp)).read_text()

    def download(self, name: str, version: str, path: str, destination: str) -> str:
        """Download an artifact (file or folder) of a version's run; returns the local path."""
        from mlflow.artifacts import download_artifacts

        run_id = self._version(name, version).run_id
        return str(
            download_artifacts(
                run_id=run_id,
                artifact_path=path,
                dst_path=destination,
                tracking_uri=self._client.tracking_uri,
            )
        )

    def source(self, name: str, version: str) -> str:
        """Where a version's MLflow model lives (in MLflow 3, a ``models:/m-...`` URI)."""
        return str(self._version(name, version).source)

    def has_model(self, name: str) -> bool:
        """Whether a registered model of this name exists."""
        try:
            self._model(name)
        except ModelNotFoundError:
            return False
        return True

    def versions(self, name: str) -> list[VersionInfo]:
        """All versions of a model, newest first, with their aliases and tags."""
        aliases: dict[str, list[str]] = {}
        for alias, version in self._model(name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        found = self._client.search_model_versions(f"name = '{_quote(name)}'")
        infos = [
            VersionInfo(
                version=str(v.version),
                aliases=tuple(sorted(aliases.get(str(v.version), []))),
                run_id=v.run_id,
                created=int(v.creation_timestamp or 0),
                tags=dict(v.tags),
            )
            for v in found
        ]
        return sorted(infos, key=lambda i: -int(i.version))

    def _move_champion(
        self,
        name: str,
        target: str,
        comparison: Comparison | None,
        *,
        rolled_back: str | None = None,
        note: str | None = None,
    ) -> AliasMove:
        before = self.alias_version(name, CHAMPION)
        try:
            claim = claim_generation(
                self._client, name, lambda: self._generation(name), self._claim_seconds
            )
            if self.alias_version(name, CHAMPION) != before:
                raise ClaimConflictError(f"{CHAMPION!r} of {name!r} moved during this operation")
            self._write_move(name, target, before, claim, rolled_back)
        except (ClaimConflictError, ClaimExpiredError) as exc:
            raise PromotionConflictError(str(exc)) from exc
        if self.alias_version(name, CHAMPION) != target:
            raise PromotionConflictError(f"{CHAMPION!r} of {name!r} was overwritten concurrently")
        return AliasMove(name, before, target, claim.generation, comparison, note)

    def _write_move(
        self, name: str, target: str, before: str | None, claim: Claim, rolled_back: str | None
    ) -> None:
        """The writes of one champion move; each is preceded by a check that the claim holds."""
        client = self._client
        writes: list[Callable[[], object]] = [
            lambda: client.set_registered_model_alias(name, CHAMPION, target),
            lambda: client.set_model_version_tag(
                name, target, TAG_PROMOTED_AT, str(int(self._clock()))
            ),
        ]
        if TAG_ARCHIVED in self._version(name, target).tags:
            writes.append(lambda: client.delete_model_version_tag(name, target, TAG_ARCHIVED))
        if rolled_back is None:
            writes.append(
                lambda: client.set_model_version_tag(
                    name, target, TAG_CHAMPION_SEQ, str(claim.generation)
                )
            )
        if self.alias_version(name, CHALLENGER) == target:
            writes.append(lambda: client.delete_registered_model_alias(name, CHALLENGER))
        if before is not None and before != target:
            writes.append(lambda: client.set_model_version_tag(name, before, TAG_ARCHIVED, "true"))
        if rolled_back is not None:
            writes.append(
                lambda: client.set_model_version_tag(name, rolled_back, TAG_ROLLED_BACK, "true")
            )
            writes.append(
                lambda: client.delete_model_version_tag(name, rolled_back, TAG_CHAMPION_SEQ)
            )
        # The generation tag last: it commits the move (see ``champion_claim``).
        writes.append(
            lambda: client.set_registered_model_tag(name, TAG_GENERATION, str(claim.generation))
        )
        for write in writes:
            claim.check()
            write()

    def _generation(self, name: str) -> int:
        return int(self._model(name).tags.get(TAG_GENERATION, "0"))

    def _model(self, name: str) -> Any:
        return _not_found_as(
            lambda: self._client.get_registered_model(name), f"no registered model {name!r}"
        )

    def _version(self, name: str, version: str) -> ModelVersion:
        found: ModelVersion = _not_found_as(
            lambda: self._client.get_model_version(name, version),
            f"model {name!r} has no version {version!r}",
        )
        return found


def _not_found_as(call: Callable[[], Any], message: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise ModelNotFoundError(message) from exc
        raise


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
