"""Domain errors, shared by the control plane and the SDK.

The API turns each into an HTTP status and a JSON body ``{"code", "message", "errors"}``; the SDK
turns that body back into the same class, so ``except geobatch.NotFoundError`` works whether the
error was raised in-process or came over HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GeoBatchError(Exception):
    """Base class of every error GeoBatch raises on purpose.

    The wire taxonomy declares its status and code as class keywords
    (``class NotFoundError(GeoBatchError, status=404, code="not_found")``): a class declared so is
    registered in :data:`ERRORS_BY_CODE`, which turns an API error body back into the class. A
    subclass that sets ``status`` / ``code`` as plain class attributes (an SDK-side error that never
    crosses the wire) is not registered.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code
            ERRORS_BY_CODE[code] = cls

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def to_body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "errors": self.errors}


# In declaration order: error_from_body falls back to the first class with the response's status.
ERRORS_BY_CODE: dict[str, type[GeoBatchError]] = {GeoBatchError.code: GeoBatchError}


class BadRequestError(GeoBatchError, status=400, code="bad_request"):
    """The request is malformed or a value is invalid; the message says which and how to fix it."""


class ValidationError(BadRequestError, status=422, code="validation_error"):
    """One or more fields failed validation; ``errors`` lists them with their location."""


class NotFoundError(GeoBatchError, status=404, code="not_found"):
    """No such resource, or it belongs to another principal (which we do not reveal)."""


class ConflictError(GeoBatchError, status=409, code="conflict"):
    """The resource is not in a state that allows the operation (e.g. deleting a running Function)."""


class RequestInProgressError(ConflictError, code="request_in_progress"):
    """A retry of a write arrived while its first execution still runs; retry in a few seconds."""


class PayloadTooLargeError(GeoBatchError, status=413, code="payload_too_large"):
    """A request, an argument list or a bundle is over its documented size limit."""


class ThrottledError(GeoBatchError, status=429, code="throttled"):
    """AWS or GeoBatch throttled the request; retry with backoff."""


class AuthError(GeoBatchError, status=403, code="forbidden"):
    """The request carries no usable identity (missing or invalid SigV4 credentials)."""


class ServiceError(GeoBatchError, status=503, code="service_unavailable"):
    """A dependency (DynamoDB, SQS, S3, Batch, CodeBuild) failed; the request can be retried."""


class ApiTimeoutError(ServiceError, status=504, code="api_timeout"):
    """The API took the request but did not answer in time: it is slow, not down. Calling the same
    method again is safe (writes are idempotent)."""


class BuildFailedError(GeoBatchError, status=409, code="build_failed"):
    """The Function's image failed to build; ``Function.build_log()`` says why."""


class JobFailedError(GeoBatchError, status=409, code="job_not_successful"):
    """A job did not end in ``success`` where a result was asked for."""


def plain_problem(problem: dict[str, Any]) -> str:
    """One validation problem (a pydantic error dict) in plain words, without pydantic's phrasing."""
    kind = str(problem.get("type", ""))
    message = str(problem.get("msg", "is invalid"))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field: check its spelling, or remove it"
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be"):
        message = "should be" + message.removeprefix("Input should be")
    return message


def error_from_body(status: int, body: dict[str, Any] | None) -> GeoBatchError:
    """Rebuild the typed error from an API error response."""
    body = body or {}
    cls = ERRORS_BY_CODE.get(str(body.get("code")))
    if cls is None:
        cls = next((c for c in ERRORS_BY_CODE.values() if c.status == status), GeoBatchError)
    return cls(str(body.get("message") or f"HTTP {status}"), body.get("errors") or [])
