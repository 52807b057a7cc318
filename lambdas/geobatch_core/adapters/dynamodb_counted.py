"""The job writes that move the per-status counts: each one DynamoDB transaction of the job's own
conditional write(s) and a counter item's deltas (why: ``adapters.dynamodb_counts``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters.dynamodb_counts import (
    RACES,
    TRANSACT_ITEMS,
    chunks,
    counter_update,
    key_of,
    one_of,
    status_deltas,
    transact,
)
from geobatch_core.adapters.dynamodb_items import ERRORS, serialize
from geobatch_core.ports import Item, JobWrite
from geobatch_core.store import ABSENT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T = TypeVar("T")


class CountedStore(Protocol):
    """What the counted writes need of ``DynamoJobStore``."""

    @property
    def db(self) -> DynamoDBClient: ...

    @property
    def table(self) -> str: ...

    def get_row(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item: ...

    def update_args(self, function_id: str, job_key: str, write: JobWrite) -> dict[str, Any]: ...

    def update_job(self, args: Mapping[str, Any]) -> Item | None: ...


def counted_transition(store: CountedStore, function_id: str, job_key: str, write: JobWrite) -> Item | None:
    """A transition that sets ``status``: the job's conditional write and the status deltas in one
    transaction. The deltas need the status it leaves: the expectation's when it names one, else
    (one of several, or none) the job is read and the expectation narrowed to what was read; if
    the write's condition fails the job is read again: if its status moved (to one that still
    qualifies) the write is tried again, if not another expectation failed and so does the write."""
    new_status = write["changes"]["status"]
    wanted = write["expect"].get("status")
    several = wanted is None or wanted is ABSENT or isinstance(wanted, list | tuple | set | frozenset)
    lost_under: list[Any] = []  # the status a failed attempt was narrowed to
    for _ in range(RACES):
        old = None if several else wanted
        if several:
            try:
                old = store.get_row(function_id, job_key, consistent=True).get("status")
            except errors.NotFoundError:
                return None
            if wanted is not None and not one_of(old, wanted):
                return None
            if lost_under and lost_under[-1] == old:
                return None  # the status held still: another expectation failed, as a plain write would
        narrowed: JobWrite = {
            **write,
            "expect": {**write["expect"], "status": ABSENT if old is None else old},
        }
        args = store.update_args(function_id, job_key, narrowed)
        if old == new_status:  # no count moves: the plain conditional write
            return store.update_job(args)
        deltas = status_deltas([old], [new_status])
        items = [
            {"Update": {"TableName": store.table, **args}},
            counter_update(store.table, function_id, layout.count_key(job_key), deltas),
        ]
        if transact(store.db, items, "change the job's state") is None:
            try:  # a transaction returns no item: read back what was written (strongly consistent)
                return store.get_row(function_id, job_key, consistent=True)
            except errors.NotFoundError:
                return None
        if not several:
            return None
        lost_under.append(old)
    raise errors.ThrottledError(f"job {function_id}-{job_key} kept changing; retry shortly")


def put_counted(store: CountedStore, items: Sequence[Item]) -> list[str]:
    """Create jobs that do not exist, counting them: one transaction per run of up to 99 jobs. A job
    created meanwhile by a concurrent resend fails its condition and is left out of the retry."""
    created: list[str] = []
    for function_id, group in _by_function(items, lambda i: i["function_id"]).items():
        raws = [serialize(i) for i in group]
        for run in chunks([len(json.dumps(r)) for r in raws]):
            for _ in range(RACES):
                if not run:
                    break
                puts = [
                    {
                        "Put": {
                            "TableName": store.table,
                            "Item": raws[i],
                            "ConditionExpression": "attribute_not_exists(job_key)",
                        }
                    }
                    for i in run
                ]
                deltas = status_deltas([], [group[i].get("status") for i in run])
                counter = counter_update(
                    store.table, function_id, layout.count_key(group[run[0]]["job_key"]), deltas
                )
                counted = [counter] if layout.counted_partition(function_id) else []
                reasons = transact(store.db, [*puts, *counted], "write jobs")
                if reasons is None:
                    created.extend(group[i]["job_key"] for i in run)
                    break
                run = [
                    i for i, reason in zip(run, reasons, strict=False) if reason != "ConditionalCheckFailed"
                ]
            else:
                raise errors.ThrottledError(
                    "jobs kept conflicting while being written; retry the same request"
                )
    return created


def delete_counted(store: CountedStore, keys: Iterable[tuple[str, str]]) -> None:
    """Delete jobs, counting them out: their statuses are read (one BatchGetItem per 99), then one
    transaction deletes each on the condition that its status is still the one counted."""
    for function_id, group in _by_function(list(keys), lambda k: k[0]).items():
        job_keys = [k for _, k in group]
        for start in range(0, len(job_keys), TRANSACT_ITEMS - 1):
            run = job_keys[start : start + TRANSACT_ITEMS - 1]
            for _ in range(RACES):
                statuses = _statuses(store, function_id, run)
                if not statuses or _delete_run(store, function_id, statuses):
                    break
            else:
                raise errors.ThrottledError("jobs kept changing while being deleted; retry shortly")


def _delete_run(store: CountedStore, function_id: str, statuses: Mapping[str, str | None]) -> bool:
    items: list[dict[str, Any]] = []
    for job_key, status in statuses.items():
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#s)"}
            if status is None
            else {"ConditionExpression": "#s = :s", "ExpressionAttributeValues": {":s": {"S": status}}}
        )
        key = key_of(function_id, job_key)
        items.append(
            {
                "Delete": {
                    "TableName": store.table,
                    "Key": key,
                    "ExpressionAttributeNames": {"#s": "status"},
                    **condition,
                }
            }
        )
    deltas = status_deltas(statuses.values(), [])
    if deltas and layout.counted_partition(function_id):
        first = next(iter(statuses))
        items.append(counter_update(store.table, function_id, layout.count_key(first), deltas))
    return transact(store.db, items, "delete jobs") is None


def _statuses(store: CountedStore, function_id: str, job_keys: Sequence[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    request: dict[str, Any] = {
        store.table: {
            "Keys": [key_of(function_id, k) for k in job_keys],
            "ConsistentRead": True,
            "ProjectionExpression": "job_key, #s",
            "ExpressionAttributeNames": {"#s": "status"},
        }
    }
    while request:
        try:
            raw = store.db.batch_get_item(RequestItems=request)
        except ClientError as exc:
            raise ERRORS.error(exc, "read the jobs to delete") from None
        for row in raw.get("Responses", {}).get(store.table, []):
            found[row["job_key"]["S"]] = row["status"]["S"] if "status" in row else None
        request = raw.get("UnprocessedKeys") or {}
    return found


def _by_function(values: Sequence[T], function_of: Callable[[T], str]) -> dict[str, list[T]]:
    groups: dict[str, list[T]] = {}
    for value in values:
        groups.setdefault(function_of(value), []).append(value)
    return groups
