"""One error hierarchy for the HTTP edge, mapped once to status codes (MLServer's pattern)."""

from __future__ import annotations


class ServingError(Exception):
    """A request that cannot be answered; ``status`` is the HTTP code it maps to."""

    status = 500
    kind = "internal"

    def __init__(self, message: str, field: str | None = None) -> None:
        """``field`` names the offending input, when there is one."""
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        """The JSON error body."""
        out = {"error": self.kind, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class MalformedRequestError(ServingError):
    """The body is not valid JSON or not an object."""

    status = 400
    kind = "malformed_request"


class PayloadTooLargeError(ServingError):
    """The body exceeds the configured limit."""

    status = 413
    kind = "payload_too_large"


class InvalidInputError(ServingError):
    """A field is missing, extra, of the wrong type or out of range."""

    status = 422
    kind = "invalid_input"


class ModelNotReadyError(ServingError):
    """No model is loaded (yet)."""

    status = 503
    kind = "model_not_ready"


class UpstreamError(ServingError):
    """The router could not reach the champion (nor, before it, the challenger)."""

    status = 503
    kind = "upstream_unavailable"


class StoreUnavailableError(ServingError):
    """The inference log store did not answer in time (feedback cannot be checked)."""

    status = 503
    kind = "store_unavailable"
