"""SQLite job queues for local mode: SQS's semantics for what the workers and scaler rely on.

- A message keeps its id for life (also into the dead-letter queue): claims are keyed on it.
- Each receive hands out a new receipt and hides the message for the visibility timeout; only the
  latest receipt deletes it or changes its visibility (a stale one is skipped, as in SQS).
- A redrive policy moves a message to the dead-letter queue on the receive after its
  ``max_receive_count``-th, keeping its receive count, as SQS does.
- Sending costs the same however long the queue is (an index on (queue, visible_at)), which is
  what moto's SQS could not do: its send slows as the queue grows.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence

from geobatch.wire import errors
from geobatch_core.adapters.sqlite.db import Database, now
from geobatch_core.ports import Message

URL_SCHEME = "local-sqs://"
POLL_SECONDS = 0.05


class SqliteQueue:
    def __init__(self, db: Database):
        self._db = db

    def create(self, name: str, *, max_receive_count: int, visibility_seconds: int) -> tuple[str, str]:
        url, dlq_url = f"{URL_SCHEME}{name}", f"{URL_SCHEME}{name}-dlq"
        with self._db.write(durable=True) as conn:
            conn.execute("INSERT OR IGNORE INTO queues (url) VALUES (?)", (dlq_url,))
            conn.execute(
                "INSERT OR REPLACE INTO queues (url, dlq_url, max_receive_count, visibility_seconds) "
                "VALUES (?, ?, ?, ?)",
                (url, dlq_url, max_receive_count, visibility_seconds),
            )
        return url, dlq_url

    def delete(self, queue_url: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM messages WHERE queue_url = ?", (queue_url,))
            conn.execute("DELETE FROM queues WHERE url = ?", (queue_url,))

    def _queue(self, conn: object, queue_url: str, what: str) -> tuple[str | None, int | None, int]:
        row = conn.execute(  # type: ignore[attr-defined]
            "SELECT dlq_url, max_receive_count, visibility_seconds FROM queues WHERE url = ?", (queue_url,)
        ).fetchone()
        if row is None:
            raise errors.NotFoundError(f"the job queue is gone ({what})")
        return row[0], row[1], int(row[2] or 30)

    def send_batch(self, queue_url: str, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        visible_at = now() + max(0, delay_seconds)
        with self._db.write(durable=True) as conn:  # a queued job survives even a power loss
            self._queue(conn, queue_url, "queue jobs")
            conn.executemany(
                "INSERT INTO messages (queue_url, message_id, body, visible_at) VALUES (?, ?, ?, ?)",
                [(queue_url, str(uuid.uuid4()), body, visible_at) for body in bodies],
            )

    def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        deadline = time.monotonic() + max(0, wait_seconds)
        while True:
            messages = self._receive_once(queue_url, max(1, min(10, max_messages)), visibility_seconds)
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(POLL_SECONDS)  # long polling: the queue is shared between processes

    def _receive_once(self, queue_url: str, limit: int, visibility_seconds: int) -> list[Message]:
        out: list[Message] = []
        # Idle workers poll often: look without the write lock first.
        ready = self._db.read().execute(
            "SELECT 1 FROM messages WHERE queue_url = ? AND visible_at <= ? LIMIT 1", (queue_url, now())
        )
        if ready.fetchone() is None:
            self._queue(self._db.read(), queue_url, "receive jobs")  # a gone queue still says so
            return out
        with self._db.write() as conn:
            dlq_url, max_receives, _ = self._queue(conn, queue_url, "receive jobs")
            t = now()
            rows = conn.execute(
                "SELECT seq, message_id, body, receive_count FROM messages "
                "WHERE queue_url = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?",
                (queue_url, t, limit * 2),
            ).fetchall()
            for seq, message_id, body, count in rows:
                if dlq_url and max_receives and count >= max_receives:
                    conn.execute(
                        "UPDATE messages SET queue_url = ?, visible_at = ?, receipt = NULL WHERE seq = ?",
                        (dlq_url, t, seq),
                    )
                    continue
                if len(out) == limit:
                    break
                receipt = secrets.token_urlsafe(24)
                conn.execute(
                    "UPDATE messages SET visible_at = ?, receive_count = ?, receipt = ? WHERE seq = ?",
                    (t + visibility_seconds, count + 1, receipt, seq),
                )
                out.append(
                    Message(message_id=message_id, receipt=receipt, body=body, receive_count=count + 1)
                )
        return out

    def delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None:
        with self._db.write() as conn:
            self._queue(conn, queue_url, "acknowledge jobs")
            conn.executemany(
                "DELETE FROM messages WHERE queue_url = ? AND receipt = ?", [(queue_url, r) for r in receipts]
            )

    def change_visibility_batch(self, queue_url: str, entries: Sequence[tuple[str, int]]) -> None:
        t = now()
        with self._db.write() as conn:
            self._queue(conn, queue_url, "extend job leases")
            conn.executemany(
                "UPDATE messages SET visible_at = ? WHERE queue_url = ? AND receipt = ?",
                [(t + max(0, min(43200, int(s))), queue_url, r) for r, s in entries],
            )

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight): a message received at least once and hidden counts as in flight;
        one sent with a delay is neither yet, as SQS counts it apart ("delayed")."""
        conn = self._db.read()
        row = conn.execute("SELECT 1 FROM queues WHERE url = ?", (queue_url,)).fetchone()
        if row is None:
            raise errors.NotFoundError("the job queue is gone (read the queue depth)")
        t = now()
        visible = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE queue_url = ? AND visible_at <= ?", (queue_url, t)
        ).fetchone()[0]
        hidden = conn.execute(
            "SELECT COUNT(*) FROM messages WHERE queue_url = ? AND visible_at > ? AND receipt IS NOT NULL",
            (queue_url, t),
        ).fetchone()[0]
        return int(visible), int(hidden)
