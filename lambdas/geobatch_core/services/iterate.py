"""Every Function of an owner, every job of a Function: the store's pages, read to the end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from geobatch_core.ports import Item, Key
from geobatch_core.services.context import Services


def all_functions(svc: Services, owner: str | None) -> Iterator[Item]:
    """Functions of ``owner`` (every owner's when None), newest first."""
    start: Key | None = None
    while True:
        items, start = svc.functions.list_by_owner(owner, start=start, limit=500)
        yield from (i for i in items if i.get("owner"))  # only Function items carry an owner
        if not start:
            return


def all_jobs(
    svc: Services,
    function_id: str,
    *,
    projection: Sequence[str] | None = None,
    newest_first: bool = False,
    consistent: bool = False,
) -> Iterator[Item]:
    """A Function's job items in creation order (``projection`` reads fewer attributes)."""
    start: Key | None = None
    while True:
        items, start = svc.jobs.query(
            function_id,
            start=start,
            limit=5000,
            newest_first=newest_first,
            projection=projection,
            consistent=consistent,
        )
        yield from items
        if not start:
            return
