"""The API's resolver and what every route shares: the caller's principal, created / include
helpers, the query parameter types, and the refusal of query parameters a route does not take.

The routes (``function_routes``, ``job_routes``) and the exception handlers (``error_handlers``)
register on :data:`app`; ``geobatch_api.app`` imports them in that order and holds the handler.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from geobatch.wire import errors, limits
from geobatch_api import identity
from geobatch_core import filters

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
