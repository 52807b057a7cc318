"""The HTTP layer under :class:`~geobatch.Client`: responses, query strings, the retry numbers."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from geobatch.wire import errors

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "IDEMPOTENCY_HEADER",
    "IN_PROGRESS_RETRIES",
    "LOCAL_HOSTS",
    "RETRY_STATUSES",
    "WRITE_METHODS",
    "Response",
    "backoff_seconds",
    "encode_params",
    "error_of",
    "in_progress",
]

# Statuses worth a retry: throttling and transient gateway/service failures.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Backoff between attempts: BACKOFF_BASE * 2**attempt seconds, with jitter, capped.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 20.0
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Extra waits for our own earlier attempt of a write that the API is still carrying out.
IN_PROGRESS_RETRIES = 5
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class Response:
    """A finished HTTP response: status, headers and the whole body (or a stream, see ``raw``)."""

    status: int
    headers: Mapping[str, str]
    data: bytes = b""
    raw: Any = field(default=None, repr=False)  # the open urllib3 response when streamed

    def json(self) -> Any:
        """The body decoded as JSON (``None`` when empty)."""
        return json.loads(self.data) if self.data else None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.data.decode("utf-8", errors="replace")

    def iter_lines(self) -> Iterator[bytes]:
        """The body line by line, read as it arrives when the response was streamed."""
        if self.raw is None:
            yield from self.data.splitlines()
            return
        buffer = b""
        try:
            for chunk in self.raw.stream(64 * 1024):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                yield from lines
            if buffer:
                yield buffer
        finally:
            self.raw.release_conn()


def in_progress(response: Response) -> bool:
    """True when the answer says our own earlier attempt of this write is still being carried out."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == errors.RequestInProgressError.code


def _encode_param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        # Filters are JSON lists; other lists (include=a,b) are comma-separated.
        if value and isinstance(value[0], dict):
            return json.dumps(value, separators=(",", ":"))
        return ",".join(_encode_param(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> str:
    """Query string of ``params``; ``None`` values are left out."""
    if not params:
        return ""
    pairs = [(k, _encode_param(v)) for k, v in params.items() if v is not None]
    return urlencode(pairs)


def backoff_seconds(attempt: int, retry_after: str | None) -> float:
    """How long to wait before retry ``attempt``: exponential with jitter, at least ``Retry-After``."""
    delay: float = min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt) * (0.5 + random.random())
    if retry_after:
        # An HTTP date is not parsed: the computed backoff is good enough then.
        with contextlib.suppress(ValueError):
            delay = max(delay, min(float(retry_after), 60.0))
    return delay


def error_of(response: Response) -> errors.GeoBatchError:
    """The typed error of an error answer (the API's JSON body, or API Gateway's own)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip().splitlines()
        body = {"message": f"HTTP {response.status}: {text[0][:300]}" if text else None}
    elif "code" not in body and "message" in body:
        # API Gateway's own errors (auth, throttling) carry only a message.
        body = {**body, "message": f"HTTP {response.status}: {body['message']}"}
    return errors.error_from_body(response.status, body)
