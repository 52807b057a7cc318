"""The messages a worker holds, each with its lease (how long SQS keeps it invisible for us).

A message is ours to claim, extend or settle only while its lease lasts, less a margin. Past that
(the worker was stopped, or SQS was out of reach) another worker may have received it, and its old
receipt must not touch it again: moto accepts any past receipt of a message, and an extension or a
hand-back on a stale receipt would reveal or hide a job another worker runs.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from geobatch_core.ports import Message, Queue
from geobatch_worker.lease import margin

log = logging.getLogger("geobatch.worker")


@dataclass
class _Held:
    message: Message
    until: float  # monotonic time our lease on the message runs out


class HeldMessages:
    def __init__(self, queue: Queue, queue_url: str, lease_seconds: float):
        self._queue = queue
        self._queue_url = queue_url
        self.lease_seconds = lease_seconds
        self.margin = margin(lease_seconds)
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def hold(self, messages: list[Message], until: float) -> None:
        with self._lock:
            self._held = {m.receipt: _Held(m, until) for m in messages}

    def lease(self, message: Message) -> float | None:
        """Until when ``message`` is ours (less the margin); None once that passed (it is dropped)."""
        with self._lock:
            held = self._held.get(message.receipt)
            if held is None:
                return None
            if time.monotonic() > held.until - self.margin:
                del self._held[message.receipt]
                log.warning("lost the lease on message %s; leaving it alone", message.message_id)
                return None
            return held.until - self.margin

    def drop(self, message: Message) -> None:
        """Stop extending ``message``: it returns after its lease, or is another worker's now."""
        with self._lock:
            self._held.pop(message.receipt, None)

    def take_live(self) -> list[str]:
        """Empty the hold; the receipts whose lease still lasts (those that may be settled)."""
        with self._lock:
            held, self._held = self._held, {}
        now = time.monotonic()
        return [r for r, h in held.items() if now < h.until - self.margin]

    def extend(self) -> None:
        """One heartbeat: extend every message whose lease still lasts (never a lapsed one)."""
        sent = time.monotonic()
        with self._lock:
            held = [h for h in self._held.values() if sent < h.until - self.margin]
        if not held:
            return
        self._queue.change_visibility_batch(
            self._queue_url, [(h.message.receipt, int(self.lease_seconds)) for h in held]
        )
        with self._lock:
            for h in held:
                h.until = sent + self.lease_seconds  # SQS counts from when it got the request: later
