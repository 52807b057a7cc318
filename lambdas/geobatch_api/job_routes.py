"""The jobs' and bulk operations' routes: each parses its input with a wire model and calls one
core service."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit

from geobatch.wire import limits
from geobatch.wire.models import Job, JobBulkCreate, JobIds, JobPage, JobQuery, JobSpec, JobTags, ResultBody
from geobatch.wire.operations import Operation
from geobatch.wire.statistics import JobStatistics
from geobatch_api import context
from geobatch_api.resolver import (
    NEXT_OFFSET_HEADER,
    Cursor,
    FilterParam,
    Include,
    PageSize,
    SortParam,
    app,
    created,
    metrics,
    principal,
    wants,
)
from geobatch_core.services import job_statistics, jobs, operations


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
