"""Errors become HTTP responses in one place: a domain error its status and body, a validation
error a 422 listing the fields, anything unexpected a 500 that reveals nothing (the trace is logged)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from geobatch.wire import errors
from geobatch.wire.codec import EncodingError
from geobatch_api.resolver import app, logger


def error_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


@app.exception_handler(errors.GeoBatchError)
def handle_domain_error(exc: errors.GeoBatchError) -> Response[str]:
    if exc.status >= 500:
        logger.warning("dependency failure", extra={"code": exc.code, "error": exc.message})
    return error_response(exc.status, exc.to_body())


@app.exception_handler(RequestValidationError)
def handle_validation_error(exc: RequestValidationError) -> Response[str]:
    problems = [
        {
            "loc": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "msg": errors.plain_problem(dict(e)),
        }
        for e in exc.errors()
    ]
    summary = "; ".join(f"{p['loc'] or 'body'}: {p['msg']}" for p in problems[:5])
    return error_response(
        422, {"code": "validation_error", "message": f"invalid request: {summary}", "errors": problems}
    )


@app.exception_handler(EncodingError)
@app.exception_handler(ValueError)
def handle_value_error(exc: Exception) -> Response[str]:
    return error_response(400, {"code": "bad_request", "message": str(exc), "errors": []})


@app.not_found
def handle_not_found(exc: Exception) -> Response[str]:
    path = app.current_event.path
    return error_response(404, {"code": "not_found", "message": f"no route {path}", "errors": []})


@app.exception_handler(Exception)
def handle_unexpected(exc: Exception) -> Response[str]:
    logger.exception("unexpected error")  # the trace goes to the log, never to the caller
    return error_response(
        500, {"code": "internal_error", "message": "internal error; it was logged", "errors": []}
    )
