"""Bulk operations on jobs (cancel, rerun, delete) chosen by a query and/or by id.

A small one is done when the API answers (the changed ids); a large one runs in the background as
an :class:`~geobatch.operation.Operation`, which these calls wait for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from geobatch.filters import Expression
from geobatch.operation import BulkResult, Operation, start_bulk_operation
from geobatch.wire import limits, models

if TYPE_CHECKING:
    from geobatch.client import Client

__all__ = ["bulk_job_operation", "query_filters"]


def query_filters(query: Any) -> list[dict[str, Any]]:
    """The API filter list of ``query``: a search, a filter expression or None (no filter)."""
    from geobatch.search import Search

    if isinstance(query, Search):
        return query.filter_list()
    if isinstance(query, Expression):
        return query.to_filter()
    if query is not None:
        raise TypeError(f"query must be a job search or a filter expression, not {query!r}")
    return []


def bulk_job_operation(
    client: Client,
    action: str,
    filters: list[dict[str, Any]],
    function_id: str | None,
    job_ids: Iterable[str] | None,
    *,
    delete_results: bool = False,
    wait: bool = True,
    progress: bool | None = False,
) -> BulkResult:
    """``POST /jobs/{action}`` with a JobQuery; the ids of the jobs changed, or, when the service
    carries it out in the background, the :class:`Operation` (waited for unless ``wait=False``).

    With ``job_ids``, they are sent in chunks of at most ``limits.MAX_BULK_OPERATION``.
    """
    if action not in ("cancel", "rerun", "delete"):
        raise ValueError(f"unknown bulk action {action!r}")
    chunks: list[list[str] | None]
    if job_ids is None:
        chunks = [None]
    else:
        ids = [str(i) for i in job_ids]
        size = limits.MAX_BULK_OPERATION
        chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    result = BulkResult()
    for chunk in chunks:
        cursor: str | None = None
        while True:
            query = models.JobQuery(
                filter=filters,
                function_id=function_id,
                job_ids=chunk,
                delete_results=delete_results,
                page_cursor=cursor,
            )
            answer = start_bulk_operation(client, action, query)
            if isinstance(answer, Operation):
                if wait:
                    answer.wait(progress=progress)
                result.operation = _merged(result.operation, answer)
                break
            result.extend(answer.job_ids)
            cursor = answer.page_cursor
            if not cursor:
                break
    return result


def _merged(earlier: Operation | None, later: Operation) -> Operation:
    """Chunks of ids that each became an operation: one result counting them all."""
    if earlier is None:
        return later
    later._wire = later._wire.model_copy(
        update={
            "processed": later.processed + earlier.processed,
            "changed": later.changed + earlier.changed,
            "total": None,
        }
    )
    return later
