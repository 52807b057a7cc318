"""Ownership: a principal sees and changes only what it created (admins see everything).

Another tenant's resources answer 404, exactly like missing ones, so ids cannot be probed.
"""

from __future__ import annotations

from geobatch.wire import errors
from geobatch_core.ports import Item
from geobatch_core.services.context import Services


def can_access(svc: Services, principal: str, item: Item) -> bool:
    return item.get("owner") == principal or principal in svc.settings.admins


def owned_function(svc: Services, principal: str, function_id: str) -> Item:
    try:
        item = svc.functions.get(function_id)
    except errors.NotFoundError:
        raise errors.NotFoundError(f"Function {function_id} does not exist") from None
    if not can_access(svc, principal, item):
        raise errors.NotFoundError(f"Function {function_id} does not exist")
    return item


def split_job_id(job_id: str) -> tuple[str, str]:
    function_id, _, job_key = job_id.rpartition("-")
    if not function_id or not job_key or not all(c in "0123456789abcdef" for c in job_key):
        raise errors.NotFoundError(f"job {job_id} does not exist")
    return function_id, job_key


def owned_job(svc: Services, principal: str, job_id: str) -> tuple[Item, Item]:
    """The job item and its Function item, if the principal may see them."""
    function_id, job_key = split_job_id(job_id)
    try:
        function = owned_function(svc, principal, function_id)
        return svc.jobs.get(function_id, job_key, consistent=True), function
    except errors.NotFoundError:
        raise errors.NotFoundError(f"job {job_id} does not exist") from None


class OwnedFunctions:
    """The Function items one request touches, each read once and each checked for ownership.

    Cursors are opaque but not signed, so every Function a cursor names is checked again here:
    a cursor edited to name another tenant's Function gets 404 like any other request.
    """

    def __init__(self, svc: Services, principal: str):
        self._svc = svc
        self._principal = principal
        self._items: dict[str, Item] = {}

    @property
    def principal(self) -> str:
        """Whose request this is."""
        return self._principal

    def get(self, function_id: str) -> Item:
        if function_id not in self._items:
            self._items[function_id] = owned_function(self._svc, self._principal, function_id)
        return self._items[function_id]
