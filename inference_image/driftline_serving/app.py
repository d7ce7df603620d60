"""The inference server: ``create_app(settings, load, write_log)``.

The hot path avoids per-request pydantic parsing: the body is read with a size bound, parsed
with orjson and validated by checkers compiled from the feature schema. The OpenAPI document is
still complete: request and response models are declared for documentation, and the features
object is described from the loaded model's schema.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from driftline.inference_log import LogRecord
from driftline.registry_conventions import SHADOW
from driftline_serving.api_models import (
    DOC_MODELS,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    PredictRequest,
    PredictResponse,
    features_schema,
)
from driftline_serving.errors import (
    InvalidInputError,
    MalformedRequestError,
    ModelNotReadyError,
    ServingError,
)
from driftline_serving.http_body import read_limited
from driftline_serving.loader import LoadedModel, ModelLoadError
from driftline_serving.log_writer import LogWriter
from driftline_serving.metrics import ServingMetrics, serving_metrics
from driftline_serving.records import BATCH_KEYS, RECORD_KEYS, REQUEST_KEYS, ValidRecord, check_keys
from driftline_serving.settings import ServingSettings
from driftline_serving.split import SHADOW_HEADER

logger = logging.getLogger("driftline.serving")

JSON = "application/json"
TOP_CONTRIBUTIONS = 5
LOAD_RETRY_SECONDS = 5.0
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Malformed JSON"),
        (413, "Body too large"),
        (422, "Invalid input; `field` names it"),
        (503, "No model loaded yet"),
    )
}


@dataclass
class ServerState:
    """What the handlers share: the model (once loaded), the log writer and the metrics."""

    settings: ServingSettings
    metrics: ServingMetrics
    writer: LogWriter
    model: LoadedModel | None = None
    load_error: str | None = None
    # The served version's prediction counter, labelled once when the model loads: a label
    # lookup per request is measurable on a sub-millisecond path.
    served: Counter | None = None


def create_app(
    settings: ServingSettings,
    load: Callable[[ServingSettings], LoadedModel],
    write_log: Callable[[Sequence[LogRecord]], None],
) -> FastAPI:
    """Build the app; the model is loaded in the background and retried until it loads."""
    metrics = serving_metrics()
    writer = LogWriter(
        write_log,
        capacity=settings.log_buffer_rows,
        batch_rows=settings.log_batch_rows,
        flush_seconds=settings.log_flush_seconds,
        retry_seconds=settings.log_retry_seconds,
        on_written=metrics.log_written.inc,
        on_dropped=metrics.log_dropped.inc,
        on_error=metrics.log_write_errors.inc,
    )
    state = ServerState(settings, metrics, writer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        writer.start()
        loading = asyncio.create_task(_load_until_ready(state, load))
        yield
        loading.cancel()
        await writer.stop()

    app = FastAPI(
        title="Driftline inference server",
        version="0.1.0",
        description="Predictions of one registered model version, validated and logged.",
        lifespan=lifespan,
    )
    app.state.server = state
    _routes(app, state)
    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    return app


async def _load_until_ready(
    state: ServerState, load: Callable[[ServingSettings], LoadedModel]
) -> None:
    while state.model is None:
        try:
            model = await asyncio.to_thread(load, state.settings)
        except ModelLoadError as exc:
            if str(exc) != state.load_error:
                logger.error("model not loaded (retrying every %.0fs): %s", LOAD_RETRY_SECONDS, exc)
            state.load_error = str(exc)
            await asyncio.sleep(LOAD_RETRY_SECONDS)
            continue
        state.served = state.metrics.predictions.labels(
            model.name, model.version, state.settings.variant
        )
        state.model, state.load_error = model, None
        state.metrics.model_info.labels(
            model.name, model.version, state.settings.variant, model.runtime.value
        ).set(1)
        logger.info("serving %s version %s (%s)", model.name, model.version, model.runtime.value)


def _routes(app: FastAPI, state: ServerState) -> None:
    settings, metrics = state.settings, state.metrics
    single_seconds = metrics.request_seconds.labels("/predict")
    batch_seconds = metrics.request_seconds.labels("/predict/batch")

    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError) -> Response:
        metrics.errors.labels(exc.kind).inc()
        return Response(orjson.dumps(exc.body()), status_code=exc.status, media_type=JSON)

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: a model is loaded",
        responses={503: {"model": ErrorBody, "description": "Not loaded yet"}},
    )
    async def ready() -> Response:
        model = _model(state)
        return _json({"ready": True, "model": model.name, "version": model.version})

    @app.get("/model", summary="The served model's metadata and feature schema")
    async def model_info() -> Response:
        model = _model(state)
        return _json(
            {
                "model": model.name,
                "version": model.version,
                "variant": settings.variant,
                "runtime": model.runtime.value,
                "threshold": model.threshold,
                "schema": model.schema.model_dump(mode="json"),
            }
        )

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        metrics.log_buffer_rows.set(state.writer.depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        summary="Predict one record",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=_body_doc(PredictRequest),
    )
    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        body = await _read_json(request, settings.max_body_bytes, REQUEST_KEYS)
        model = _model(state)
        record = model.validator.record(body, "", request.headers.get("x-request-id"))
        probabilities = model.predictor.predict([record.values])
        answers = await _answers(
            state,
            model,
            [record],
            probabilities,
            _explain(body),
            started,
            _variant(request, settings),
        )
        single_seconds.observe(time.perf_counter() - started)
        return _json(answers[0], {"x-request-id": record.request_id})

    @app.post(
        "/predict/batch",
        summary="Predict up to `max_batch` records",
        response_model=BatchResponse,
        responses=ERROR_RESPONSES,
        openapi_extra=_body_doc(BatchRequest),
    )
    async def predict_batch(request: Request) -> Response:
        started = time.perf_counter()
        body = await _read_json(request, settings.max_body_bytes, BATCH_KEYS)
        model = _model(state)
        items = body.get("records")
        if not isinstance(items, list) or not items:
            raise InvalidInputError("must be a non-empty array of records", "records")
        if len(items) > settings.max_batch:
            raise InvalidInputError(
                f"holds {len(items)} records; at most {settings.max_batch}", "records"
            )
        records = [
            model.validator.record(
                check_keys(item, RECORD_KEYS, f"records[{i}]."), f"records[{i}].", None
            )
            for i, item in enumerate(items)
        ]
        probabilities = model.predictor.predict([r.values for r in records])
        answers = await _answers(
            state,
            model,
            records,
            probabilities,
            _explain(body),
            started,
            _variant(request, settings),
        )
        batch_seconds.observe(time.perf_counter() - started)
        return _json({"predictions": answers})


async def _answers(
    state: ServerState,
    model: LoadedModel,
    records: list[ValidRecord],
    probabilities: Any,
    explain: bool,
    started: float,
    variant: str,
) -> list[dict[str, Any]]:
    """Answer bodies; the log rows go to the writer's buffer, never to the store directly."""
    metrics = state.metrics
    explanations = None
    if explain:
        explainer = await asyncio.to_thread(model.explainer)
        explanations = await asyncio.to_thread(
            explainer.contributions, [r.values for r in records], TOP_CONTRIBUTIONS
        )
    now = time.time()
    latency_ms = (time.perf_counter() - started) * 1000.0
    answers, rows = [], []
    for i, record in enumerate(records):
        probability = float(probabilities[i])
        prediction = int(probability >= model.threshold)
        answer = {
            "prediction": prediction,
            "probability": probability,
            "threshold": model.threshold,
            "model": model.name,
            "version": model.version,
            "variant": variant,
            "request_id": record.request_id,
        }
        if explanations is not None:
            answer["explanation"] = explanations[i]
        answers.append(answer)
        rows.append(
            LogRecord(
                now, model.name, model.version, variant, record.request_id,
                record.features, prediction, probability, latency_ms,
            )
        )  # fmt: skip
        for feature in record.unknown:
            metrics.unknown_categories.labels(feature).inc()
    state.writer.submit(rows)
    assert state.served is not None, "set with the model, before any answer"
    state.served.inc(len(records))
    return answers


def _variant(request: Request, settings: ServingSettings) -> str:
    """The variant the answer and its log rows carry: ``shadow`` for the router's shadow copy."""
    return SHADOW if request.headers.get(SHADOW_HEADER) == "1" else settings.variant


def _model(state: ServerState) -> LoadedModel:
    if state.model is None:
        raise ModelNotReadyError(state.load_error or "the model is loading")
    return state.model


async def _read_json(request: Request, limit: int, keys: frozenset[str]) -> dict[str, Any]:
    """The body as a JSON object with only ``keys``; 413 beyond ``limit``, 400 if not JSON."""
    body = await read_limited(request.stream(), request.headers.get("content-length"), limit)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}") from exc
    return check_keys(parsed, keys)


def _explain(body: dict[str, Any]) -> bool:
    value = body.get("explain", False)
    if not isinstance(value, bool):
        raise InvalidInputError("must be true or false", "explain")
    return value


def _json(content: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), media_type=JSON, headers=headers)


def _body_doc(model: type) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def _openapi(app: FastAPI, state: ServerState) -> dict[str, Any]:
    """The OpenAPI document, with the features object of the loaded model spelled out."""
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for model in DOC_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    if state.model is not None:
        components["Features"] = features_schema(state.model.schema)
        for name in ("PredictRequest", "BatchRecord"):
            components[name]["properties"]["features"] = {"$ref": "#/components/schemas/Features"}
    return document
