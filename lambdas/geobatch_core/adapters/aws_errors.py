"""One mapping of AWS errors (botocore's ``ClientError``/``BotoCoreError``) to GeoBatch's errors.

Each adapter describes its service once (an :class:`ErrorMap`: which codes mean throttled, not
found, rejected) and raises ``ERRORS.error(exc, what)``; the API maps the result to a status code
(429, 404, 400, 503) like any other GeoBatch error. ``what`` says what was being done, in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from geobatch.wire.errors import BadRequestError, GeoBatchError, NotFoundError, ServiceError, ThrottledError

__all__ = ["THROTTLING", "ErrorMap", "error_code"]

# Throttling codes shared by most services (each service adds its own).
THROTTLING = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})


def error_code(exc: ClientError | BotoCoreError) -> str:
    """The AWS error code (``""`` for errors that got no answer from AWS)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@dataclass(frozen=True)
class ErrorMap:
    """How one service's error codes read as GeoBatch errors.

    ``not_found`` and ``rejected`` are codes (a code in both is not found when its message says
    so, as AWS Batch's ``ClientException`` does); ``missing`` is the message for not found (default:
    AWS's own); ``missing_is_fault`` makes not found a ``ServiceError`` (e.g. a table of the stack
    itself, which is a deployment problem, not the caller's).
    """

    service: str
    throttled: frozenset[str] = THROTTLING
    not_found: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()
    missing: str = ""
    missing_is_fault: bool = False

    def error(self, exc: ClientError | BotoCoreError, what: str) -> GeoBatchError:
        """The GeoBatch error for ``exc``, raised while doing ``what``."""
        if not isinstance(exc, ClientError):
            return ServiceError(f"{self.service}: {what} failed: {exc}")
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in self.throttled:
            return ThrottledError(f"{self.service} throttled {what}; retry shortly")
        if self._is_missing(code, message):
            text = f"{self.service}: {what}: {self.missing or message}"
            return ServiceError(text) if self.missing_is_fault else NotFoundError(text)
        if code in self.rejected:
            return BadRequestError(f"{self.service} rejected {what}: {message}")
        return ServiceError(f"{self.service}: {what} failed ({code}): {message}")

    def _is_missing(self, code: str, message: str) -> bool:
        if code not in self.not_found:
            return False
        if code in self.rejected:  # one code for both: the message tells
            return "does not exist" in message or "not found" in message.lower()
        return True
