"""Job use cases: get, list (filters, sort, cursor), cancel, rerun, delete.

Submission is in ``submission``, the wire form in ``job_wire``, logs and results in
``job_outputs``; their names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.models import RERUNNABLE, TERMINAL, Job, JobIds, JobPage, JobQuery, JobStatus, Meta
from geobatch_core import filters, layout
from geobatch_core.ports import Item
from geobatch_core.services import paging
from geobatch_core.services.access import OwnedFunctions, owned_function, owned_job, split_job_id
from geobatch_core.services.context import Services, iso
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.job_outputs import job_log, job_result, parse_log_line
from geobatch_core.services.job_wire import (
    WIRE_EXCLUDE,
    all_attempts,
    executions,
    job_id,
    message_body,
    pending_reason,
    to_wire,
    wire_bytes,
)
from geobatch_core.services.submission import bulk_fingerprint, mark_active, submit_job, submit_jobs

__all__ = [
    "WIRE_EXCLUDE",
    "all_attempts",
    "bulk_fingerprint",
    "bulk_operation",
    "cancel_item",
    "cancel_job",
    "delete_items",
    "delete_job",
    "executions",
    "get_job",
    "job_id",
    "job_log",
    "job_result",
    "list_jobs",
    "mark_active",
    "message_body",
    "parse_log_line",
    "pending_reason",
    "rerun_item",
    "rerun_job",
    "submit_job",
    "submit_jobs",
    "to_wire",
    "update_tags",
]


# --------------------------------------------------------------------------- read


def get_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    if "args_key" in item:
        payload = json.loads(svc.blobs.get(item["args_key"]))
        item = {**item, "payload": json.dumps(payload)}
    workers = svc.executor.worker_states(function) if item["status"] == JobStatus.PENDING.value else None
    return to_wire(item, function=function, now=svc.clock(), with_result=True, workers=workers)


def _function_ids(svc: Services, principal: str, function_id: str | None) -> list[str]:
    if function_id:
        owned_function(svc, principal, function_id)
        return [function_id]
    owner = None if principal in svc.settings.admins else principal
    return [fid for _, fid in sorted((i["creation_date"], i["id"]) for i in all_functions(svc, owner))]


def _iter_matching(
    svc: Services,
    state: dict[str, Any],
    predicate: Any,
    newest_first: bool,
    functions: OwnedFunctions,
    batch: int = 1000,
) -> Iterator[tuple[Item, dict[str, Any]]]:
    """Matching job items with the cursor state that resumes right after each one."""
    fids: list[str] = state["fids"]
    fi, key = state.get("fi", 0), state.get("key")
    now = svc.clock()
    while fi < len(fids):
        fid = fids[fi]
        function = functions.get(fid)  # 404 for a Function the caller does not own
        items, last = svc.jobs.query(fid, start=key, limit=batch, newest_first=newest_first)
        for item in items:
            wire = to_wire(item, function=function, now=now).model_dump()
            if predicate(wire):
                yield item, {**state, "fi": fi, "key": {"function_id": fid, "job_key": item["job_key"]}}
        if last:
            key = last
        else:
            fi, key = fi + 1, None


def _within_bytes(items: list[Item], with_result: bool) -> list[Item]:
    used = 0
    for count, item in enumerate(items):
        used += wire_bytes(item, with_result=with_result)
        if count and used > limits.MAX_PAGE_BYTES:
            return items[:count]
    return items


def _cursor_state(cursor: str) -> dict[str, Any]:
    state = paging.checked(paging.decode(cursor), ("fids", "filter", "sort", "limit", "offset", "fi", "key"))
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


_HEX = re.compile(r"[0-9a-f]{1,64}")


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
    if cursor:
        state = _cursor_state(cursor)
    else:
        _, terms = filters.parse(filter_json, filters.JOB_FIELDS)
        pinned = function_id or filters.equality_value(terms, "function_id")
        state = {
            "fids": _function_ids(svc, principal, pinned),
            "filter": terms,
            "sort": sort,
            "limit": limit,
        }
    predicate, _ = filters.parse(state.get("filter"), filters.JOB_FIELDS)
    order = filters.parse_sort(state.get("sort"), filters.JOB_FIELDS)
    functions = OwnedFunctions(svc, principal)
    now = svc.clock()
    newest_first = order[:1] in ([("creation_date", True)], [("id", True)])
    streaming = not order or order[0][0] in ("creation_date", "id")

    if count:
        total = sum(
            1 for _ in _iter_matching(svc, {**state, "fi": 0, "key": None}, predicate, False, functions)
        )
        if state.get("limit") is not None:
            total = min(total, int(state["limit"]))
        return JobPage(data=[], meta=Meta(total=total))

    remaining = state.get("limit")
    want = page_size if remaining is None else max(0, min(page_size, int(remaining)))
    page: list[Item] = []
    next_state: dict[str, Any] | None = None
    if streaming:
        if want:
            # Read about a page at a time: a page of 100 should not read 1,000 items.
            batch = max(100, min(1000, 2 * want))
            used, last_resume = 0, None
            for item, resume in _iter_matching(svc, state, predicate, newest_first, functions, batch):
                cost = wire_bytes(item, with_result=include_result)
                if page and used + cost > limits.MAX_PAGE_BYTES:
                    next_state = last_resume  # a shorter page, not an answer over Lambda's limit
                    break
                page.append(item)
                used, last_resume = used + cost, resume
                if len(page) == want:
                    next_state = resume
                    break
    else:
        rows = []
        for item, _ in _iter_matching(svc, {**state, "fi": 0, "key": None}, predicate, False, functions):
            rows.append(item)
            if len(rows) > limits.MAX_IN_MEMORY_SORT:
                raise errors.BadRequestError(
                    f"sorting by {order[0][0]} works on at most {limits.MAX_IN_MEMORY_SORT} jobs: "
                    "narrow the filter, or sort by creation_date"
                )
        rows = paging.sort_items(rows, order, key_of=lambda i: to_wire(i).model_dump())
        offset = int(state.get("offset", 0))
        page = _within_bytes(rows[offset : offset + want], include_result)
        if offset + len(page) < len(rows):
            next_state = {**state, "offset": offset + len(page)}
    if next_state is not None and remaining is not None:
        next_state["limit"] = int(remaining) - len(page)
        if next_state["limit"] <= 0:
            next_state = None
    workers: dict[str, Mapping[str, int]] = {}
    for item in page:  # only pages with pending jobs ask the executor, once per Function
        fid = item["function_id"]
        if item["status"] == JobStatus.PENDING.value and fid not in workers:
            workers[fid] = svc.executor.worker_states(functions.get(fid))
    data = [
        to_wire(
            i,
            function=functions.get(i["function_id"]),
            now=now,
            with_result=include_result,
            workers=workers.get(i["function_id"]),
        )
        for i in page
    ]
    return JobPage(data=data, meta=Meta(page_cursor=paging.encode(next_state) if next_state else None))


# --------------------------------------------------------------------------- change


def cancel_item(svc: Services, item: Item) -> Item:
    """Pending → canceled at once; running → cancel (the worker stops it: canceling → canceled)."""
    for _ in range(5):
        status = item["status"]
        now = iso(svc.clock())
        if status == JobStatus.PENDING.value:
            new = svc.jobs.transition(
                item["function_id"],
                item["job_key"],
                changes={"status": JobStatus.CANCELED.value, "last_completion_date": now, "retry_at": None},
                expect={"status": status, "run": item.get("run", 0)},
            )
        elif status == JobStatus.RUNNING.value:
            new = svc.jobs.transition(
                item["function_id"],
                item["job_key"],
                changes={"status": JobStatus.CANCEL.value},
                expect={"status": status, "execution_count": item.get("execution_count", 0)},
            )
        else:
            return item  # already terminal or being canceled
        if new is not None:
            return new
        item = svc.jobs.get(item["function_id"], item["job_key"], consistent=True)
    raise errors.ConflictError(f"job {job_id(item)} changed too often to cancel; try again")


def rerun_item(svc: Services, item: Item, function: Item) -> Item:
    """An unsuccessful job starts a new run: pending again, with a fresh retry budget."""
    if item["status"] not in RERUNNABLE:
        return item
    if not function.get("enabled", True):
        raise errors.ConflictError(f"Function {function['id']} is disabled: enable it to rerun jobs")
    run = int(item.get("run", 0)) + 1
    new = svc.jobs.transition(
        item["function_id"],
        item["job_key"],
        changes={
            "status": JobStatus.PENDING.value,
            "run": run,
            # The retry budget is per run; the history and the count of starts carry over.
            "earlier_attempts": all_attempts(item),
            "earlier_executions": executions(item),
            "execution_count": 0,
            "attempts": [],
            "claim_msg": None,
            "error_reason": None,
            "status_reason": None,
            "exit_code": None,
            "runtime": None,
            "retry_at": None,
            "last_completion_date": None,
        },
        expect={"status": item["status"], "run": item.get("run", 0)},
    )
    if new is None:
        return svc.jobs.get(item["function_id"], item["job_key"], consistent=True)
    svc.queue.send_batch(function["queue_url"], [message_body(new)])
    mark_active(svc, function)
    return new


def _job_blobs(item: Item, *, results: bool) -> list[str]:
    keys = [a[k] for a in all_attempts(item) for k in ("log_key", "statistics_key") if a.get(k)]
    if item.get("args_key"):
        keys.append(item["args_key"])
    if results and item.get("result_key"):
        keys.append(item["result_key"])
    return keys


def delete_items(svc: Services, items: list[Item], *, delete_results: bool) -> list[Item]:
    """Delete jobs that are not running (pending ones are canceled first); returns those deleted."""
    deletable = []
    for item in items:
        if item["status"] == JobStatus.PENDING.value:
            item = cancel_item(svc, item)
        if item["status"] in TERMINAL:
            deletable.append(item)
    if not delete_results:
        for item in deletable:
            keep_result(svc, item)
    blobs = [k for i in deletable for k in _job_blobs(i, results=delete_results)]
    svc.blobs.delete(blobs)
    svc.jobs.delete_batch((i["function_id"], i["job_key"]) for i in deletable)
    return deletable


def keep_result(svc: Services, item: Item) -> None:
    """A small result lives inside its job item: before the item goes, copy it to where large
    results are, so every kept result outlives its job at ``layout.result_key`` (and
    ``GET /jobs/{id}/result`` still answers while the Function exists)."""
    if item.get("result") is not None and "result_key" not in item:
        svc.blobs.put(layout.result_key(item["function_id"], item["job_key"]), bytes(item["result"]))


def cancel_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    return to_wire(cancel_item(svc, item), function=function, now=svc.clock())


def rerun_job(svc: Services, principal: str, job_id_: str) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    return to_wire(rerun_item(svc, item, function), function=function, now=svc.clock())


def delete_job(svc: Services, principal: str, job_id_: str, *, delete_results: bool) -> None:
    item, _ = owned_job(svc, principal, job_id_)
    if item["status"] not in TERMINAL and item["status"] != JobStatus.PENDING.value:
        raise errors.ConflictError(
            f"job {job_id_} is {item['status']}: cancel it and wait before deleting it"
        )
    delete_items(svc, [item], delete_results=delete_results)


def update_tags(svc: Services, principal: str, job_id_: str, tags: list[str]) -> Job:
    item, function = owned_job(svc, principal, job_id_)
    new = svc.jobs.transition(item["function_id"], item["job_key"], changes={"tags": list(tags)}, expect={})
    if new is None:
        raise errors.NotFoundError(f"job {job_id_} does not exist")
    return to_wire(new, function=function, now=svc.clock())


def bulk_operation(svc: Services, principal: str, operation: str, query: JobQuery) -> JobIds:
    """Cancel, rerun or delete the jobs a filter selects, at most 1000 per call (follow the cursor)."""
    filter_terms = list(query.filter)
    if query.job_ids is not None:
        for jid in query.job_ids:
            split_job_id(jid)
        filter_terms.append({"op": "in", "name": "id", "val": list(query.job_ids)})
    if operation == "rerun":
        filter_terms.append({"op": "in", "name": "status", "val": sorted(s.value for s in RERUNNABLE)})
    elif operation == "cancel":
        filter_terms.append(
            {"op": "in", "name": "status", "val": [JobStatus.PENDING.value, JobStatus.RUNNING.value]}
        )
    page = list_jobs(
        svc,
        principal,
        function_id=query.function_id,
        filter_json=filter_terms,
        page_size=limits.MAX_BULK_OPERATION,
        cursor=query.page_cursor,
    )
    changed: list[str] = []
    functions = OwnedFunctions(svc, principal)
    for job in page.data:
        fid, key = split_job_id(job.id)
        item = svc.jobs.get(fid, key, consistent=True)
        function = functions.get(fid)
        if operation == "cancel":
            cancel_item(svc, item)
            changed.append(job.id)
        elif operation == "rerun":
            if rerun_item(svc, item, function).get("run", 0) != item.get("run", 0):
                changed.append(job.id)
        else:
            changed.extend(job_id(i) for i in delete_items(svc, [item], delete_results=query.delete_results))
    return JobIds(job_ids=changed, page_cursor=page.meta.page_cursor)
