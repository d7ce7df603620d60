"""Validation of prediction requests against the feature schema (pure).

Built once per model into per-feature checkers, so a record costs a dictionary walk. Errors name
the offending field with its full path (``features.age``, ``records[3].features.sex``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftline.request_ids import MAX_REQUEST_ID, valid_request_id
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema, FeatureSpec
from driftline_serving.errors import InvalidInputError

REQUEST_KEYS = frozenset({"features", "request_id", "explain"})
BATCH_KEYS = frozenset({"records", "explain"})
RECORD_KEYS = frozenset({"features", "request_id"})
LABEL_KEYS = frozenset({"request_id", "label"})
FEEDBACK_BATCH_KEYS = frozenset({"labels"})

Checker = Callable[[Any, str], tuple[Any, bool]]
# The models compute in 32-bit floats (ONNX Runtime, XGBoost): a larger magnitude is infinite
# there, and XGBoost refuses infinite inputs (a 500 that schemathesis found with explain=true).
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class ValidRecord:
    """A record ready for the model: values in schema order and the raw features for the log.

    ``unknown`` names the features whose value training never saw: a category outside the
    schema's, or a number outside its range (both served, and counted).
    """

    request_id: str
    values: tuple[Any, ...]
    features: dict[str, Any]
    unknown: tuple[str, ...]


class RecordValidator:
    """Validates records of one model's schema."""

    def __init__(self, schema: FeatureSchema) -> None:
        """Compile one checker per feature."""
        self.schema = schema
        self._names = frozenset(schema.names)
        self._checkers = [(spec.name, _checker(spec)) for spec in schema.features]

    def record(self, body: Any, path: str, default_id: str | None) -> ValidRecord:
        """Validate one ``{"features": {...}, "request_id": ...}`` object."""
        features = body.get("features") if isinstance(body, dict) else None
        if not isinstance(features, dict):
            raise InvalidInputError("must be an object of feature values", _join(path, "features"))
        extra = features.keys() - self._names
        if extra:
            name = sorted(extra)[0]
            raise InvalidInputError("is not a feature of this model", f"{path}features.{name}")
        values = []
        unknown = []
        for name, check in self._checkers:
            field = f"{path}features.{name}"
            if name not in features:
                raise InvalidInputError("is required", field)
            value, is_unknown = check(features[name], field)
            values.append(value)
            if is_unknown:
                unknown.append(name)
        return ValidRecord(
            request_id=request_id(body.get("request_id"), _join(path, "request_id"), default_id),
            values=tuple(values),
            features=features,
            unknown=tuple(unknown),
        )


@dataclass(frozen=True)
class ValidLabel:
    """A label ready for the feedback table; ``field`` names its request id in the body."""

    request_id: str
    label: int
    field: str


def feedback_labels(body: Any, limit: int) -> list[ValidLabel]:
    """The labels of a feedback body: one ``{"request_id", "label"}`` or ``{"labels": [...]}``.

    A label is the true class, 0 or 1 (JSON integers; ``true``/``false`` are refused, as a
    typed field would). Raises InvalidInputError naming the first bad field, or the batch when
    it is empty or holds more than ``limit`` labels.
    """
    if isinstance(body, dict) and "labels" in body:
        items = check_keys(body, FEEDBACK_BATCH_KEYS)["labels"]
        if not isinstance(items, list) or not items:
            raise InvalidInputError("must be a non-empty array of labels", "labels")
        if len(items) > limit:
            raise InvalidInputError(f"holds {len(items)} labels; at most {limit}", "labels")
        return [_label(item, f"labels[{i}].") for i, item in enumerate(items)]
    return [_label(body, "")]


def _label(body: Any, path: str) -> ValidLabel:
    item = check_keys(body, LABEL_KEYS, path)
    field = _join(path, "request_id")
    if item.get("request_id") is None:
        raise InvalidInputError("is required: the id the prediction was served under", field)
    value = item.get("label")
    if value is None:
        raise InvalidInputError("is required: 0 or 1 (the true class)", _join(path, "label"))
    if isinstance(value, bool) or value not in (0, 1):
        raise InvalidInputError("must be 0 or 1 (the true class)", _join(path, "label"))
    return ValidLabel(request_id(item["request_id"], field, None), int(value), field)


def check_keys(body: Any, allowed: frozenset[str], path: str = "") -> dict[str, Any]:
    """The body as a dict with no unknown top-level keys."""
    if not isinstance(body, dict):
        raise InvalidInputError("the request body must be a JSON object", path or "body")
    extra = body.keys() - allowed
    if extra:
        raise InvalidInputError("is not an accepted field", _join(path, sorted(extra)[0]))
    return body


def request_id(value: Any, field: str, default: str | None) -> str:
    """The caller's request id, the header's, or a fresh one."""
    if value is None:
        return default or uuid.uuid4().hex
    if not valid_request_id(value):
        raise InvalidInputError(
            f"must be 1 to {MAX_REQUEST_ID} visible ASCII characters (no spaces)", field
        )
    return str(value)


def _join(path: str, name: str) -> str:
    return f"{path}{name}"


def _checker(spec: FeatureSpec) -> Checker:
    if spec.kind is FeatureKind.NUMERIC:
        return _numeric_checker(spec)
    return _categorical_checker(spec)


def _numeric_checker(spec: FeatureSpec) -> Checker:
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum

    def check(value: Any, field: str) -> tuple[Any, bool]:
        if value is None:
            if spec.nullable:
                return math.nan, False
            raise InvalidInputError("must be a number, got null", field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"must be a number, got {type(value).__name__}", field)
        number = float(value)
        if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            raise InvalidInputError(
                f"must be a finite number within ±{FLOAT32_MAX:.2e} (32-bit floats)", field
            )
        # A sign training never saw (a negative age) is an input error; a value a little past
        # the range one training split saw (capital_loss 4356 when it reached 3900) is a real
        # case, served and counted like an unknown category.
        if number < 0 <= low:
            raise InvalidInputError(
                f"{value} is outside the range [{low:g}, {high:g}]: never negative in training",
                field,
            )
        return number, not low <= number <= high

    return check


def _categorical_checker(spec: FeatureSpec) -> Checker:
    known = frozenset(spec.categories) if spec.categories is not None else None

    def check(value: Any, field: str) -> tuple[Any, bool]:
        if value is None:
            if spec.nullable:
                return MISSING_CATEGORY, False
            raise InvalidInputError("must be a string, got null", field)
        if not isinstance(value, str):
            raise InvalidInputError(f"must be a string, got {type(value).__name__}", field)
        # Unknown categories are served (the encoder ignores them) but counted.
        return value, known is not None and value not in known

    return check
