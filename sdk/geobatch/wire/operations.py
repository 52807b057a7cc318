"""Wire form of a bulk operation that the service carries out in the background.

``POST /jobs/cancel|rerun|delete`` answers 200 with the changed job ids when the filter is small
(see ``limits.SYNC_BULK_JOBS``); otherwise 202 with an :class:`Operation`, which the scaler applies
in pages. ``GET /operations/{id}`` shows its progress.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from geobatch.wire.models import WireModel


class OperationState(StrEnum):
    QUEUED = "queued"  # accepted, no page applied yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # stopped for good (e.g. the Function was deleted); ``error`` says why

    @property
    def is_final(self) -> bool:
        return self in (OperationState.SUCCEEDED, OperationState.FAILED)


class Operation(WireModel):
    """A bulk cancel, rerun or delete carried out in pages.

    ``processed`` counts the jobs that matched and were looked at, ``changed`` those the operation
    changed (a job already canceled by someone else matches no more, or is not changed twice).
    ``total`` is the number of matching jobs when the operation started, when it could be known
    cheaply (a Function's jobs chosen by status only); otherwise None.
    """

    id: str
    action: Literal["cancel", "rerun", "delete"]
    state: OperationState
    function_id: str | None = None
    processed: int = 0
    changed: int = 0
    total: int | None = None
    pages: int = 0
    creation_date: datetime
    last_update: datetime | None = None
    finish_date: datetime | None = None
    error: str | None = None
