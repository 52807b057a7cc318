"""In-memory fakes of the table ports (Function and Job stores of ``geobatch_core.ports``).

They keep the semantics the worker relies on (conditional job transitions with ABSENT / one-of
expectations, Increment, appended / replaced attempt records, SQS visibility and receipts) but do
no I/O, so a benchmark against them measures the worker's own overhead. The state contract tests
(tests/infra/test_state_contract.py, test_records_contract.py: the records their typed methods
answer, the plain rows of ``JobRows``) run them beside moto and SQLite, so they answer alike.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters.sqlite.db import apply_changes, holds, normalize
from geobatch_core.ports import Item, JobCounts, JobPage, JobWrite, Key
from geobatch_core.records import FunctionRecord
from geobatch_core.store import (
    Increment,
    TypedJobs,
    expired,
    reference_item,
    resent_reference,
)


def _apply(item: Item, changes: Mapping[str, Any]) -> None:
    """SQLite's ``apply_changes`` on an item held in memory: the values are copied in, as a store
    that serializes them would."""
    plain = (type(None), Increment)
    apply_changes(
        item, {k: v if isinstance(v, plain) else normalize(copy.deepcopy(v)) for k, v in changes.items()}
    )


class FakeFunctionStore:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.calls = 0

    def put_new(self, function: FunctionRecord) -> None:
        item = function.to_item()
        self.calls += 1
        if item["id"] in self.items:
            raise errors.ConflictError(f"Function {item['id']} already exists")
        self.items[item["id"]] = normalize(copy.deepcopy(dict(item)))

    def get(self, function_id: str) -> FunctionRecord:
        self.calls += 1
        if function_id not in self.items:
            raise errors.NotFoundError(f"Function {function_id} does not exist")
        return FunctionRecord.from_item(copy.deepcopy(self.items[function_id]))

    def update(
        self, function_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> FunctionRecord:
        self.calls += 1
        item = self.items.get(function_id)
        if item is None:
            raise errors.NotFoundError(f"Function {function_id} does not exist")
        if not holds(item, expect or {}):
            raise errors.ConflictError(f"Function {function_id}: expectation {dict(expect or {})} failed")
        _apply(item, changes)
        return FunctionRecord.from_item(copy.deepcopy(item))

    def delete(self, function_id: str) -> None:
        self.calls += 1
        self.items.pop(function_id, None)

    def list_by_owner(
        self, owner: str | None, *, start: Key | None, limit: int
    ) -> tuple[list[FunctionRecord], Key | None]:
        self.calls += 1
        if owner is None:  # a scan: id order
            rows = sorted(self.items.values(), key=lambda i: i["id"])
            rows = [i for i in rows if not start or i["id"] > start["id"]]
        else:  # the owner-created index, read newest first
            rows = sorted(
                (i for i in self.items.values() if i.get("owner") == owner),
                key=lambda i: (i.get("creation_date", ""), i["id"]),
                reverse=True,
            )
            if start:
                bound = (start.get("creation_date", ""), start["id"])
                rows = [i for i in rows if (i.get("creation_date", ""), i["id"]) < bound]
        page = [FunctionRecord.from_item(copy.deepcopy(i)) for i in rows[:limit]]
        if len(rows) <= limit:
            return page, None
        last = page[-1]
        key = {"id": last.id} if owner is None else {"id": last.id, "owner": owner}
        if owner is not None:
            key["creation_date"] = last.creation_date or ""
        return page, key


class FakeJobStore(TypedJobs):
    """Jobs, and per-status counts kept as the DynamoDB adapter keeps them: counter items
    (``layout.count_key``) moved with every write, so a benchmark can size what a read returns."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}
        self._keys: dict[str, list[str]] = {}  # each partition's sort keys, in order
        self.lock = threading.Lock()
        self.calls = 0
        self.counters: dict[tuple[str, str], dict[str, int]] = {}

    def _count(self, function_id: str, job_key: str, old: str | None, new: str | None) -> None:
        if old == new or not layout.counted_partition(function_id):  # operation rows: not jobs
            return
        counter = self.counters.setdefault((function_id, layout.count_key(job_key)), {"v": 0})
        counter["v"] += 1
        for status, delta in ((old, -1), (new, 1)):
            if status is not None:
                counter[f"n_{status}"] = counter.get(f"n_{status}", 0) + delta

    def counts(self, function_id: str) -> JobCounts:
        self.calls += 1  # one Query of the Function's counter items
        totals: dict[str, int] = {}
        versions = {}
        with self.lock:
            for (fid, key), counter in self.counters.items():
                if fid == function_id:
                    versions[key] = counter["v"]
                    for attr, n in counter.items():
                        if attr.startswith("n_"):
                            totals[attr[2:]] = totals.get(attr[2:], 0) + n
        return JobCounts(by_status=totals, version=repr(sorted(versions.items())))

    def counter_items(self, function_id: str) -> list[dict[str, int]]:
        with self.lock:
            return [dict(c) for (fid, _), c in self.counters.items() if fid == function_id]

    def correct_counts(self, function_id: str, deltas: Mapping[str, int], *, version: str) -> bool:
        if self.counts(function_id).version != version:
            return False
        with self.lock:
            counter = self.counters.setdefault((function_id, layout.count_key("")), {"v": 0})
            counter["v"] += 1
            for status, delta in deltas.items():
                counter[f"n_{status}"] = counter.get(f"n_{status}", 0) + delta
        return True

    def delete_counts(self, function_id: str) -> None:
        with self.lock:
            for key in [k for k in self.counters if k[0] == function_id]:
                del self.counters[key]

    def _add(self, key: tuple[str, str], item: Item) -> None:
        if key not in self.items:
            keys = self._keys.setdefault(key[0], [])
            if keys and keys[-1] > key[1]:
                bisect.insort(keys, key[1])
            else:  # job keys grow with time: appending is the common case
                keys.append(key[1])
        self.items[key] = item

    def _remove(self, key: tuple[str, str]) -> None:
        if self.items.pop(key, None) is not None:
            keys = self._keys[key[0]]
            del keys[bisect.bisect_left(keys, key[1])]

    def reserve_reference(
        self, function_id: str, reference_id: str, now_ms: int, fingerprint: str = ""
    ) -> tuple[int, bool]:
        self.calls += 1
        key = (function_id, f"ref#{reference_id}")
        with self.lock:
            fresh = key not in self.items or expired(self.items[key], now_ms // 1000)
            if fresh:
                self._add(key, reference_item(function_id, reference_id, now_ms, fingerprint))
                return now_ms, True
            return resent_reference(self.items[key], function_id, reference_id, fingerprint), False

    def put_rows(self, items: Sequence[Item], *, check_existing: bool = True) -> list[str]:
        self.calls += (len(items) + 24) // 25
        created = []
        with self.lock:
            for item in items:
                key = (item["function_id"], item["job_key"])
                if key not in self.items:
                    self._add(key, normalize(copy.deepcopy(dict(item))))
                    created.append(item["job_key"])
                    self._count(key[0], key[1], None, item.get("status"))
        return created

    def get_row(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item:
        self.calls += 1
        with self.lock:
            item = self.items.get((function_id, job_key))
            if item is None:
                raise errors.NotFoundError(f"job {function_id}-{job_key} does not exist")
            return copy.deepcopy(item)

    def update_row(self, function_id: str, job_key: str, **write: Unpack[JobWrite]) -> Item | None:
        self.calls += 1
        append_attempt, replace_last_attempt = write.get("append_attempt"), write.get("replace_last_attempt")
        with self.lock:
            item = self.items.get((function_id, job_key))
            if item is None or not holds(item, write["expect"]):
                return None
            old = item.get("status")
            _apply(item, write["changes"])
            self._count(function_id, job_key, old, item.get("status"))
            if replace_last_attempt is not None:
                index = replace_last_attempt.index
                attempts = item.setdefault("attempts", [])
                entry = replace_last_attempt.to_item()
                if 0 <= index < len(attempts):
                    attempts[index] = entry
                else:  # DynamoDB's SET on a list index past the end appends (as SQLite does)
                    attempts.append(entry)
            if append_attempt is not None:
                item.setdefault("attempts", []).append(append_attempt.to_item())
            return copy.deepcopy(item)

    def query_rows(self, function_id: str, **page: Unpack[JobPage]) -> tuple[list[Item], Key | None]:
        start, limit, projection = page["start"], page["limit"], page.get("projection")
        self.calls += 1
        with self.lock:
            keys = self._keys.get(function_id, [])
            if page["newest_first"]:
                end = bisect.bisect_left(keys, start["job_key"] if start else layout.JOB_KEY_CEILING)
                keys = keys[max(0, end - limit - 1) : end][::-1]
            else:
                begin = bisect.bisect_right(keys, start["job_key"]) if start else 0
                end = bisect.bisect_left(keys, layout.JOB_KEY_CEILING)
                keys = keys[begin : min(end, begin + limit + 1)]
            taken = keys[:limit]
            rows = [copy.deepcopy(self.items[(function_id, k)]) for k in taken]
        if projection:  # the key attributes too: a projected row is still a job's
            wanted = ["function_id", "job_key", *projection]
            rows = [{k: r[k] for k in wanted if k in r} for r in rows]
        last = {"function_id": function_id, "job_key": taken[-1]} if len(keys) > limit else None
        return rows, last

    def query_index_rows(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[Item], Key | None]:
        """A GSI page; the fake sorts what the index holds (its cost is not what it measures: the
        calls and items read are)."""
        self.calls += 1
        _, partition_attr, sort_attr, _ = layout.JOB_INDEXES[sort]
        with self.lock:
            held = [
                i
                for i in self.items.values()
                if i.get(partition_attr) == partition and i.get(sort_attr) is not None
            ]

        def position(item: Item) -> tuple[Any, str, str]:
            return item[sort_attr], item["function_id"], item["job_key"]

        order = sorted(held, key=position, reverse=descending)
        if start:
            bound = (start[sort_attr], start["function_id"], start["job_key"])
            order = [i for i in order if (position(i) < bound if descending else position(i) > bound)]
        page = [copy.deepcopy(i) for i in order[:limit]]
        if len(order) <= limit:
            return page, None
        last = page[-1]
        key = {"function_id": last["function_id"], "job_key": last["job_key"], partition_attr: partition}
        return page, {**key, sort_attr: last[sort_attr]}

    def delete_batch(self, keys: Iterable[tuple[str, str]]) -> None:
        keys = list(keys)
        self.calls += (len(keys) + 24) // 25
        with self.lock:
            for key in keys:
                gone = self.items.get(key)
                if gone is not None:
                    self._count(key[0], key[1], gone.get("status"), None)
                self._remove(key)
