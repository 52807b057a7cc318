"""Bulk cancel, rerun and delete, and the background operations the service runs for large ones.

A bulk call over a small filter is done when the API answers (the changed ids come back). A large
one (more than ``limits.SYNC_BULK_JOBS`` jobs) is accepted as an :class:`Operation` that the service
applies in pages; :meth:`Operation.wait` follows it, with a progress bar if asked.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from geobatch.progress import ProgressBar
from geobatch.wire import errors, models
from geobatch.wire.operations import Operation as OperationModel
from geobatch.wire.operations import OperationState

if TYPE_CHECKING:
    from geobatch.client import Client

__all__ = ["BulkResult", "Operation", "OperationFailedError", "OperationState", "start_bulk_operation"]

_MAX_POLL_SECONDS = 10.0


class OperationFailedError(errors.GeoBatchError):
    """A background bulk operation stopped before the end (its ``error`` says why)."""

    status = 409
    code = "operation_failed"


class Operation:
    """A background bulk operation: its progress, refreshed with :meth:`refresh` or :meth:`wait`."""

    def __init__(self, data: OperationModel | dict[str, Any], client: Client):
        self._client = client
        self._wire = data if isinstance(data, OperationModel) else OperationModel.model_validate(data)

    @classmethod
    def get(cls, id: str, client: Client | None = None) -> Operation:
        from geobatch.client import get_default_client

        client = client or get_default_client()
        return cls(client.get(f"/operations/{id}"), client)

    id = property(lambda self: self._wire.id)
    action = property(lambda self: self._wire.action)
    state = property(lambda self: self._wire.state)
    processed = property(lambda self: self._wire.processed, doc="jobs that matched and were looked at")
    changed = property(lambda self: self._wire.changed, doc="jobs the operation changed")
    total = property(lambda self: self._wire.total, doc="jobs matching at the start, when known")
    error = property(lambda self: self._wire.error)

    @property
    def done(self) -> bool:
        return self._wire.state.is_final

    def refresh(self) -> Operation:
        self._wire = OperationModel.model_validate(self._client.get(f"/operations/{self.id}"))
        return self

    def wait(
        self, timeout: float | None = None, interval: float | None = None, progress: bool | None = None
    ) -> Operation:
        """Poll until the operation ends; ``TimeoutError`` after ``timeout`` seconds,
        ``OperationFailedError`` if it failed. A progress bar on stderr when it is a terminal."""
        base = interval or min(self._client.poll_interval, 2.0)
        delay, last = base, None
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _Bar(sys.stderr.isatty() if progress is None else progress)
        try:
            while True:
                bar.update(self)
                if self.done:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"operation {self.id} is {self.state} after {timeout} s: {self}")
                seen = (self.processed, self.state)
                delay = base if seen != last else min(delay * 1.5, _MAX_POLL_SECONDS)
                last = seen
                time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
                self.refresh()
        finally:
            bar.close()
        if self.state == OperationState.FAILED:
            raise OperationFailedError(f"operation {self.id} ({self.action}) failed: {self.error}")
        return self

    def __str__(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        return f"{self.action} {self.state}: {self.processed}{of} jobs looked at, {self.changed} changed"

    def __repr__(self) -> str:
        return f"Operation(id={self.id!r}, {self})"


class BulkResult(list[str]):
    """The ids of the jobs a bulk call changed; for a background operation the list is empty and
    ``operation`` (finished, when the call waited) tells how many were changed (``changed``)."""

    operation: Operation | None = None

    @property
    def changed(self) -> int:
        """How many jobs were changed (the operation's count, or the ids')."""
        return self.operation.changed if self.operation is not None else len(self)


def start_bulk_operation(client: Client, action: str, query: models.JobQuery) -> models.JobIds | Operation:
    """One ``POST /jobs/{action}``: the changed ids (done), or the operation the service runs."""
    response = client.request(
        "POST", f"/jobs/{action}", json_body=query.model_dump(mode="json", exclude_none=True)
    )
    if response.status == 202:
        return Operation(response.json(), client)
    return models.JobIds.model_validate(response.json())


class _Bar(ProgressBar):
    """An operation's progress on the same one-line bar as a Function's jobs."""

    def update(self, op: Operation) -> None:  # type: ignore[override]
        if self.enabled:
            bar = f"{self.bar(op.processed, op.total)} " if op.total else ""
            self.draw(f"{op.action} [{op.state}] {bar}{op}")
