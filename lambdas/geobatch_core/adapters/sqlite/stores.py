"""SQLite Function and Job stores for local mode: the DynamoDB adapters' semantics, one file.

Same contract as ``adapters.dynamodb`` (the contract tests run both): conditional writes with
``expect``, ``None`` removing an attribute, ``Increment`` adding, attempts appended or the last one
replaced in the same write, pages in key order with an exclusive start key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters.sqlite.db import VERSION_ROW, Database, apply_changes, dumps, field, holds, loads
from geobatch_core.ports import Item, JobCounts, JobPage, JobWrite, Key
from geobatch_core.records import AttemptRecord, FunctionRecord
from geobatch_core.store import (
    TypedJobs,
    expired,
    pending_request,
    reference_item,
    resent_reference,
)

_OLDEST_FIRST = (
    "SELECT item FROM jobs WHERE function_id = ? AND job_key < ? AND job_key > ? ORDER BY job_key LIMIT ?"
)
_NEWEST_FIRST = (
    "SELECT item FROM jobs WHERE function_id = ? AND job_key < ? AND job_key < ? "
    "ORDER BY job_key DESC LIMIT ?"
)


class SqliteFunctionStore:
    def __init__(self, db: Database):
        self._db = db

    def put_new(self, function: FunctionRecord) -> None:
        item = function.to_item()
        with self._db.write(durable=True) as conn:
            if conn.execute("SELECT 1 FROM functions WHERE id = ?", (item["id"],)).fetchone():
                raise errors.ConflictError(f"Function {item['id']} already exists")
            conn.execute(
                "INSERT INTO functions (id, owner, creation_date, item) VALUES (?, ?, ?, ?)",
                (item["id"], item.get("owner"), item.get("creation_date"), dumps(item)),
            )

    def get(self, function_id: str) -> FunctionRecord:
        row = self._db.read().execute("SELECT item FROM functions WHERE id = ?", (function_id,)).fetchone()
        if row is None:
            raise errors.NotFoundError(f"Function {function_id} does not exist")
        return FunctionRecord.from_item(loads(row[0]))

    def update(
        self, function_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> FunctionRecord:
        with self._db.write(durable=True) as conn:
            row = conn.execute("SELECT item FROM functions WHERE id = ?", (function_id,)).fetchone()
            if row is None:
                raise errors.NotFoundError(f"Function {function_id} does not exist")
            item = loads(row[0])
            if not holds(item, expect or {}):
                raise errors.ConflictError(
                    f"Function {function_id} is {item.get('status')}; the change needs {dict(expect or {})}"
                )
            apply_changes(item, changes)
            item = loads(dumps(item))
            conn.execute(
                "UPDATE functions SET owner = ?, creation_date = ?, item = ? WHERE id = ?",
                (item.get("owner"), item.get("creation_date"), dumps(item), function_id),
            )
        return FunctionRecord.from_item(item)

    def delete(self, function_id: str) -> None:
        with self._db.write(durable=True) as conn:
            conn.execute("DELETE FROM functions WHERE id = ?", (function_id,))

    def list_by_owner(
        self, owner: str | None, *, start: Key | None, limit: int
    ) -> tuple[list[FunctionRecord], Key | None]:
        conn = self._db.read()
        if owner is None:  # a scan: id order
            after = (start or {}).get("id", "")
            rows = conn.execute(
                "SELECT item FROM functions WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        elif start:  # newest first, as the owner-created index is read backwards
            rows = conn.execute(
                "SELECT item FROM functions WHERE owner = ? AND (creation_date, id) < (?, ?) "
                "ORDER BY creation_date DESC, id DESC LIMIT ?",
                (owner, start.get("creation_date", ""), start.get("id", ""), limit),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT item FROM functions WHERE owner = ? ORDER BY creation_date DESC, id DESC LIMIT ?",
                (owner, limit),
            ).fetchall()
        functions = [FunctionRecord.from_item(loads(r[0])) for r in rows]
        if len(functions) < limit:
            return functions, None
        last = functions[-1]
        if owner is None:
            return functions, {"id": last.id}
        return functions, {"id": last.id, "owner": owner, "creation_date": last.creation_date or ""}


class SqliteJobStore(TypedJobs):
    def __init__(self, db: Database):
        self._db = db

    def reserve_reference(
        self, function_id: str, reference_id: str, now_ms: int, fingerprint: str = ""
    ) -> tuple[int, bool]:
        key = f"ref#{reference_id}"
        with self._db.write(durable=True) as conn:
            row = conn.execute(
                "SELECT item FROM jobs WHERE function_id = ? AND job_key = ?", (function_id, key)
            ).fetchone()
            if row is None or expired(loads(row[0]), now_ms // 1000):
                item = reference_item(function_id, reference_id, now_ms, fingerprint)
                conn.execute(
                    "INSERT OR REPLACE INTO jobs (function_id, job_key, item) VALUES (?, ?, ?)",
                    (function_id, key, dumps(item)),
                )
                return now_ms, True
        first = loads(row[0])
        return resent_reference(first, function_id, reference_id, fingerprint), False

    # Records of write requests that carried an Idempotency-Key: rows of the jobs table under a
    # partition of their own per caller ("req#<scope>"), as in the DynamoDB adapter.

    def claim_request(
        self, scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
    ) -> Item | None:
        """None when claimed (first use, or an expired lease of the same request), else the record."""
        partition = f"{layout.REQUEST_PARTITION_PREFIX}{scope}"
        record = pending_request(scope, key, fingerprint, now_s=now_s, lease_s=lease_s, ttl_s=ttl_s)
        with self._db.write(durable=True) as conn:
            row = conn.execute(
                "SELECT item FROM jobs WHERE function_id = ? AND job_key = ?", (partition, key)
            ).fetchone()
            if row is not None:
                held = loads(row[0])
                lapsed = held.get("state") == "pending" and int(held.get("lease_until") or 0) < now_s
                if not (lapsed and held.get("fingerprint") == fingerprint) and not expired(held, now_s):
                    return held
            conn.execute(
                "INSERT OR REPLACE INTO jobs (function_id, job_key, item) VALUES (?, ?, ?)",
                (partition, key, dumps(record)),
            )
        return None

    def purge_expired(self, now_s: int) -> int:
        """Delete references and request records past their time to live (DynamoDB's TTL sweep);
        they already count as absent. The daemon runs it now and then; it scans the jobs table."""
        with self._db.write() as conn:
            cursor = conn.execute(
                "DELETE FROM jobs WHERE (function_id LIKE ? OR job_key LIKE 'ref#%') "
                "AND json_extract(item, ?) < ?",
                (f"{layout.REQUEST_PARTITION_PREFIX}%", f"$.{layout.JOB_TTL_ATTRIBUTE}", now_s),
            )
            return cursor.rowcount

    def complete_request(self, scope: str, key: str, fingerprint: str, response: Mapping[str, Any]) -> None:
        self.update_row(
            f"{layout.REQUEST_PARTITION_PREFIX}{scope}",
            key,
            changes={"state": "done", "lease_until": None, **response},
            expect={"fingerprint": fingerprint},
        )

    def release_request(self, scope: str, key: str) -> None:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT item FROM jobs WHERE function_id = ? AND job_key = ?",
                (f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
            ).fetchone()
            if row is not None and loads(row[0]).get("state") == "pending":
                conn.execute(
                    "DELETE FROM jobs WHERE function_id = ? AND job_key = ?",
                    (f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
                )

    def put_rows(self, items: Sequence[Item], *, check_existing: bool = True) -> list[str]:
        """One transaction per batch; ``INSERT OR IGNORE`` leaves existing jobs alone either way."""
        created: list[str] = []
        with self._db.write(durable=True) as conn:  # a submission survives even a power loss
            for item in items:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO jobs (function_id, job_key, item) VALUES (?, ?, ?)",
                    (item["function_id"], item["job_key"], dumps(item)),
                )
                if cursor.rowcount:
                    created.append(item["job_key"])
        return created

    def get_row(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item:
        row = (
            self._db.read()
            .execute("SELECT item FROM jobs WHERE function_id = ? AND job_key = ?", (function_id, job_key))
            .fetchone()
        )
        if row is None:
            raise errors.NotFoundError(f"job {function_id}-{job_key} does not exist")
        return loads(row[0])

    def update_row(self, function_id: str, job_key: str, **write: Unpack[JobWrite]) -> Item | None:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT item FROM jobs WHERE function_id = ? AND job_key = ?", (function_id, job_key)
            ).fetchone()
            if row is None:
                return None
            item = loads(row[0])
            if not holds(item, write["expect"]):
                return None
            apply_changes(item, write["changes"])
            _apply_attempts(item, write.get("append_attempt"), write.get("replace_last_attempt"))
            text = dumps(item)
            conn.execute(
                "UPDATE jobs SET item = ? WHERE function_id = ? AND job_key = ?", (text, function_id, job_key)
            )
        return loads(text)

    def query_rows(self, function_id: str, **page: Unpack[JobPage]) -> tuple[list[Item], Key | None]:
        # Every SQLite read sees every committed write: ``consistent`` changes nothing.
        start, limit, projection = page["start"], page["limit"], page.get("projection")
        after = (start or {}).get("job_key")
        if page["newest_first"]:
            sql, bound = _NEWEST_FIRST, after if after is not None else layout.JOB_KEY_CEILING
        else:
            sql, bound = _OLDEST_FIRST, after if after is not None else ""
        rows = self._db.read().execute(sql, (function_id, layout.JOB_KEY_CEILING, bound, limit)).fetchall()
        items = [loads(r[0]) for r in rows]
        last = {"function_id": function_id, "job_key": items[-1]["job_key"]} if len(items) == limit else None
        if projection:  # the key attributes too: a projected row is still a job's
            wanted = ["function_id", "job_key", *projection]
            items = [{k: i[k] for k in wanted if k in i} for i in items]
        return items, last

    def delete_batch(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._db.write() as conn:
            conn.executemany("DELETE FROM jobs WHERE function_id = ? AND job_key = ?", list(keys))

    # Counts are kept by triggers on the jobs table (``db.COUNTS_SCHEMA``), in each job write's own
    # transaction; these only read and correct them.

    def counts(self, function_id: str) -> JobCounts:
        rows = (
            self._db.read()
            .execute("SELECT status, n FROM job_counts WHERE function_id = ?", (function_id,))
            .fetchall()
        )
        by_status = {status: int(n) for status, n in rows if status != VERSION_ROW}
        version = next((str(n) for status, n in rows if status == VERSION_ROW), "0")
        return JobCounts(by_status=by_status, version=version)

    def correct_counts(self, function_id: str, deltas: Mapping[str, int], *, version: str) -> bool:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT n FROM job_counts WHERE function_id = ? AND status = ?", (function_id, VERSION_ROW)
            ).fetchone()
            if str(row[0] if row else 0) != version:
                return False
            for status, delta in deltas.items():
                conn.execute(
                    "INSERT INTO job_counts VALUES (?, ?, ?) "
                    "ON CONFLICT (function_id, status) DO UPDATE SET n = n + excluded.n",
                    (function_id, status, int(delta)),
                )
            conn.execute(
                "INSERT INTO job_counts VALUES (?, ?, 1) "
                "ON CONFLICT (function_id, status) DO UPDATE SET n = n + 1",
                (function_id, VERSION_ROW),
            )
        return True

    def delete_counts(self, function_id: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM job_counts WHERE function_id = ?", (function_id,))

    def query_index_rows(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[Item], Key | None]:
        _, partition_attr, sort_attr, _ = layout.JOB_INDEXES[sort]
        part, value = field(partition_attr), field(sort_attr)
        order = "DESC" if descending else "ASC"
        # Column expressions from layout's index table, not input; values are bound parameters.
        sql = f"SELECT item FROM jobs WHERE {part} = ? AND {value} IS NOT NULL"  # nosec B608
        params: list[Any] = [partition]
        if start:
            sql += f" AND ({value}, function_id, job_key) {'<' if descending else '>'} (?, ?, ?)"
            params += [start.get(sort_attr), start.get("function_id"), start.get("job_key")]
        sql += f" ORDER BY {value} {order}, function_id {order}, job_key {order} LIMIT ?"
        rows = self._db.read().execute(sql, (*params, limit)).fetchall()
        items = [loads(r[0]) for r in rows]
        if len(items) < limit:
            return items, None
        last = items[-1]
        return items, {
            "function_id": last["function_id"],
            "job_key": last["job_key"],
            partition_attr: partition,
            sort_attr: last[sort_attr],
        }


def _apply_attempts(item: Item, append: AttemptRecord | None, replace: AttemptRecord | None) -> None:
    """Replace the attempt entry ``replace`` numbers (past the list's end it is appended, as
    DynamoDB's SET past a list's end appends), then append ``append``."""
    if replace is None and append is None:
        return
    attempts = list(item.get("attempts") or [])
    if replace is not None:
        if 0 <= replace.index < len(attempts):
            attempts[replace.index] = replace.to_item()
        else:
            attempts.append(replace.to_item())
    if append is not None:
        attempts.append(append.to_item())
    item["attempts"] = attempts
