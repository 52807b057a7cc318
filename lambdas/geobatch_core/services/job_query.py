"""Job listing: plan a query (filters, sort, cursor, limit), then read a page, sort, or count.

A query over creation order (the store's key order) streams: it reads about a page at a time and
its cursor is the position after the last job returned. An order an index serves
(``services.listing``: time order across Functions, runtime, last completion) reads the index a
page at a time. Any other sort reads every match (at most ``limits.MAX_IN_MEMORY_SORT``) and its
cursor is an offset. Every cursor carries the whole plan, so the next page needs nothing but the
cursor. Pages stay under ``limits.MAX_PAGE_BYTES`` (Lambda's answer limit): a page may be shorter
than asked, never larger.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.models import Job, JobPage, JobStatus, Meta
from geobatch_core import filters
from geobatch_core.records import JobRecord
from geobatch_core.services import listing, paging
from geobatch_core.services.access import OwnedFunctions, owned_function
from geobatch_core.services.context import Services
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.job_wire import to_wire, wire_bytes

__all__ = ["QueryPlan", "list_jobs", "plan_query"]

_HEX = re.compile(r"[0-9a-f]{1,64}")


@dataclass
class QueryPlan:
    """What a listing reads: ``state`` (what the cursor carries) and what follows from it."""

    state: dict[str, Any]
    predicate: Callable[[dict[str, Any]], bool]
    order: list[tuple[str, bool]]

    @property
    def newest_first(self) -> bool:
        return self.order[:1] in ([("creation_date", True)], [("id", True)])

    @property
    def streaming(self) -> bool:
        """True when the order is the store's key order, so pages are read as they are needed."""
        return not self.order or self.order[0][0] in ("creation_date", "id")

    @property
    def limit(self) -> int | None:
        limit = self.state.get("limit")
        return None if limit is None else int(limit)

    def from_start(self) -> dict[str, Any]:
        return {**self.state, "fi": 0, "key": None}


def plan_query(
    svc: Services,
    principal: str,
    *,
    function_id: str | None,
    filter_json: str | list[Any] | None,
    sort: str | None,
    cursor: str | None,
    limit: int | None,
) -> QueryPlan:
    """The plan of a first request, or the one a cursor carries (``BadRequestError`` if invalid)."""
    if cursor:
        state = _cursor_state(cursor)
    else:
        _, terms = filters.parse(filter_json, filters.JOB_FIELDS)
        pinned = function_id or filters.equality_value(terms, "function_id")
        state = {"fids": _function_ids(svc, principal, pinned), "filter": terms, "sort": sort, "limit": limit}
        ix = listing.initial(svc, principal, pinned, filters.parse_sort(sort, filters.JOB_FIELDS))
        if ix is not None:
            state["ix"] = ix  # an index serves this order (services.listing)
    predicate, _ = filters.parse(state.get("filter"), filters.JOB_FIELDS)
    order = filters.parse_sort(state.get("sort"), filters.JOB_FIELDS)
    return QueryPlan(state, predicate, order)


def list_jobs(
    svc: Services,
    principal: str,
    *,
    function_id: str | None = None,
    filter_json: str | list[Any] | None = None,
    sort: str | None = None,
    page_size: int = limits.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    limit: int | None = None,
    count: bool = False,
    include_result: bool = False,
) -> JobPage:
    """A page of the caller's jobs (of ``function_id`` if given), or their number with ``count``."""
    plan = plan_query(
        svc,
        principal,
        function_id=function_id,
        filter_json=filter_json,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    functions = OwnedFunctions(svc, principal)
    now = svc.clock()
    if count:
        return _count(svc, plan, functions)
    remaining = plan.limit
    want = page_size if remaining is None else max(0, min(page_size, remaining))
    read = _indexed_page if "ix" in plan.state else _streamed_page if plan.streaming else _sorted_page
    page, next_state = read(svc, plan, functions, want, include_result)
    if next_state is not None and remaining is not None:
        next_state["limit"] = remaining - len(page)
        if next_state["limit"] <= 0:
            next_state = None
    data = _page_wire(svc, page, functions, now, include_result)
    return JobPage(data=data, meta=Meta(page_cursor=paging.encode(next_state) if next_state else None))


def _count(svc: Services, plan: QueryPlan, functions: OwnedFunctions) -> JobPage:
    total = sum(1 for _ in _iter_matching(svc, plan.from_start(), plan.predicate, False, functions))
    if plan.limit is not None:
        total = min(total, plan.limit)
    return JobPage(data=[], meta=Meta(total=total))


def _streamed_page(
    svc: Services, plan: QueryPlan, functions: OwnedFunctions, want: int, include_result: bool
) -> tuple[list[JobRecord], dict[str, Any] | None]:
    """Up to ``want`` jobs in key order from the plan's position, and the state after the last."""
    page: list[JobRecord] = []
    if not want:
        return page, None
    # Read about a page at a time: a page of 100 should not read 1,000 items.
    batch = max(100, min(1000, 2 * want))
    used, last_resume = 0, None
    matching = _iter_matching(svc, plan.state, plan.predicate, plan.newest_first, functions, batch)
    for job, resume in matching:
        cost = wire_bytes(job, with_result=include_result)
        if page and used + cost > limits.MAX_PAGE_BYTES:
            return page, last_resume  # a shorter page, not an answer over Lambda's limit
        page.append(job)
        used, last_resume = used + cost, resume
        if len(page) == want:
            return page, resume
    return page, None


def _indexed_page(
    svc: Services, plan: QueryPlan, functions: OwnedFunctions, want: int, include_result: bool
) -> tuple[list[JobRecord], dict[str, Any] | None]:
    """Up to ``want`` jobs from an index (``services.listing``), and the state after them."""
    state = {**plan.state, "ix": listing.checked(svc, functions.principal, plan.state["ix"], functions)}
    return listing.page(svc, state, plan.predicate, want, include_result, functions)


def _sorted_page(
    svc: Services, plan: QueryPlan, functions: OwnedFunctions, want: int, include_result: bool
) -> tuple[list[JobRecord], dict[str, Any] | None]:
    """Up to ``want`` jobs at the plan's offset of all matches sorted in memory, and the next state."""
    rows: list[JobRecord] = []
    for job, _ in _iter_matching(svc, plan.from_start(), plan.predicate, False, functions):
        rows.append(job)
        if len(rows) > limits.MAX_IN_MEMORY_SORT:
            raise errors.BadRequestError(
                f"sorting by {plan.order[0][0]} works on at most {limits.MAX_IN_MEMORY_SORT} jobs: "
                "narrow the filter, or sort by creation_date"
            )
    rows = paging.sort_items(rows, plan.order, key_of=lambda j: to_wire(j).model_dump())
    offset = int(plan.state.get("offset", 0))
    page = _within_bytes(rows[offset : offset + want], include_result)
    if offset + len(page) < len(rows):
        return page, {**plan.state, "offset": offset + len(page)}
    return page, None


def _page_wire(
    svc: Services, page: list[JobRecord], functions: OwnedFunctions, now: datetime, include_result: bool
) -> list[Job]:
    workers: dict[str, Mapping[str, int]] = {}
    for job in page:  # only pages with pending jobs ask the executor, once per Function
        fid = job.function_id
        if job.status == JobStatus.PENDING.value and fid not in workers:
            workers[fid] = svc.executor.worker_states(functions.get(fid))
    return [
        to_wire(
            j,
            function=functions.get(j.function_id),
            now=now,
            with_result=include_result,
            workers=workers.get(j.function_id),
        )
        for j in page
    ]


def _function_ids(svc: Services, principal: str, function_id: str | None) -> list[str]:
    if function_id:
        owned_function(svc, principal, function_id)
        return [function_id]
    owner = None if principal in svc.settings.admins else principal
    return [fid for _, fid in sorted((f.creation_date or "", f.id) for f in all_functions(svc, owner))]


def _iter_matching(
    svc: Services,
    state: dict[str, Any],
    predicate: Any,
    newest_first: bool,
    functions: OwnedFunctions,
    batch: int = 1000,
) -> Iterator[tuple[JobRecord, dict[str, Any]]]:
    """Matching jobs with the cursor state that resumes right after each one."""
    fids: list[str] = state["fids"]
    fi, key = state.get("fi", 0), state.get("key")
    now = svc.clock()
    while fi < len(fids):
        fid = fids[fi]
        function = functions.get(fid)  # 404 for a Function the caller does not own
        jobs, last = svc.jobs.query(fid, start=key, limit=batch, newest_first=newest_first)
        for job in jobs:
            wire = to_wire(job, function=function, now=now).model_dump()
            if predicate(wire):
                yield job, {**state, "fi": fi, "key": {"function_id": fid, "job_key": job.job_key}}
        if last:
            key = last
        else:
            fi, key = fi + 1, None


def _within_bytes(jobs: list[JobRecord], with_result: bool) -> list[JobRecord]:
    used = 0
    for count, job in enumerate(jobs):
        used += wire_bytes(job, with_result=with_result)
        if count and used > limits.MAX_PAGE_BYTES:
            return jobs[:count]
    return jobs


def _cursor_state(cursor: str) -> dict[str, Any]:
    state = paging.checked(
        paging.decode(cursor), ("fids", "filter", "sort", "limit", "offset", "fi", "key", "ix")
    )
    fids: list[str] = state.get("fids") or []
    fi, key = state.get("fi", 0), state.get("key")
    valid = "fids" in state and fi <= len(fids)
    if valid and key is not None:
        # Job keys are hex: anything else would start the store's query outside its key range.
        in_range = _HEX.fullmatch(key["job_key"]) is not None
        valid = in_range and fi < len(fids) and key["function_id"] == fids[fi]
    if not valid:
        raise errors.BadRequestError(paging.INVALID_CURSOR)
    return state
