"""Request ids: the key that joins a prediction, its variant, its log row and its label (pure)."""

from __future__ import annotations

import re
from typing import Any

MAX_REQUEST_ID = 200
# Request ids travel back in the X-Request-ID header: visible ASCII only, or the answer could
# not be written at all (a control character aborted the connection instead of answering).
REQUEST_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID}}}")


def valid_request_id(value: Any) -> bool:
    """Whether a value can serve as a request id (a store key, echoed in a header)."""
    return isinstance(value, str) and REQUEST_ID.fullmatch(value) is not None
