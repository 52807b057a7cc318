"""The worker's heartbeat: keeps the held messages' leases, publishes the running job's lease to
the user-code child, and notices a cancel of the running job."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

from geobatch.wire import errors
from geobatch.wire.models import JobStatus
from geobatch_core.ports import JobStore, Message
from geobatch_core.services.context import Settings
from geobatch_core.services.execution import claim_token, mark_canceling
from geobatch_worker.held import HeldMessages
from geobatch_worker.runner import Runner

if TYPE_CHECKING:
    from geobatch_worker.loop import WorkerConfig


class Heartbeat:
    """Mixed into ``Worker``: the attributes below are the worker's."""

    config: WorkerConfig
    settings: Settings
    jobs: JobStore
    stopping: threading.Event
    _held: HeldMessages
    _current: tuple[str, Message] | None
    _runner: Runner | None
    _cancel: threading.Event

    def _heartbeat(self) -> None:
        """Keep held messages invisible while we live, and notice a cancel of the running job."""
        # A quarter of the lease: a heartbeat thread starved for two beats still keeps it.
        interval = max(1.0, self.settings.lost_worker_seconds / 4)
        due = time.monotonic() + interval
        # On a fixed beat: a slow call delays the next extension by no more than its own length.
        while not self.stopping.wait(max(0.0, due - time.monotonic())):
            due += interval
            with contextlib.suppress(errors.GeoBatchError):
                self._extend()
            with contextlib.suppress(errors.GeoBatchError):
                self._check_cancel()

    def _extend(self) -> None:
        self._held.extend()
        self._publish_lease()

    def _publish_lease(self) -> None:
        """Tell the user-code child until when the running job is ours."""
        current, runner = self._current, self._runner
        if current is None or runner is None:
            return
        until = self._held.lease(current[1])
        runner.lease.set(until if until is not None else time.monotonic() - 1)

    def _check_cancel(self) -> None:
        current = self._current
        if current is None:
            return
        job_key, message = current
        status = self.jobs.get(self.config.function_id, job_key).status
        if (
            status == JobStatus.CANCEL.value
            and mark_canceling(self.jobs, self.config.function_id, job_key, claim_token(message))
        ) or status == JobStatus.CANCELING.value:
            self._cancel.set()
