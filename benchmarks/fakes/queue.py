"""In-memory fake of the queue port (SQS semantics: visibility timeouts, receipts, a dead-letter queue)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from geobatch.wire import errors
from geobatch_core.ports import Message


class FakeQueue:
    """A standard queue with visibility timeouts and per-receive receipt handles."""

    def __init__(self) -> None:
        self.queues: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.calls = 0
        self._ids = itertools.count()

    def create(self, name: str, *, max_receive_count: int, visibility_seconds: int) -> tuple[str, str]:
        self.calls += 1
        url, dlq = f"fake://{name}", f"fake://{name}-dlq"
        if url not in self.queues:
            self.queues[dlq] = {"msgs": {}, "order": deque(), "max_receive": None, "dlq": None}
            self.queues[url] = {"msgs": {}, "order": deque(), "max_receive": max_receive_count, "dlq": dlq}
        return url, dlq

    def delete(self, queue_url: str) -> None:
        self.calls += 1
        self.queues.pop(queue_url, None)

    def _q(self, url: str) -> dict[str, Any]:
        if url not in self.queues:
            raise errors.NotFoundError("the job queue is gone")
        return self.queues[url]

    def send_batch(self, queue_url: str, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        self.calls += (len(bodies) + 9) // 10
        now = time.monotonic()
        with self.lock:
            q = self._q(queue_url)
            for body in bodies:
                mid = str(uuid.UUID(int=next(self._ids)))
                q["msgs"][mid] = {
                    "body": body,
                    "visible_at": now + delay_seconds,
                    "receipt": None,
                    "count": 0,
                }
                q["order"].append(mid)

    def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        self.calls += 1
        deadline = time.monotonic() + wait_seconds
        while True:
            now = time.monotonic()
            out: list[Message] = []
            with self.lock:
                q = self._q(queue_url)
                for _ in range(len(q["order"])):
                    if len(out) >= min(10, max_messages):
                        break
                    mid = q["order"][0]
                    q["order"].rotate(-1)
                    m = q["msgs"].get(mid)
                    if m is None or m["visible_at"] > now:
                        continue
                    if q["max_receive"] is not None and m["count"] >= q["max_receive"]:
                        # SQS's redrive: a message received too often moves, id and count kept
                        del q["msgs"][mid]
                        dead = self.queues.get(q["dlq"])
                        if dead is not None:
                            dead["msgs"][mid] = {**m, "receipt": None, "visible_at": now}
                            dead["order"].append(mid)
                        continue
                    m["count"] += 1
                    m["receipt"] = f"{mid}#{m['count']}"
                    m["visible_at"] = now + visibility_seconds
                    out.append(Message(mid, m["receipt"], m["body"], m["count"]))
                # drop deleted ids from the rotation
                q["order"] = deque(i for i in q["order"] if i in q["msgs"])
            if out or now >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - now)))

    def _by_receipt(self, q: dict[str, Any], receipt: str) -> tuple[str, dict[str, Any]] | None:
        mid = receipt.split("#", 1)[0]
        m = q["msgs"].get(mid)
        return (mid, m) if m is not None and m["receipt"] == receipt else None

    def delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None:
        self.calls += (len(receipts) + 9) // 10
        with self.lock:
            q = self._q(queue_url)
            for r in receipts:
                found = self._by_receipt(q, r)
                if found:
                    del q["msgs"][found[0]]

    def change_visibility_batch(self, queue_url: str, entries: Sequence[tuple[str, int]]) -> None:
        self.calls += (len(entries) + 9) // 10
        now = time.monotonic()
        with self.lock:
            q = self._q(queue_url)
            for r, seconds in entries:
                found = self._by_receipt(q, r)
                if found:
                    found[1]["visible_at"] = now + seconds

    def depth(self, queue_url: str) -> tuple[int, int]:
        self.calls += 1
        now = time.monotonic()
        with self.lock:
            msgs = self._q(queue_url)["msgs"].values()
            visible = sum(1 for m in msgs if m["visible_at"] <= now)
            in_flight = sum(1 for m in msgs if m["visible_at"] > now and m["receipt"] is not None)
            return visible, in_flight  # delayed messages are neither, as in SQS
