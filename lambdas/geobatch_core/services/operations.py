"""Bulk cancel, rerun and delete: inside the request when small, else a background operation.

A request whose filter is settled by reading at most ``limits.SYNC_BULK_SCAN`` jobs and matches at
most ``limits.SYNC_BULK_JOBS`` (or that names at most that many job ids) runs at once and answers
the changed ids. Anything larger would not fit API Gateway's 29 s (a GetItem and a conditional
write per job), so the request only records an *operation* and answers 202 with its id; the scaler
pass (``run_operations``, in AWS and in local mode alike) applies it one store page at a time and
records its progress on the operation's item after each page.

Records live in the Jobs table (``layout.OPERATION_RECORDS``), with one marker per unfinished
operation (``layout.OPERATION_ACTIVE``) so a pass reads only what is left to do. A runner holds
the operation's lease while it works; every page's job writes are the state machine's conditional
writes, so a page applied twice (a runner that died after its writes and before recording them,
a lease taken over) changes no job twice. Counts are those of the pages recorded: a page whose
record was lost is applied again, and the jobs it changed before then no longer match, so
``changed`` can fall short of the jobs changed by at most one page; no job is changed twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from typing import Any

from geobatch.wire import errors, limits
from geobatch.wire.models import JobIds, JobQuery
from geobatch.wire.operations import Operation, OperationState
from geobatch_core import filters, layout
from geobatch_core.ports import Item
from geobatch_core.records import JobRecord
from geobatch_core.services import bulk_scan
from geobatch_core.services.access import OwnedFunctions, split_job_id
from geobatch_core.services.bulk_scan import Scan
from geobatch_core.services.context import Services, iso, new_id
from geobatch_core.services.functions import job_statistics
from geobatch_core.services.jobs import list_jobs
from geobatch_core.store import ABSENT, Increment

RECORDS, ACTIVE = layout.OPERATION_RECORDS, layout.OPERATION_ACTIVE
LEASE_SECONDS = 120  # over the scaler's 60 s timeout: a live runner is never overtaken
UNFINISHED_TTL_SECONDS = 30 * 86400  # a record whose marker was never written expires anyway
# The core logs through the standard library (the Lambdas route it to Powertools; the worker has none).
log = logging.getLogger("geobatch.operations")


def start(svc: Services, principal: str, action: str, query: JobQuery) -> JobIds | Operation:
    """Carry out a bulk action now when it is small, else record it as an operation."""
    if action not in bulk_scan.ACTIONS:
        raise errors.BadRequestError(f"unknown bulk action {action!r}")
    terms = bulk_scan.selection(action, query)
    predicate = bulk_scan.parsed(terms)  # a bad filter is a 400 before anything is read
    functions = OwnedFunctions(svc, principal)
    if query.page_cursor:
        return _cursor_page(svc, principal, action, query, terms, functions)
    if query.job_ids is not None and len(query.job_ids) <= limits.SYNC_BULK_JOBS:
        jobs = bulk_scan.by_ids(svc, list(query.job_ids), predicate, functions)
        return JobIds(
            job_ids=bulk_scan.apply(svc, action, jobs, functions, delete_results=query.delete_results)
        )
    pinned = query.function_id or filters.equality_value(terms, "function_id")
    fids = bulk_scan.function_ids(svc, principal, pinned)
    scan, matched = Scan(fids), list[JobRecord]()
    while not scan.done and scan.read < limits.SYNC_BULK_SCAN and len(matched) <= limits.SYNC_BULK_JOBS:
        limit = min(bulk_scan.STORE_PAGE, limits.SYNC_BULK_SCAN - scan.read)
        matched += bulk_scan.next_matches(svc, scan, predicate, functions, limit=limit)
    if scan.done and len(matched) <= limits.SYNC_BULK_JOBS:
        return JobIds(
            job_ids=bulk_scan.apply(svc, action, matched, functions, delete_results=query.delete_results)
        )
    return _record(svc, principal, action, query, terms, fids, pinned)


def _cursor_page(
    svc: Services, principal: str, action: str, query: JobQuery, terms: list[Any], functions: OwnedFunctions
) -> JobIds:
    """A client that follows a listing cursor (``GET /jobs``'s ``page_cursor``) changes one small page
    per request; the cursor is checked for its owner like any listing cursor."""
    page = list_jobs(
        svc,
        principal,
        function_id=query.function_id,
        filter_json=terms,
        page_size=limits.SYNC_BULK_JOBS,
        cursor=query.page_cursor,
    )
    jobs: list[JobRecord] = []
    for listed in page.data:
        fid, key = split_job_id(listed.id)
        try:
            jobs.append(svc.jobs.get(fid, key, consistent=True))
        except errors.NotFoundError:
            continue
    changed = bulk_scan.apply(svc, action, jobs, functions, delete_results=query.delete_results)
    return JobIds(job_ids=changed, page_cursor=page.meta.page_cursor)


def _record(
    svc: Services,
    principal: str,
    action: str,
    query: JobQuery,
    terms: list[Any],
    fids: list[str],
    pinned: str | None,
) -> Operation:
    now = svc.clock()
    op_id = new_id(8)
    record: Item = {
        "function_id": RECORDS,
        "job_key": op_id,
        "kind": "operation",
        # Not "owner" / "creation_date": those name jobs in the owner's time-ordered job index.
        "principal": principal,
        "created": iso(now),
        "action": action,
        "target_function_id": pinned,
        "filter_json": json.dumps(terms, separators=(",", ":")),
        "scan": json.dumps(Scan(fids).state(), separators=(",", ":")),
        "delete_results": bool(query.delete_results),
        "state": OperationState.QUEUED.value,
        "processed": 0,
        "changed": 0,
        "pages": 0,
        layout.JOB_TTL_ATTRIBUTE: int(now.timestamp()) + UNFINISHED_TTL_SECONDS,
    }
    svc.jobs.put_rows([record], check_existing=False)
    svc.jobs.put_rows([{"function_id": ACTIVE, "job_key": op_id, "created": iso(now)}], check_existing=False)
    if svc.on_submit and fids:
        svc.on_submit(pinned or fids[0])  # wakes a scaler pass now, not at the next tick
    return to_wire(record)


def to_wire(record: Item) -> Operation:
    return Operation(
        id=record["job_key"],
        action=record["action"],
        state=OperationState(record["state"]),
        function_id=record.get("target_function_id"),
        processed=int(record.get("processed", 0)),
        changed=int(record.get("changed", 0)),
        total=record.get("total"),
        pages=int(record.get("pages", 0)),
        creation_date=record["created"],
        last_update=record.get("last_update"),
        finish_date=record.get("finish_date"),
        error=record.get("error"),
    )


def get_operation(svc: Services, principal: str, operation_id: str) -> Operation:
    """An operation of the principal (another tenant's answers 404 like a missing one)."""
    missing = errors.NotFoundError(f"operation {operation_id} does not exist")
    if not (0 < len(operation_id) <= 64 and all(c in "0123456789abcdef" for c in operation_id)):
        raise missing
    try:
        record = svc.jobs.get_row(RECORDS, operation_id, consistent=True)
    except errors.NotFoundError:
        raise missing from None
    if record.get("principal") != principal and principal not in svc.settings.admins:
        raise missing
    return to_wire(record)


# --------------------------------------------------------------------------- the runner


def run_operations(svc: Services, *, seconds: float, max_pages: int | None = None, wake: bool = False) -> int:
    """Apply unfinished operations page by page for about ``seconds``; returns the pages applied.
    ``max_pages`` bounds the pages per operation (a test's way to watch the progress). ``wake``
    (the scaler's passes): when work is left after this pass, wake the next pass at once
    rather than at the next scheduled tick, so a large operation runs pass after pass."""
    deadline = time.monotonic() + seconds
    markers, _ = svc.jobs.query_rows(ACTIVE, start=None, limit=50, newest_first=False)
    pages = 0
    for marker in markers:
        if time.monotonic() >= deadline:
            break
        pages += advance(svc, marker["job_key"], deadline, max_pages)
    if wake and pages and svc.on_submit:
        left, _ = svc.jobs.query_rows(ACTIVE, start=None, limit=1, newest_first=False)
        if left:
            with contextlib.suppress(errors.NotFoundError):
                record = svc.jobs.get_row(RECORDS, left[0]["job_key"])
                scan = Scan.of(json.loads(record["scan"]))
                if not scan.done:
                    svc.on_submit(scan.fids[scan.fi])  # a pass for the Function it is in, and the operations
    return pages


def _lease(svc: Services, uid: str) -> str:
    return f"{int(svc.clock().timestamp()) + LEASE_SECONDS}:{uid}"


def _claim(svc: Services, record: Item) -> str | None:
    """Take the operation's lease (absent, or expired); None while another runner holds it."""
    current = record.get("lease")
    if current is not None and float(str(current).split(":", 1)[0]) > svc.clock().timestamp():
        return None
    token = _lease(svc, uuid.uuid4().hex)
    taken = svc.jobs.update_row(
        RECORDS,
        record["job_key"],
        changes={"lease": token},
        expect={"lease": ABSENT if current is None else current},
    )
    return token if taken is not None else None


def _total(svc: Services, record: Item, scan: Scan, terms: list[Any]) -> int | None:
    statuses = bulk_scan.statuses_only(terms)
    if statuses is None or len(scan.fids) != 1:
        return None
    stats = job_statistics(svc, scan.fids[0])
    return sum(stats.get(s, 0) for s in statuses)


def advance(svc: Services, op_id: str, deadline: float, max_pages: int | None = None) -> int:
    """Apply pages of one operation until it ends, the time is up or ``max_pages``; pages applied."""
    try:
        record = svc.jobs.get_row(RECORDS, op_id, consistent=True)
    except errors.NotFoundError:
        record = None
    if record is None or OperationState(record["state"]).is_final:
        svc.jobs.delete_batch([(ACTIVE, op_id)])
        return 0
    token = _claim(svc, record)
    if token is None:
        return 0
    terms = json.loads(record["filter_json"])
    scan, predicate = Scan.of(json.loads(record["scan"])), bulk_scan.parsed(terms)
    functions = OwnedFunctions(svc, record["principal"])
    first: dict[str, Any] = {}
    if record["state"] == OperationState.QUEUED.value:
        first = {"state": OperationState.RUNNING.value, "total": _total(svc, record, scan, terms)}
    pages = 0
    while time.monotonic() < deadline and (max_pages is None or pages < max_pages):
        try:
            matched = bulk_scan.next_matches(svc, scan, predicate, functions)
            changed = bulk_scan.apply(
                svc, record["action"], matched, functions, delete_results=bool(record.get("delete_results"))
            )
        except errors.GeoBatchError as exc:
            return pages + _stopped(svc, op_id, token, exc)
        pages += 1
        token = _record_page(svc, op_id, token, scan, len(matched), len(changed), first)
        first = {}
        if token is None or scan.done:
            return pages
    svc.jobs.update_row(RECORDS, op_id, changes={"lease": None}, expect={"lease": token})
    return pages


def _record_page(
    svc: Services, op_id: str, token: str, scan: Scan, processed: int, changed: int, first: dict[str, Any]
) -> str | None:
    """Record one applied page (and renew the lease); None when the lease was lost or it finished."""
    now = svc.clock()
    renewed = _lease(svc, token.split(":", 1)[1])
    changes: dict[str, Any] = {
        **first,
        "scan": json.dumps(scan.state(), separators=(",", ":")),
        "processed": Increment(processed),
        "changed": Increment(changed),
        "pages": Increment(1),
        "last_update": iso(now),
        "lease": renewed,
    }
    if scan.done:
        changes.update(
            state=OperationState.SUCCEEDED.value,
            finish_date=iso(now),
            lease=None,
            **{layout.JOB_TTL_ATTRIBUTE: int(now.timestamp()) + layout.OPERATION_TTL_SECONDS},
        )
    if svc.jobs.update_row(RECORDS, op_id, changes=changes, expect={"lease": token}) is None:
        return None  # overtaken: the new holder goes on from the last recorded page
    if scan.done:
        svc.jobs.delete_batch([(ACTIVE, op_id)])
        return None
    return renewed


def _stopped(svc: Services, op_id: str, token: str, exc: errors.GeoBatchError) -> int:
    """A page failed: a transient failure (throttling, 5xx) is retried by the next pass from the
    last recorded page; any other (the Function deleted, a rerun of a disabled Function) ends the
    operation as failed, with the reason."""
    if isinstance(exc, errors.ThrottledError) or exc.status >= 500:
        log.warning("operation %s: a page failed; the next pass retries it", op_id, exc_info=exc)
        svc.jobs.update_row(RECORDS, op_id, changes={"lease": None}, expect={"lease": token})
        return 0
    now = svc.clock()
    changes = {
        "state": OperationState.FAILED.value,
        "error": exc.message,
        "finish_date": iso(now),
        "last_update": iso(now),
        "lease": None,
        layout.JOB_TTL_ATTRIBUTE: int(now.timestamp()) + layout.OPERATION_TTL_SECONDS,
    }
    if svc.jobs.update_row(RECORDS, op_id, changes=changes, expect={"lease": token}) is not None:
        svc.jobs.delete_batch([(ACTIVE, op_id)])
    return 0
