"""One SQLite file holds local mode's Functions, Jobs and queues; every process opens it.

The daemon's API threads, its scaler and each worker subprocess have their own connections. WAL
lets readers run beside the one writer, and every conditional write is a ``BEGIN IMMEDIATE``
transaction (read, check, write), so the ports' compare-and-set semantics hold across processes
exactly as DynamoDB's condition expressions hold across Lambdas and containers.

Durability: a committed transaction is in the WAL file before ``commit`` returns, so killing any
process (``kill -9`` of the daemon or a worker) loses nothing that was acknowledged. Against an
operating-system crash or power loss: writes that create work (submissions, Functions) are
``durable`` (``synchronous=FULL``: the WAL is fsynced before the answer), the many small job
transitions are not (``synchronous=NORMAL``); the daemon checkpoints every few seconds, which
syncs them, so such a crash rolls back at most those seconds of job progress, never a submission.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.store import ABSENT, Increment

SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    id TEXT PRIMARY KEY, owner TEXT, creation_date TEXT, item TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS functions_owner ON functions (owner, creation_date);
CREATE TABLE IF NOT EXISTS jobs (
    function_id TEXT NOT NULL, job_key TEXT NOT NULL, item TEXT NOT NULL,
    PRIMARY KEY (function_id, job_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queues (
    url TEXT PRIMARY KEY, dlq_url TEXT, max_receive_count INTEGER, visibility_seconds INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue_url TEXT NOT NULL, message_id TEXT NOT NULL,
    body TEXT NOT NULL, visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue_url, visible_at);
CREATE UNIQUE INDEX IF NOT EXISTS messages_receipt ON messages (receipt);
"""

# Per-status job counts, kept by triggers in the very transaction that writes a job, so they are
# exact at every commit whatever the writer (as the DynamoDB adapter's transactions keep them).
# Rows: (function, status, n), and (function, VERSION_ROW, writes) which moves with every counted
# change. Only jobs count: keys below "g" (references sort above), in Functions' partitions (not
# the service's own records, "req#", "op#", "pace#", whose items may carry a "status").
VERSION_ROW = "#version"
_STATUS = "json_extract({row}.item, '$.status')"
_IS_JOB = "{row}.job_key < 'g' AND {row}.function_id NOT LIKE '%#%' AND " + _STATUS + " IS NOT NULL"
_IS_JOB_CHANGE = "OLD.job_key < 'g' AND OLD.function_id NOT LIKE '%#%'"


def _add(row: str, delta: str) -> str:
    """Add ``delta`` to the count of the status of ``row`` (OLD or NEW), and bump the version."""
    status = _STATUS.format(row=row)
    # SQL built from this module's constants only (row is OLD or NEW, delta 1 or -1): no input.
    return (
        f"INSERT INTO job_counts SELECT {row}.function_id, {status}, {delta} WHERE {status} IS NOT NULL "  # nosec B608
        f"ON CONFLICT (function_id, status) DO UPDATE SET n = n + ({delta});\n"
        f"INSERT INTO job_counts VALUES ({row}.function_id, '{VERSION_ROW}', 1) "
        "ON CONFLICT (function_id, status) DO UPDATE SET n = n + 1;\n"
    )


COUNTS_SCHEMA = f"""

CREATE TABLE IF NOT EXISTS job_counts (
    function_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (function_id, status)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS jobs_counted_insert AFTER INSERT ON jobs
WHEN {_IS_JOB.format(row="NEW")} BEGIN
{_add("NEW", "1")}END;
CREATE TRIGGER IF NOT EXISTS jobs_counted_delete AFTER DELETE ON jobs
WHEN {_IS_JOB.format(row="OLD")} BEGIN
{_add("OLD", "-1")}END;
CREATE TRIGGER IF NOT EXISTS jobs_counted_update AFTER UPDATE OF item ON jobs
WHEN {_IS_JOB_CHANGE} AND {_STATUS.format(row="OLD")} IS NOT {_STATUS.format(row="NEW")} BEGIN
{_add("OLD", "-1")}{_add("NEW", "1")}END;
CREATE TRIGGER IF NOT EXISTS functions_counts_gone AFTER DELETE ON functions BEGIN
DELETE FROM job_counts WHERE function_id = OLD.id;
END;
"""  # nosec B608: built from constants
# A database written before counts existed: count its jobs once, when the table is created.
BACKFILL = f"""
INSERT INTO job_counts
SELECT function_id, {_STATUS.format(row="jobs")}, COUNT(*) FROM jobs
WHERE {_IS_JOB.format(row="jobs")} GROUP BY 1, 2
"""  # nosec B608: built from constants


def field(attr: str) -> str:
    """The SQL of a job attribute: a column for the keys, else the value inside the item's JSON."""
    return attr if attr in ("function_id", "job_key") else f"json_extract(item, '$.{attr}')"


def _job_indexes() -> str:
    """The Jobs table's GSIs (``layout.JOB_INDEXES``) as partial expression indexes: sparse like a
    GSI, and read in the same order (partition, sort value, then the table's keys)."""
    statements = []
    for name, partition, sort, _ in layout.JOB_INDEXES.values():
        columns = ", ".join(dict.fromkeys([field(partition), field(sort), "function_id", "job_key"]))
        statements.append(
            f"CREATE INDEX IF NOT EXISTS jobs_{name.replace('-', '_')} ON jobs ({columns}) "
            f"WHERE {field(partition)} IS NOT NULL AND {field(sort)} IS NOT NULL;"
        )
    return "\n".join(statements)


SCHEMA += _job_indexes()


class Database:
    """A thread-local connection per thread of this process to one SQLite file."""

    def __init__(self, path: Path | str, *, busy_seconds: float = 60.0):
        self.path = str(path)
        self._busy = busy_seconds
        self._local = threading.local()
        conn = self._connection()
        conn.executescript(SCHEMA)  # idempotent; executescript runs its own commits
        with self.write() as tx:
            fresh = tx.execute("SELECT 1 FROM sqlite_master WHERE name = 'job_counts'").fetchone() is None
            for statement in _statements(COUNTS_SCHEMA):
                tx.execute(statement)
            if fresh:
                tx.execute(BACKFILL)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before the first read so a check and its write are atomic.
        ``durable``: fsync before returning (work that must survive a power loss)."""
        conn = self._connection()
        if durable:
            conn.execute("PRAGMA synchronous=FULL")  # a pragma cannot change inside a transaction
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise errors.ThrottledError(f"local state is busy ({exc}); retry shortly") from None
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    def checkpoint(self) -> None:
        """Copy the WAL into the database file, syncing it first (the daemon does this every few
        seconds: the bound on what an operating-system crash can roll back)."""
        self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def read(self) -> sqlite3.Connection:
        return self._connection()


def _statements(script: str) -> list[str]:
    """The statements of a script whose triggers hold ``;`` inside BEGIN ... END."""
    out, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def now() -> float:
    return time.time()


# ------------------------------------------------------------------ items as DynamoDB keeps them


def normalize(value: Any) -> Any:
    """What a DynamoDB round trip makes of a value: None attributes dropped, integral numbers ints,
    tuples and sets lists. Items read back from SQLite equal items read back from DynamoDB."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {k: normalize(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple | set | frozenset):
        return [normalize(v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot store {type(value).__name__} in local state")


def _hook(value: dict[str, Any]) -> Any:
    if len(value) == 1 and "__bytes__" in value:
        return base64.b64decode(value["__bytes__"])
    return value


def dumps(item: Mapping[str, Any]) -> str:
    return json.dumps(normalize(item), default=_default, separators=(",", ":"))


def loads(text: str) -> dict[str, Any]:
    return dict(json.loads(text, object_hook=_hook))


def holds(item: Mapping[str, Any], expect: Mapping[str, Any]) -> bool:
    """Whether every expectation holds (a list means one of; ``ABSENT``: the attribute is missing)."""
    for attr, val in expect.items():
        options = list(val) if isinstance(val, list | tuple | set | frozenset) else [val]
        present = attr in item
        if not any((o is ABSENT and not present) or (present and _same(item[attr], o)) for o in options):
            return False
    return True


def _same(stored: Any, wanted: Any) -> bool:
    if wanted is ABSENT:
        return False
    # DynamoDB compares typed values: the number 1 never equals the string "1" nor True.
    if isinstance(stored, bool) != isinstance(wanted, bool):
        return False
    return bool(normalize(stored) == normalize(wanted))


def apply_changes(item: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for attr, val in changes.items():
        if val is None:
            item.pop(attr, None)
        elif isinstance(val, Increment):
            item[attr] = int(item.get(attr, 0)) + val.by
        else:
            item[attr] = val
