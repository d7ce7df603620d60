"""The inference server: ``create_app(settings, load, store)``.

The hot path avoids per-request pydantic parsing: the body is read with a size bound, parsed
with orjson and validated by checkers compiled from the feature schema. The OpenAPI document is
still complete: request and response models are declared for documentation, and the features
object is described from the loaded model's schema.

``POST /feedback`` takes the true class of served requests (ground truth, often days late). It
checks with one indexed read that each id was served, so a typo gets a 422 naming it, and
hands the labels to a buffered writer like the inference log's: the answer never waits for the
write, and a store that is down costs buffered, then dropped and counted, labels.
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

from driftline.inference_log import Feedback, LogRecord, LogStore, SketchRecord
from driftline.registry_conventions import SHADOW
from driftline.sketch import Sketcher, sketch_layout
from driftline_serving.api_models import (
    DOC_MODELS,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    FeedbackAccepted,
    Label,
    LabelBatch,
    PredictRequest,
    PredictResponse,
    features_schema,
)
from driftline_serving.errors import (
    InvalidInputError,
    MalformedRequestError,
    ModelNotReadyError,
    ServingError,
    StoreUnavailableError,
)
from driftline_serving.http_body import read_limited
from driftline_serving.loader import LoadedModel, ModelLoadError
from driftline_serving.log_writer import LogWriter, Row
from driftline_serving.metrics import ServingMetrics, serving_metrics
from driftline_serving.records import (
    BATCH_KEYS,
    RECORD_KEYS,
    REQUEST_KEYS,
    ValidLabel,
    ValidRecord,
    check_keys,
    feedback_labels,
)
from driftline_serving.settings import ServingSettings
from driftline_serving.sketch_sink import SketchSink
from driftline_serving.split import SHADOW_HEADER, logged

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
FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{status: ERROR_RESPONSES[status] for status in (400, 413)},
    422: {"model": ErrorBody, "description": "A bad label or an id never served; `field` names it"},
    503: {"model": ErrorBody, "description": "The store could not confirm the ids; retry"},
}


@dataclass
class ServerState:
    """What the handlers share: the model (once loaded), the store, its writers, the metrics."""

    settings: ServingSettings
    metrics: ServingMetrics
    store: LogStore
    writer: LogWriter[LogRecord]
    feedback: LogWriter[Feedback]
    sketches: LogWriter[SketchRecord]
    model: LoadedModel | None = None
    # Set with the model when it has a baseline and sketches are on.
    sketch: SketchSink | None = None
    load_error: str | None = None
    # The served version's prediction counter, labelled once when the model loads: a label
    # lookup per request is measurable on a sub-millisecond path.
    served: Counter | None = None


def create_app(
    settings: ServingSettings,
    load: Callable[[ServingSettings], LoadedModel],
    store: LogStore,
) -> FastAPI:
    """Build the app; the model is loaded in the background and retried until it loads."""
    metrics = serving_metrics()
    writer: LogWriter[LogRecord] = _buffered(
        store.write,
        "inference log",
        settings,
        (metrics.log_written, metrics.log_dropped, metrics.log_write_errors),
    )
    feedback: LogWriter[Feedback] = _buffered(
        store.write_feedback,
        "feedback",
        settings,
        (metrics.feedback_written, metrics.feedback_dropped, metrics.feedback_write_errors),
    )
    sketches: LogWriter[SketchRecord] = _buffered(
        store.write_sketches,
        "drift sketch",
        settings,
        (metrics.sketch_written, metrics.sketch_dropped, metrics.sketch_write_errors),
    )
    state = ServerState(settings, metrics, store, writer, feedback, sketches)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        for started in (writer, feedback, sketches):
            started.start()
        loading = asyncio.create_task(_load_until_ready(state, load))
        yield
        loading.cancel()
        if state.sketch is not None:
            await state.sketch.stop()
        for stopped in (writer, feedback, sketches):
            await stopped.stop()

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


def _buffered(
    write: Callable[[Sequence[Row]], None],
    what: str,
    settings: ServingSettings,
    counters: tuple[Counter, Counter, Counter],
) -> LogWriter[Row]:
    """A store writer with the settings' buffer bounds.

    ``counters`` count the rows written, the rows dropped and the failed writes.
    """
    written, dropped, failed = counters
    return LogWriter(
        write,
        what=what,
        capacity=settings.log_buffer_rows,
        batch_rows=settings.log_batch_rows,
        flush_seconds=settings.log_flush_seconds,
        retry_seconds=settings.log_retry_seconds,
        on_written=written.inc,
        on_dropped=dropped.inc,
        on_error=failed.inc,
    )


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
        state.sketch = _sketch_sink(state, model)
        state.model, state.load_error = model, None
        state.metrics.model_info.labels(
            model.name, model.version, state.settings.variant, model.runtime.value
        ).set(1)
        logger.info("serving %s version %s (%s)", model.name, model.version, model.runtime.value)


def _sketch_sink(state: ServerState, model: LoadedModel) -> SketchSink | None:
    """The version's drift sketch, started; None when off or the version has no baseline."""
    settings = state.settings
    if not settings.sketches:
        return None
    if model.baseline is None:
        logger.warning("version %s has no baseline.json: no drift sketches", model.version)
        return None
    try:
        sketcher = Sketcher(
            sketch_layout(model.baseline),
            model.schema,
            bucket_seconds=settings.sketch_bucket_seconds,
            sample_rows=settings.sketch_sample_rows,
        )
    except ValueError as exc:
        # A baseline that does not fit the schema costs the drift sketches, never serving.
        logger.warning("version %s: no drift sketches: %s", model.version, exc)
        return None
    sink = SketchSink(
        sketcher,
        state.sketches,
        model=model.name,
        version=model.version,
        variant=settings.variant,
        pod=settings.pod_name,
    )
    sink.start()
    return sink


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
        metrics.feedback_buffer_rows.set(state.feedback.depth)
        metrics.sketch_buffer_buckets.set(state.sketches.depth)
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

    @app.post(
        "/feedback",
        summary="The true class of served requests (one label or a batch)",
        status_code=202,
        response_model=FeedbackAccepted,
        responses=FEEDBACK_RESPONSES,
        openapi_extra=_body_doc(Label, LabelBatch),
    )
    async def feedback(request: Request) -> Response:
        body = await _read_json(request, settings.max_body_bytes)
        labels = feedback_labels(body, settings.max_feedback)
        stored = await _check_served(state, labels)
        now = time.time()
        state.feedback.submit(
            [Feedback(now, settings.model_name, item.request_id, item.label) for item in stored]
        )
        metrics.feedback_labels.inc(len(stored))
        metrics.feedback_unsampled.inc(len(labels) - len(stored))
        return _json({"accepted": len(stored), "unsampled": len(labels) - len(stored)}, status=202)


async def _check_served(state: ServerState, labels: list[ValidLabel]) -> list[ValidLabel]:
    """The labels to store: those of ids the inference log holds a prediction for.

    One indexed read, bounded by ``feedback_lookup_seconds``: a store that cannot answer gets
    the caller a 503 to retry on, never a label accepted for an id that may be a typo. With a
    log sample rate below 1, an id without a row whose hash says it was sampled out is left
    out (its label could never join a prediction); any other unknown id raises a 422.
    """
    settings = state.settings
    try:
        async with asyncio.timeout(settings.feedback_lookup_seconds):
            served = await asyncio.to_thread(
                state.store.served, settings.model_name, [item.request_id for item in labels]
            )
    except TimeoutError as exc:
        raise StoreUnavailableError(
            f"the inference log did not answer within {settings.feedback_lookup_seconds:g} s;"
            " retry later"
        ) from exc
    except Exception as exc:  # any store failure (driver, network): the caller retries
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailableError(f"the inference log cannot be read: {reason}") from exc
    rate = settings.log_sample_rate
    for item in labels:
        if item.request_id not in served and logged(item.request_id, rate):
            raise InvalidInputError(
                f"no prediction of {settings.model_name} was logged under {item.request_id!r}"
                f" (never served, or served in the last {settings.log_flush_seconds:g} s and"
                " not written yet)",
                item.field,
            )
    return [item for item in labels if item.request_id in served]


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
    rate = state.settings.log_sample_rate
    answers, rows = [], []
    scores = [float(p) for p in probabilities]
    classes = [int(p >= model.threshold) for p in scores]
    if state.sketch is not None:
        state.sketch.add(now, records, scores, classes)
    for i, record in enumerate(records):
        probability, prediction = scores[i], classes[i]
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
        if rate >= 1.0 or logged(record.request_id, rate):
            rows.append(
                LogRecord(
                    now, model.name, model.version, variant, record.request_id,
                    record.features, prediction, probability, latency_ms, rate,
                )
            )  # fmt: skip
        for feature in record.unknown:
            if feature in model.numeric:
                metrics.out_of_range.labels(feature).inc()
            else:
                metrics.unknown_categories.labels(feature).inc()
    state.writer.submit(rows)
    if len(rows) < len(records):
        metrics.log_sampled_out.inc(len(records) - len(rows))
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


async def _read_json(request: Request, limit: int, keys: frozenset[str] | None = None) -> Any:
    """The parsed body (an object with only ``keys``, when given); 413 beyond ``limit``.

    Raises MalformedRequestError (400) when the body is not JSON.
    """
    body = await read_limited(request.stream(), request.headers.get("content-length"), limit)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}") from exc
    return parsed if keys is None else check_keys(parsed, keys)


def _explain(body: dict[str, Any]) -> bool:
    value = body.get("explain", False)
    if not isinstance(value, bool):
        raise InvalidInputError("must be true or false", "explain")
    return value


def _json(content: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON, headers=headers)


def _body_doc(*models: type) -> dict[str, Any]:
    """The request body's schema: the one model, or any of several."""
    refs = [{"$ref": f"#/components/schemas/{model.__name__}"} for model in models]
    schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


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
