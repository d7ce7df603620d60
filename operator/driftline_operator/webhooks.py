"""Webhook delivery: each receiver has its own bounded queue and worker thread.

``Webhooks.send`` only enqueues, so a reconcile never waits on a receiver. A worker POSTs each
alert with a timeout and retries a failure (no answer, 408, 429 or 5xx) with exponential
back-off up to ``attempts`` tries; a 4xx other than 408 and 429 is the receiver refusing this
alert, and is not retried. Outcomes are counted (delivered, failed, dropped: the queue was
full). A dead receiver costs only its own queue: the others, and reconciliation, go on.
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from driftline_operator.alerts import (
    CLOUDEVENTS_CONTENT_TYPE,
    SIGNATURE_HEADER,
    Alert,
    PayloadFormat,
    alert_type,
    cloudevent,
    encode,
    signature,
    slack_text,
)

logger = logging.getLogger("driftline.webhooks")
# POST(url, body, headers, timeout) -> HTTP status; raises OSError when there is no answer.
Post = Callable[[str, bytes, dict[str, str], float], int]
RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Receiver:
    """One webhook: where, in which format, signed with which secret, for which alert types."""

    name: str
    url: str
    payload: PayloadFormat = "cloudevents"
    secret: bytes | None = None
    types: frozenset[str] = frozenset()  # empty: every alert type


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body``; the answer's status (an HTTP error status is an answer too).

    Raises OSError (URLError, a timeout) when no answer came.
    """
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Webhooks:
    """The receivers' queues and workers."""

    def __init__(
        self,
        receivers: list[Receiver],
        deliveries: Counter,
        *,
        queue_size: int = 1000,
        timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        post: Post = http_post,
    ) -> None:
        """Receivers and how to reach them.

        ``deliveries`` is labelled (webhook, outcome); ``backoff`` is the first wait, in
        seconds, doubled after each failed try up to ``max_backoff``.
        """
        self._receivers = receivers
        self._deliveries = deliveries
        self._queues: dict[str, queue.Queue[tuple[bytes, dict[str, str]]]] = {
            r.name: queue.Queue(queue_size) for r in receivers
        }
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._post = post
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """One daemon worker per receiver."""
        for receiver in self._receivers:
            thread = threading.Thread(
                target=self._work, args=(receiver,), name=f"webhook-{receiver.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (alerts still queued are not sent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def send(self, alert: Alert, plural: str) -> None:
        """Queue ``alert`` for every receiver subscribed to its type; never blocks."""
        kind = alert_type(alert.severity, alert.reason)
        if kind is None:
            return
        event = cloudevent(alert, plural)
        for receiver in self._receivers:
            if receiver.types and kind not in receiver.types:
                continue
            if receiver.payload == "slack":
                body, content_type = encode(slack_text(alert)), "application/json"
            else:
                body, content_type = encode(event), CLOUDEVENTS_CONTENT_TYPE
            headers = {"Content-Type": content_type, "User-Agent": "driftline-operator"}
            if receiver.secret is not None:
                headers[SIGNATURE_HEADER] = signature(receiver.secret, body)
            try:
                self._queues[receiver.name].put_nowait((body, headers))
            except queue.Full:
                self._deliveries.labels(receiver.name, "dropped").inc()
                logger.warning("webhook %s: queue full, alert %s dropped", receiver.name, kind)

    def _work(self, receiver: Receiver) -> None:
        pending = self._queues[receiver.name]
        while not self._stop.is_set():
            try:
                body, headers = pending.get(timeout=0.5)
            except queue.Empty:
                continue
            outcome = self._deliver(receiver, body, headers)
            self._deliveries.labels(receiver.name, outcome).inc()

    def _deliver(self, receiver: Receiver, body: bytes, headers: dict[str, str]) -> str:
        wait = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                status = self._post(receiver.url, body, headers, self._timeout)
            except OSError as exc:
                problem = str(exc)
            else:
                if 200 <= status < 300:
                    return "delivered"
                if status < 500 and status not in RETRIED_STATUSES:
                    logger.error("webhook %s refused an alert: HTTP %d", receiver.name, status)
                    return "failed"
                problem = f"HTTP {status}"
            if attempt == self._attempts or self._stop.wait(wait):
                logger.error(
                    "webhook %s: alert not delivered after %d tries: %s",
                    receiver.name,
                    attempt,
                    problem,
                )
                return "failed"
            wait = min(wait * 2, self._max_backoff)
        return "failed"
