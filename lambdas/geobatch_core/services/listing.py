"""Sorted job listings read through the Jobs table's indexes (``layout.JOB_INDEXES``), not memory.

- ``GET /jobs`` without a Function (and not an admin's): the owner's jobs across all its Functions
  in creation order, from the owner-created index.
- A Function's jobs sorted by ``runtime`` or ``last_completion_date``: from that field's index. The
  index is sparse (a job has the field once an attempt ended), so the jobs without it come from
  the table in key order, before the indexed ones ascending and after them descending: the order
  the in-memory sort gave (missing values first ascending, last descending).

Each request reads at most ``READ_BUDGET`` items, so its cost does not grow with the run; a
selective filter returns a shorter page (possibly empty) with a cursor to go on. The cursor keeps
the index position (an item's table and index keys, as DynamoDB's ``ExclusiveStartKey`` wants);
it is opaque and owner-bound: a resumed listing reads only the caller's partition (the caller's
owner index, a Function the caller owns) and a key for any other partition is refused.
"""

from __future__ import annotations

import re
from typing import Any

from geobatch.wire import errors, limits
from geobatch_core import layout
from geobatch_core.ports import Key
from geobatch_core.records import JobRecord
from geobatch_core.services import paging
from geobatch_core.services.access import OwnedFunctions
from geobatch_core.services.context import Services
from geobatch_core.services.job_wire import to_wire, wire_bytes

READ_BUDGET = 5000  # items one request may read, whatever the filter
FUNCTION_SORTS = ("runtime", "last_completion_date")
_HEX = re.compile(r"[0-9a-f]{1,64}")


def initial(
    svc: Services, principal: str, pinned: str | None, order: list[tuple[str, bool]]
) -> dict[str, Any] | None:
    """The index position a new listing starts from, or None when no index serves its order."""
    by_creation = not order or (len(order) == 1 and order[0][0] == "creation_date")
    if not pinned and by_creation and principal not in svc.settings.admins:
        desc = bool(order and order[0][1])
        return {"sort": "creation_date", "desc": desc, "part": principal, "phase": "index", "key": None}
    if pinned and len(order) == 1 and order[0][0] in FUNCTION_SORTS:
        field, desc = order[0]
        return {
            "sort": field,
            "desc": desc,
            "part": pinned,
            "phase": "index" if desc else "rest",
            "key": None,
        }
    return None


def checked(svc: Services, principal: str, ix: Any, functions: OwnedFunctions) -> dict[str, Any]:
    """A cursor's index position, if it is one this service wrote for this caller; else a 400
    (or the 404 of a Function the caller does not own)."""
    bad = errors.BadRequestError(paging.INVALID_CURSOR)
    if not isinstance(ix, dict) or set(ix) != {"sort", "desc", "part", "phase", "key"}:
        raise bad
    if (
        ix["sort"] not in layout.JOB_INDEXES
        or not isinstance(ix["desc"], bool)
        or not isinstance(ix["part"], str)
    ):
        raise bad
    if ix["phase"] not in ("index", "rest") or (ix["phase"] == "rest" and ix["sort"] == "creation_date"):
        raise bad
    _, part_attr, sort_attr, kind = layout.JOB_INDEXES[ix["sort"]]
    if ix["sort"] == "creation_date":
        if ix["part"] != principal:
            raise bad
    else:
        functions.get(ix["part"])  # 404 for a Function the caller does not own
    key = ix["key"]
    if key is None:
        return ix
    wanted = {"function_id", "job_key"} | ({part_attr, sort_attr} if ix["phase"] == "index" else set())
    if not isinstance(key, dict) or set(key) != wanted or not _HEX.fullmatch(str(key["job_key"])):
        raise bad
    if not isinstance(key["function_id"], str) or not 0 < len(key["function_id"]) <= 64:
        raise bad
    if ix["phase"] == "index":
        value = key[sort_attr]
        typed = (
            isinstance(value, str)
            if kind == "S"
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if key[part_attr] != ix["part"] or not typed:
            raise bad
    elif key["function_id"] != ix["part"]:
        raise bad
    return ix


def _next_phase(ix: dict[str, Any]) -> str:
    if ix["sort"] == "creation_date":
        return "done"
    order = ["index", "rest"] if ix["desc"] else ["rest", "index"]
    return "done" if ix["phase"] == order[1] else order[1]


def _key_of(ix: dict[str, Any], job: JobRecord) -> Key:
    key = {"function_id": job.function_id, "job_key": job.job_key}
    if ix["phase"] == "index":
        # The layout names the index's attributes: the record's attributes of those names (a job
        # the index returned has both: the index is sparse).
        _, part_attr, sort_attr, _ = layout.JOB_INDEXES[ix["sort"]]
        key.update({part_attr: getattr(job, part_attr), sort_attr: getattr(job, sort_attr)})
    return key


def _fetch(svc: Services, ix: dict[str, Any], limit: int) -> tuple[list[JobRecord], Key | None]:
    if ix["phase"] == "index":
        return svc.jobs.query_index(
            ix["sort"], ix["part"], start=ix["key"], limit=limit, descending=ix["desc"]
        )
    # The jobs without the field, in key order (they are the ones the sparse index leaves out).
    jobs, last = svc.jobs.query(ix["part"], start=ix["key"], limit=limit, newest_first=False)
    return [j for j in jobs if getattr(j, ix["sort"]) is None], last


def page(
    svc: Services,
    state: dict[str, Any],
    predicate: Any,
    want: int,
    include_result: bool,
    functions: OwnedFunctions,
) -> tuple[list[JobRecord], dict[str, Any] | None]:
    """Up to ``want`` matching jobs from the cursor's index position; the state to resume from."""
    ix = dict(state["ix"])
    found: list[JobRecord] = []
    used = read = 0
    now = svc.clock()
    full = False
    growth = 1  # a page reads about what it returns; more, page by page, while a filter skips jobs
    while ix["phase"] != "done" and not full and read < READ_BUDGET and want:
        jobs, last = _fetch(svc, ix, limit=min(1000, max(10, want - len(found)) * growth))
        growth *= 2
        read += max(1, len(jobs))
        for job in jobs:
            try:
                function = functions.get(job.function_id)
            except errors.NotFoundError:  # a Function being deleted: its jobs are going too
                ix["key"] = _key_of(ix, job)
                continue
            if predicate(to_wire(job, function=function, now=now).model_dump()):
                cost = wire_bytes(job, with_result=include_result)
                if found and used + cost > limits.MAX_PAGE_BYTES:
                    full = True  # a shorter page, not an answer over Lambda's limit
                    break
                found.append(job)
                used += cost
            ix["key"] = _key_of(ix, job)
            if len(found) == want:
                full = True
                break
        if not full:  # every job of the store page was looked at: go on after it
            if last is None:
                ix["phase"], ix["key"] = _next_phase(ix), None
            else:
                ix["key"] = dict(last)
    if ix["phase"] == "done":
        return found, None
    return found, {**state, "ix": ix}
