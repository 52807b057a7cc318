"""The API Lambda: thin routes over the core services (Powertools REST resolver).

Each route parses its input with a wire model, calls one core function and returns a wire
model (``function_routes``, ``job_routes``). Errors become HTTP responses in one place
(``error_handlers``). The caller's IAM principal, from the API Gateway request context, owns what
it creates. Importing this module registers the routes, in the order the OpenAPI document lists them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from geobatch.wire import errors, limits
from geobatch.wire.codec import json_depth
from geobatch_api import error_handlers, function_routes, idempotency, job_routes
from geobatch_api.resolver import app, logger, metrics, tracer

__all__ = ["app", "error_handlers", "function_routes", "handler", "job_routes"]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], lambda_context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:
            body = ""  # binary: no route takes it, and it cannot nest
    refused = refuse_unreadable_body(body)
    if refused is not None:
        return refused
    return idempotency.run_once(event, lambda: app.resolve(event, lambda_context))


def refuse_unreadable_body(body: str) -> dict[str, Any] | None:
    """A body too large, or nested too deep to parse without exhausting the stack, is refused before
    anything parses it (a 4xx, never a RecursionError's 500)."""
    if len(body) > limits.MAX_REQUEST_BYTES:
        return idempotency.error_response(
            errors.PayloadTooLargeError(
                f"request body over {limits.MAX_REQUEST_BYTES} bytes: send fewer jobs per request"
            )
        )
    depth = json_depth(body)
    if depth > limits.MAX_REQUEST_DEPTH:
        return idempotency.error_response(
            errors.BadRequestError(
                f"request body is nested {depth} levels deep; job arguments may nest at most "
                f"{limits.MAX_JSON_DEPTH} levels: flatten them or pass a reference (e.g. an S3 key)"
            )
        )
    if "\\u" in body and lone_surrogate(body):
        return idempotency.error_response(
            errors.BadRequestError(
                "request body holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which "
                "is not text: send valid Unicode (encode binary data, e.g. as base64)"
            )
        )
    return None


def lone_surrogate(body: str) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False  # not JSON: the route's validation says so
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
