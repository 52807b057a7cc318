"""The API Lambda: thin routes over the core services (Powertools REST resolver).

Each route parses its input with a wire model, calls one core function and returns a wire
model. Errors become HTTP responses in one place (the exception handlers below). The caller's IAM
principal, from the API Gateway request context, owns what it creates.
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from geobatch.wire import errors, limits
from geobatch.wire.codec import EncodingError, json_depth
from geobatch.wire.models import (
    FailureSummary,
    Function,
    FunctionCreate,
    FunctionPage,
    FunctionUpdate,
    Job,
    JobBulkCreate,
    JobIds,
    JobPage,
    JobQuery,
    JobSpec,
    JobTags,
    ResultBody,
)
from geobatch.wire.operations import Operation
from geobatch.wire.statistics import JobStatistics
from geobatch_api import context, idempotency, identity
from geobatch_core import filters
from geobatch_core.services import failures, functions, job_statistics, jobs, operations, teardown

# Most requests publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = Logger(service="geobatch-api")
tracer = Tracer(service="geobatch-api")
metrics = Metrics(namespace="GeoBatch", service="geobatch-api")
app = APIGatewayRestResolver(enable_validation=True)

NEXT_OFFSET_HEADER = "X-GeoBatch-Next-Offset"
PageSize = Annotated[int, Query(ge=1, le=limits.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=8192)]
FilterParam = Annotated[str | None, Query(alias="filter", max_length=65536)]
SortParam = Annotated[str | None, Query(max_length=256)]
Include = Annotated[str | None, Query(max_length=128)]


def principal() -> str:
    """The caller's IAM identity; by default the sessions of one assumed role share the role's
    resources (see ``geobatch_api.identity`` for per-session ownership)."""
    return identity.principal_of_event(app.current_event.raw_event)


def created(model: BaseModel) -> Response[str]:
    return Response(status_code=201, content_type="application/json", body=model.model_dump_json())


INCLUDES = {"/functions": {"job.statistics"}, "/jobs": {"result"}}


def wants(include: str | None, what: str) -> bool:
    """Whether ``include`` (comma-separated) names ``what``; an include no route knows is a 400."""
    names = {n.strip() for n in str(include or "").split(",") if n.strip()}
    known = next(v for k, v in INCLUDES.items() if what in v)
    unknown = sorted(names - known)
    if unknown:
        raise errors.BadRequestError(
            f"include {', '.join(map(repr, unknown))} is unknown: use {', '.join(sorted(known))}"
        )
    return what in names


def refuse_unknown_parameters(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not take is refused, never ignored: a misspelt filter must
    not silently widen what a listing (or a bulk cancel) selects."""
    route = app.context.get("_route")
    known = {param.alias for param in route.dependant.query_params} if route is not None else set()
    given = set(app.current_event.query_string_parameters or {})
    unknown = sorted(given - known)
    if unknown:
        event = app.current_event
        hint = f"this route takes {', '.join(sorted(known))}" if known else "this route takes none"
        extra = (
            '; filter jobs with filter=[{"op": "eq", "name": "status", "val": "failure"}]'
            if set(unknown) & set(filters.JOB_FIELDS) and "filter" in known
            else ""
        )
        raise errors.BadRequestError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"{event.http_method} {event.path}: {hint}{extra}"
        )
    return next_middleware(app)


app.use(middlewares=[refuse_unknown_parameters])


# --------------------------------------------------------------------------- functions


@app.post("/functions")
def create_function(spec: FunctionCreate) -> Response[str]:
    return created(functions.create_function(context.services(), principal(), spec))


@app.get("/functions")
def list_functions(
    page_size: PageSize = limits.DEFAULT_PAGE_SIZE,
    page_cursor: Cursor = None,
    filter_: FilterParam = None,
    sort: SortParam = None,
    include: Include = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
) -> FunctionPage:
    return functions.list_functions(
        context.services(),
        principal(),
        filter_json=filter_,
        sort=sort,
        page_size=page_size,
        cursor=page_cursor,
        statistics=wants(include, "job.statistics"),
        limit=limit,
    )


@app.get("/functions/<function_id>")
def get_function(function_id: str, include: Include = None) -> Function:
    return functions.get_function(
        context.services(), principal(), function_id, statistics=wants(include, "job.statistics")
    )


@app.patch("/functions/<function_id>")
def update_function(function_id: str, update: FunctionUpdate) -> Function:
    return functions.update_function(context.services(), principal(), function_id, update)


@app.delete("/functions/<function_id>")
def delete_function(function_id: str, delete_results: bool = False) -> Response[str]:
    done = teardown.delete_function(
        context.services(), principal(), function_id, delete_results=delete_results
    )
    if done:
        return Response(status_code=204, content_type="application/json", body="")
    return Response(status_code=202, content_type="application/json", body=json.dumps({"remaining": True}))


@app.post("/functions/<function_id>/bundle")
def bundle_uploaded(function_id: str) -> Function:
    return functions.bundle_uploaded(context.services(), principal(), function_id)


@app.get("/functions/<function_id>/failures")
def failure_summary(function_id: str) -> FailureSummary:
    return failures.failure_summary(context.services(), principal(), function_id)


@app.get("/functions/<function_id>/log")
def build_log(function_id: str) -> Response[str]:
    text = functions.build_log(context.services(), principal(), function_id)
    return Response(status_code=200, content_type="text/plain; charset=utf-8", body=text)


# --------------------------------------------------------------------------- jobs


@app.post("/jobs")
def submit_job(spec: JobSpec) -> Response[str]:
    job = jobs.submit_job(context.services(), principal(), spec)
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    return created(job)


@app.post("/jobs/bulk")
def submit_jobs(bulk: JobBulkCreate) -> Response[str]:
    page = jobs.submit_jobs(context.services(), principal(), bulk)
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=len(page.data))
    return created(page)


@app.get("/jobs")
def list_jobs(
    function_id: Annotated[str | None, Query(max_length=64)] = None,
    filter_: FilterParam = None,
    sort: SortParam = None,
    page_size: PageSize = limits.DEFAULT_PAGE_SIZE,
    page_cursor: Cursor = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    count: bool = False,
    include: Include = None,
) -> JobPage:
    return jobs.list_jobs(
        context.services(),
        principal(),
        function_id=function_id,
        filter_json=filter_,
        sort=sort,
        page_size=page_size,
        cursor=page_cursor,
        limit=limit,
        count=count,
        include_result=wants(include, "result"),
    )


BULK_RESPONSES: dict[int, Any] = {
    200: {
        "description": "Done: the ids of the jobs changed",
        "content": {"application/json": {"model": JobIds}},
    },
    202: {
        "description": "Accepted as a background operation: follow GET /operations/{id}",
        "content": {"application/json": {"model": Operation}},
    },
}


def bulk(action: str, query: JobQuery) -> Response[str]:
    """200 with the changed ids when small; 202 with an operation to follow when not."""
    done = operations.start(context.services(), principal(), action, query)
    status = 202 if isinstance(done, Operation) else 200
    return Response(status_code=status, content_type="application/json", body=done.model_dump_json())


@app.post("/jobs/cancel", responses=BULK_RESPONSES)
def cancel_jobs(query: JobQuery) -> Response[str]:
    return bulk("cancel", query)


@app.post("/jobs/rerun", responses=BULK_RESPONSES)
def rerun_jobs(query: JobQuery) -> Response[str]:
    return bulk("rerun", query)


@app.post("/jobs/delete", responses=BULK_RESPONSES)
def delete_jobs(query: JobQuery) -> Response[str]:
    return bulk("delete", query)


@app.get("/operations/<operation_id>")
def get_operation(operation_id: str) -> Operation:
    return operations.get_operation(context.services(), principal(), operation_id)


@app.get("/jobs/<job_id>")
def get_job(job_id: str, include: Include = None) -> Job:
    wants(include, "result")  # the result always comes with one job; unknown includes are refused
    return jobs.get_job(context.services(), principal(), job_id)


@app.patch("/jobs/<job_id>")
def update_job(job_id: str, body: JobTags) -> Job:
    return jobs.update_tags(context.services(), principal(), job_id, body.tags)


@app.delete("/jobs/<job_id>")
def delete_job(job_id: str, delete_results: bool = False) -> Response[str]:
    jobs.delete_job(context.services(), principal(), job_id, delete_results=delete_results)
    return Response(status_code=204, content_type="application/json", body="")


@app.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Job:
    return jobs.cancel_job(context.services(), principal(), job_id)


@app.post("/jobs/<job_id>/rerun")
def rerun_job(job_id: str) -> Job:
    return jobs.rerun_job(context.services(), principal(), job_id)


@app.get("/jobs/<job_id>/log")
def job_log(
    job_id: str,
    attempt: Annotated[int | None, Query(ge=1, le=1000)] = None,
    offset: Annotated[int, Query(ge=0, le=10 * limits.MAX_LOG_BYTES)] = 0,
) -> Response[str]:
    """NDJSON lines of one attempt's log; a long log comes in parts: the header
    ``X-GeoBatch-Next-Offset`` gives the ``offset`` of the next part."""
    lines, next_offset = jobs.job_log(context.services(), principal(), job_id, attempt, offset)
    body = "".join(line.model_dump_json() + "\n" for line in lines)
    headers = {NEXT_OFFSET_HEADER: str(next_offset)} if next_offset is not None else None
    return Response(status_code=200, content_type="application/x-ndjson", body=body, headers=headers)


@app.get("/jobs/<job_id>/statistics")
def job_statistics_(
    job_id: str, attempt: Annotated[int | None, Query(ge=1, le=1000)] = None
) -> JobStatistics:
    """CPU, memory and network series of the job's attempts (one attempt with ``attempt``)."""
    return job_statistics.job_statistics(context.services(), principal(), job_id, attempt)


@app.get("/jobs/<job_id>/result")
def job_result(job_id: str) -> ResultBody:
    return jobs.job_result(context.services(), principal(), job_id)


# --------------------------------------------------------------------------- errors, in one place


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
