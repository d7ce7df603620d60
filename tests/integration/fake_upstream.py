"""A FAKE upstream for router tests: a small real HTTP server on loopback that misbehaves on cue.

`driftline serve` cannot be made to drop a connection it accepted, answer too late, answer 502 or
504 (what a proxy or mesh sidecar in front of a variant says), or send garbage; this server can.
It speaks just enough HTTP/1.1 for the router's client: it reads one request head and its
Content-Length body, then acts out ``behaviour``, which a test may change while it runs.
"""

from __future__ import annotations

import socketserver
import threading
import time

import orjson

# What the fake does with each request (``FakeUpstream.behaviour``):
#   "ok"       answer 200 with a prediction-shaped body labelled "challenger" (keep-alive)
#   "close"    read the request, then close the connection without a byte of answer
#   "hang"     read the request and never answer (until the fake is stopped)
#   "garbage"  send bytes that are not HTTP, more than the router reads as a header, then close
#   "<code>"   answer that HTTP status with a JSON error body (keep-alive), e.g. "502", "504"
# and, on "ok", ``fail_every`` > 0 answers every n-th request 500 (a challenger failing a
# share of requests) and ``delay`` seconds are slept before each answer (a slow challenger).
OK_BODY = orjson.dumps(
    {"variant": "challenger", "version": "fake", "prediction": 0, "probability": 0.1}
)


class FakeUpstream(socketserver.ThreadingTCPServer):
    """The fake server; ``url`` is where it listens, ``requests`` how many requests it read."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, behaviour: str = "ok") -> None:
        """Listen on a free loopback port; call ``start`` to serve."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour
        self.fail_every = 0
        self.delay = 0.0
        self.first_failure_at: float | None = None  # time.monotonic() of the first fail_every 500
        self.requests = 0
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> FakeUpstream:
        """Serve from a background thread."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Release hanging handlers and stop listening."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(socketserver.StreamRequestHandler):
    server: FakeUpstream

    def handle(self) -> None:
        while not self.server.stopping.is_set():
            if not self._read_request():
                return
            self.server.requests += 1
            behaviour = self.server.behaviour
            if behaviour == "close":
                return
            if behaviour == "hang":
                self.server.stopping.wait()
                return
            if behaviour == "garbage":
                self.wfile.write(b"x" * 70_000)
                return
            status, body = 200, OK_BODY
            if self.server.delay:
                time.sleep(self.server.delay)
            every = self.server.fail_every
            if behaviour == "ok" and every and self.server.requests % every == 0:
                behaviour = "500"
                if self.server.first_failure_at is None:
                    self.server.first_failure_at = time.monotonic()
            if behaviour != "ok":
                status = int(behaviour)
                body = orjson.dumps({"error": "fake", "message": f"the fake answers {status}"})
            self.wfile.write(
                f"HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )

    def _read_request(self) -> bool:
        """Read one request (head and body); False when the peer closed the connection."""
        length = 0
        try:
            line = self.rfile.readline()
            if not line:
                return False
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.rfile.read(length)
        except ConnectionError:
            return False
        return True
