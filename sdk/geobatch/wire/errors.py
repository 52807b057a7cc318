"""Domain errors, shared by the control plane and the SDK.

The API turns each into an HTTP status and a JSON body ``{"code", "message", "errors"}``; the SDK
turns that body back into the same class, so ``except geobatch.NotFoundError`` works whether the
error was raised in-process or came over HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GeoBatchError(Exception):
    """Base class of every error GeoBatch raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def to_body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "errors": self.errors}


class BadRequestError(GeoBatchError):
    """The request is malformed or a value is invalid; the message says which and how to fix it."""

    status = 400
    code = "bad_request"


class ValidationError(BadRequestError):
    """One or more fields failed validation; ``errors`` lists them with their location."""

    status = 422
    code = "validation_error"


class NotFoundError(GeoBatchError):
    """No such resource, or it belongs to another principal (which we do not reveal)."""

    status = 404
    code = "not_found"


class ConflictError(GeoBatchError):
    """The resource is not in a state that allows the operation (e.g. deleting a running Function)."""

    status = 409
    code = "conflict"


class RequestInProgressError(ConflictError):
    """A retry of a write arrived while its first execution still runs; retry in a few seconds."""

    code = "request_in_progress"


class PayloadTooLargeError(GeoBatchError):
    """A request, an argument list or a bundle is over its documented size limit."""

    status = 413
    code = "payload_too_large"


class ThrottledError(GeoBatchError):
    """AWS or GeoBatch throttled the request; retry with backoff."""

    status = 429
    code = "throttled"


class AuthError(GeoBatchError):
    """The request carries no usable identity (missing or invalid SigV4 credentials)."""

    status = 403
    code = "forbidden"


class ServiceError(GeoBatchError):
    """A dependency (DynamoDB, SQS, S3, Batch, CodeBuild) failed; the request can be retried."""

    status = 503
    code = "service_unavailable"


class ApiTimeoutError(ServiceError):
    """The API took the request but did not answer in time: it is slow, not down. Calling the same
    method again is safe (writes are idempotent)."""

    status = 504
    code = "api_timeout"


class BuildFailedError(GeoBatchError):
    """The Function's image failed to build; ``Function.build_log()`` says why."""

    status = 409
    code = "build_failed"


class JobFailedError(GeoBatchError):
    """A job did not end in ``success`` where a result was asked for."""

    status = 409
    code = "job_not_successful"


ERRORS_BY_CODE: dict[str, type[GeoBatchError]] = {
    cls.code: cls
    for cls in (
        GeoBatchError,
        BadRequestError,
        ValidationError,
        NotFoundError,
        ConflictError,
        RequestInProgressError,
        PayloadTooLargeError,
        ThrottledError,
        AuthError,
        ServiceError,
        ApiTimeoutError,
        BuildFailedError,
        JobFailedError,
    )
}


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
