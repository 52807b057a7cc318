"""What a bulk cancel, rerun or delete selects, read in bounded pages, and its writes per page.

Shared by the synchronous path (a small filter, inside the request) and the background operation
(``services.operations``): both read the Functions' jobs in key order one store page at a time,
keep those the filter matches, and change each with the job state machine's conditional writes
(``jobs.cancel_item`` / ``rerun_item`` / ``delete_items``), so a page applied twice (a retried
pass, two overlapping runners) changes no job twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geobatch.wire import errors
from geobatch.wire.models import RERUNNABLE, TERMINAL, JobQuery, JobStatus
from geobatch_core import filters
from geobatch_core.ports import Key
from geobatch_core.records import JobRecord
from geobatch_core.services.access import OwnedFunctions, owned_function, split_job_id
from geobatch_core.services.context import Services
from geobatch_core.services.iterate import all_functions
from geobatch_core.services.job_wire import job_id, to_wire
from geobatch_core.services.jobs import cancel_item, delete_items, rerun_item

ACTIONS = ("cancel", "rerun", "delete")
STORE_PAGE = 1000  # items per store query (DynamoDB returns at most 1 MB per page anyway)
Predicate = Any
_CANCELED = frozenset({JobStatus.CANCELED.value, JobStatus.CANCEL.value})


def selection(action: str, query: JobQuery) -> list[Any]:
    """The filter terms of a bulk action: the caller's, its ids, and the statuses it can change."""
    terms = list(query.filter)
    if query.job_ids is not None:
        for jid in query.job_ids:
            split_job_id(jid)
        terms.append({"op": "in", "name": "id", "val": list(query.job_ids)})
    if action == "rerun":
        terms.append({"op": "in", "name": "status", "val": sorted(s.value for s in RERUNNABLE)})
    elif action == "cancel":
        terms.append(
            {"op": "in", "name": "status", "val": [JobStatus.PENDING.value, JobStatus.RUNNING.value]}
        )
    return terms


@dataclass
class Scan:
    """Where a scan stands: the Functions it reads, the one it is in and the last key read there."""

    fids: list[str]
    fi: int = 0
    key: Key | None = None
    read: int = field(default=0, compare=False)  # items read by this scan so far

    @property
    def done(self) -> bool:
        return self.fi >= len(self.fids)

    def state(self) -> dict[str, Any]:
        return {"fids": self.fids, "fi": self.fi, "key": self.key}

    @classmethod
    def of(cls, state: dict[str, Any]) -> Scan:
        return cls(fids=list(state["fids"]), fi=int(state.get("fi", 0)), key=state.get("key"))


def function_ids(svc: Services, principal: str, function_id: str | None) -> list[str]:
    """The Functions a selection reads: the one pinned, else every Function of the principal."""
    if function_id:
        owned_function(svc, principal, function_id)
        return [function_id]
    owner = None if principal in svc.settings.admins else principal
    return [f.id for f in sorted(all_functions(svc, owner), key=lambda f: (f.creation_date or "", f.id))]


def next_matches(
    svc: Services, scan: Scan, predicate: Predicate, functions: OwnedFunctions, limit: int | None = None
) -> list[JobRecord]:
    """Read one store page of the scan (advancing it) and return the jobs the filter matches."""
    limit = limit or STORE_PAGE
    if scan.done:
        return []
    fid = scan.fids[scan.fi]
    try:
        function = functions.get(fid)
    except errors.NotFoundError:  # deleted since the scan began: its jobs went with it
        scan.fi, scan.key = scan.fi + 1, None
        return []
    jobs, last = svc.jobs.query(fid, start=scan.key, limit=limit, newest_first=False)
    scan.read += len(jobs)
    if last:
        scan.key = last
    else:
        scan.fi, scan.key = scan.fi + 1, None
    now = svc.clock()
    return [j for j in jobs if predicate(to_wire(j, function=function, now=now).model_dump())]


def apply(
    svc: Services, action: str, jobs: list[JobRecord], functions: OwnedFunctions, *, delete_results: bool
) -> list[str]:
    """Carry out ``action`` on matched jobs; the ids of the jobs it changed.

    Cancel and rerun write conditionally on the state they read, so a stale listing cannot move a
    job wrongly: the write fails, the job is read again and decided again. Delete reads each job
    consistently first: a job rerun since it was listed is not deleted while it runs again.
    """
    changed: list[str] = []
    if action == "cancel":
        for job in jobs:
            new = cancel_item(svc, job)
            # Canceled now or being stopped (a job that finished meanwhile is not counted).
            if new.status != job.status and new.status in _CANCELED:
                changed.append(job_id(new))
    elif action == "rerun":
        for job in jobs:
            new = rerun_item(svc, job, functions.get(job.function_id))
            if (new.run or 0) != (job.run or 0):
                changed.append(job_id(new))
    elif action == "delete":
        fresh = []
        for job in jobs:
            try:
                current = svc.jobs.get(job.function_id, job.job_key, consistent=True)
            except errors.NotFoundError:
                continue  # deleted already (a retried page)
            if current.status in TERMINAL or current.status == JobStatus.PENDING.value:
                fresh.append(current)
        changed = [job_id(j) for j in delete_items(svc, fresh, delete_results=delete_results)]
    else:
        raise errors.BadRequestError(f"unknown bulk action {action!r}: use one of {', '.join(ACTIONS)}")
    return changed


def by_ids(
    svc: Services, job_ids: list[str], predicate: Predicate, functions: OwnedFunctions
) -> list[JobRecord]:
    """The jobs named by id that the filter matches (ids of other tenants' or missing jobs match none)."""
    now = svc.clock()
    found = []
    for jid in dict.fromkeys(job_ids):
        fid, key = split_job_id(jid)
        try:
            function = functions.get(fid)
            job = svc.jobs.get(fid, key, consistent=True)
        except errors.NotFoundError:
            continue
        if predicate(to_wire(job, function=function, now=now).model_dump()):
            found.append(job)
    return found


def statuses_only(terms: list[Any]) -> set[str] | None:
    """The statuses a selection is limited to, when it is limited by status (and Function) only:
    then its size is the sum of the Function's per-status counts. None for any other filter."""
    allowed: set[str] | None = None
    for term in terms:
        if not isinstance(term, dict) or term.get("name") not in ("status", "function_id"):
            return None
        if term.get("name") == "function_id":
            continue
        if term.get("op") == "eq":
            values = {str(term.get("val"))}
        elif term.get("op") == "in" and isinstance(term.get("val"), list):
            values = {str(v) for v in term["val"]}
        else:
            return None
        allowed = values if allowed is None else allowed & values
    return allowed


def parsed(terms: list[Any]) -> Predicate:
    predicate, _ = filters.parse(terms, filters.JOB_FIELDS)
    return predicate
