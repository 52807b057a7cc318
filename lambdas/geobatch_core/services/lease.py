"""A lease on a Function's scaling pass: one scaler at a time decides how many workers it lacks.

A scaling pass reads the running workers, then starts the missing ones; two passes that overlap
(the schedule and a submit, or two bulk submits) would both see the same shortfall and together
start up to twice ``maximum_concurrency``. The lease is an attribute of the Function item taken with
a compare-and-swap (absent, or the expired value just read), so only one pass holds it; the others
skip that Function, which is safe: the holder starts what is missing, and the next tick rechecks.
A pass that dies keeps nobody out for longer than ``LEASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from geobatch.wire import errors
from geobatch_core.records import FunctionRecord
from geobatch_core.services.context import Services
from geobatch_core.store import ABSENT

LEASE_ATTRIBUTE = "scaling_lease"  # "<expiry epoch seconds>:<holder token>"
LEASE_SECONDS = 90  # longer than the scaler's 60 s timeout


def _expiry(value: object) -> float:
    try:
        return float(str(value).split(":", 1)[0])
    except ValueError:
        return 0.0  # unreadable: treat as expired


@contextmanager
def scaling_lease(svc: Services, function: FunctionRecord) -> Iterator[bool]:
    """Hold the Function's scaling lease for the ``with`` block; yields False if another pass has it."""
    function_id = function.id
    now = svc.clock().timestamp()
    try:
        current = svc.functions.get(function_id).scaling_lease
    except errors.NotFoundError:
        yield False
        return
    if current is not None and _expiry(current) > now:
        yield False
        return
    token = f"{int(now) + LEASE_SECONDS}:{uuid.uuid4().hex}"
    try:
        svc.functions.update(
            function_id,
            {LEASE_ATTRIBUTE: token},
            expect={LEASE_ATTRIBUTE: ABSENT if current is None else current},
        )
    except (errors.ConflictError, errors.NotFoundError):
        yield False  # another pass took it first, or the Function is gone
        return
    try:
        yield True
    finally:
        # Expired and taken over, or deleted: then nothing of ours is left to release.
        with contextlib.suppress(errors.ConflictError, errors.NotFoundError):
            svc.functions.update(function_id, {LEASE_ATTRIBUTE: None}, expect={LEASE_ATTRIBUTE: token})
