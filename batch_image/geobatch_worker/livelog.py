"""Ships the log of the running job in parts (see ``geobatch_core.services.live_logs``)."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from geobatch.wire import errors
from geobatch_core.ports import BlobStore, JobStore
from geobatch_core.records import JobRecord
from geobatch_core.services import live_logs

log = logging.getLogger("geobatch.worker")


class LiveLog:
    """Called by the runner between polls: now and then, the new whole lines of the job's log."""

    def __init__(self, jobs: JobStore, blobs: BlobStore, job: JobRecord, attempt: int, token: str):
        self._jobs, self._blobs = jobs, blobs
        self._job, self._attempt, self._token = job, attempt, token
        self._due = time.monotonic() + live_logs.interval(0)
        self._offset = 0
        self.parts = 0

    def __call__(self, path: Path) -> None:
        if time.monotonic() < self._due or self.parts >= live_logs.MAX_PARTS:
            return
        self._due = time.monotonic() + live_logs.interval(self.parts + 1)
        try:
            with path.open("rb") as stream:
                stream.seek(self._offset)
                data = stream.read(live_logs.PART_BYTES)
        except OSError:
            return
        if len(data) < live_logs.PART_BYTES:
            data = data[: data.rfind(b"\n") + 1]  # whole lines only; the rest goes in the next part
        if not data:
            return
        try:
            if live_logs.ship_part(
                self._jobs, self._blobs, self._job, self._attempt, self._token, self.parts, data
            ):
                self._offset += len(data)
                self.parts += 1
            else:
                self.parts = live_logs.MAX_PARTS  # not ours any more: stop shipping
        except errors.GeoBatchError as exc:
            log.warning("could not ship a live log part: %s", exc.message)

    def discard(self) -> None:
        """Delete the parts once the whole log is stored (best effort: a part left behind is under
        the Function's log prefix, which deleting the Function clears)."""
        if self.parts:
            keys = live_logs.part_keys(self._job.function_id, self._job, self._attempt, self.parts)
            with contextlib.suppress(errors.GeoBatchError):
                self._blobs.delete(keys)
