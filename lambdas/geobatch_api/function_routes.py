"""The Functions' routes: each parses its input with a wire model and calls one core service."""

from __future__ import annotations

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from geobatch.wire import limits
from geobatch.wire.models import FailureSummary, Function, FunctionCreate, FunctionPage, FunctionUpdate
from geobatch_api import context
from geobatch_api.resolver import (
    Cursor,
    FilterParam,
    Include,
    PageSize,
    SortParam,
    app,
    created,
    principal,
    wants,
)
from geobatch_core.services import failures, functions, teardown


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
