"""Ownership: a principal sees and changes only what it created (admins see everything).

Another tenant's resources answer 404, exactly like missing ones, so ids cannot be probed.
"""

from __future__ import annotations

from geobatch.wire import errors
from geobatch_core.records import FunctionRecord, JobRecord
from geobatch_core.services.context import Services


def can_access(svc: Services, principal: str, function: FunctionRecord) -> bool:
    return function.owner == principal or principal in svc.settings.admins


def owned_function(svc: Services, principal: str, function_id: str) -> FunctionRecord:
    try:
        function = svc.functions.get(function_id)
    except errors.NotFoundError:
        raise errors.NotFoundError(f"Function {function_id} does not exist") from None
    if not can_access(svc, principal, function):
        raise errors.NotFoundError(f"Function {function_id} does not exist")
    return function


def split_job_id(job_id: str) -> tuple[str, str]:
    function_id, _, job_key = job_id.rpartition("-")
    if not function_id or not job_key or not all(c in "0123456789abcdef" for c in job_key):
        raise errors.NotFoundError(f"job {job_id} does not exist")
    return function_id, job_key


def owned_job(svc: Services, principal: str, job_id: str) -> tuple[JobRecord, FunctionRecord]:
    """The job and its Function, if the principal may see them."""
    function_id, job_key = split_job_id(job_id)
    try:
        function = owned_function(svc, principal, function_id)
        return svc.jobs.get(function_id, job_key, consistent=True), function
    except errors.NotFoundError:
        raise errors.NotFoundError(f"job {job_id} does not exist") from None


class OwnedFunctions:
    """The Functions one request touches, each read once and each checked for ownership.

    Cursors are opaque but not signed, so every Function a cursor names is checked again here:
    a cursor edited to name another tenant's Function gets 404 like any other request.
    """

    def __init__(self, svc: Services, principal: str):
        self._svc = svc
        self._principal = principal
        self._functions: dict[str, FunctionRecord] = {}

    @property
    def principal(self) -> str:
        """Whose request this is."""
        return self._principal

    def get(self, function_id: str) -> FunctionRecord:
        if function_id not in self._functions:
            self._functions[function_id] = owned_function(self._svc, self._principal, function_id)
        return self._functions[function_id]
