"""Every Function of an owner, every job of a Function: the store's pages, read to the end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from geobatch_core.ports import Key
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services.context import Services


def all_functions(svc: Services, owner: str | None) -> Iterator[FunctionRecord]:
    """Functions of ``owner`` (every owner's when None), newest first."""
    start: Key | None = None
    while True:
        functions, start = svc.functions.list_by_owner(owner, start=start, limit=500)
        yield from (f for f in functions if f.owner)  # only Function items carry an owner
        if not start:
            return


def all_jobs(
    svc: Services,
    function_id: str,
    *,
    projection: Sequence[str] | None = None,
    newest_first: bool = False,
    consistent: bool = False,
) -> Iterator[JobRecord]:
    """A Function's jobs in creation order (``projection`` reads fewer attributes)."""
    start: Key | None = None
    while True:
        jobs, start = svc.jobs.query(
            function_id,
            start=start,
            limit=5000,
            newest_first=newest_first,
            projection=projection,
            consistent=consistent,
        )
        yield from jobs
        if not start:
            return
