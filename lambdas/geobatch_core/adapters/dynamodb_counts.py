"""Per-status job counts in DynamoDB: counter items moved in the same transaction as the job.

Every write that creates, deletes or changes the status of a job is one ``TransactWriteItems``:
the job's own conditional write plus an ``ADD`` of the status deltas on one of the Function's
counter items. The two commit together or not at all, so the counts are exact at every moment,
with no lag and no reconciliation needed under any fault a writer can meet:

- a duplicate (a resent message, a retried write whose answer was lost) fails the job's condition,
  so the whole transaction is canceled and nothing is counted twice;
- a crash cannot fall between the job write and the count: there is no "between";
- a lost answer followed by a retry is the duplicate case.

Why not a stream and an aggregator Lambda: it is cheaper per transition (one counter write per
batch), but its counts lag the jobs, and the callers that read counts act on them right after a
write (``wait_for_completion`` right after ``map`` would see 0 outstanding and return; the
scaler's completion event would go out while a submission is being written). Exactness there
also rests on per-shard sequence bookkeeping across shard rollovers and partial batch failures,
a larger argument than "one transaction". The price of transactions: each item in one costs
twice (2 WCU per KB), a status change also writes a counter item, and it reads the new job back
(a transaction returns no item). ``benchmarks/counts.py`` prints the cost per job.

Counter items are spread over ``layout.COUNT_SHARDS`` keys by job key: concurrent transactions on
one item conflict (``TransactionConflict``, retried here with jitter), so spreading keeps
conflicts rare at hundreds of workers; reading the counts is one Query of those few small items.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.ports import Item, JobCounts
from geobatch_core.store import ABSENT

COUNT_ATTRIBUTE = "n_"  # a counter item holds "n_<status>" numbers and a version "v"
VERSION_ATTRIBUTE = "v"
TRANSACT_ITEMS = 100  # DynamoDB's limit of items per transaction
TRANSACT_BYTES = 3_500_000  # its limit is 4 MB per transaction; leave room for the request's frame
CONFLICT_RETRIES = 10
RACES = 8  # a job whose status keeps changing under a one-of expectation: re-read this often
T = TypeVar("T")
_RETRYABLE = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def _reasons(exc: ClientError, count: int) -> list[str]:
    reasons = exc.response.get("CancellationReasons")
    if reasons:
        return [str(r.get("Code") or "None") for r in reasons]
    # Some endpoints put them only in the message: "... reasons [ConditionalCheckFailed, None]".
    message = exc.response.get("Error", {}).get("Message", "")
    if "[" in message:
        return [r.strip() for r in message.rsplit("[", 1)[1].rstrip("]").split(",")][:count]
    return ["Unknown"] * count


def transact(db: Any, items: list[dict[str, Any]], what: str) -> list[str] | None:
    """Run one transaction: None when it committed, else the cancellation reason of each item
    (at least one ``ConditionalCheckFailed``). Conflicts with a concurrent transaction on the
    same counter item, and throttling, are retried with jittered backoff."""
    from geobatch_core.adapters.dynamodb import service_error  # the one mapping of DynamoDB errors

    for attempt in range(CONFLICT_RETRIES):
        try:
            db.transact_write_items(TransactItems=items)
            return None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "TransactionConflictException":
                reasons = ["TransactionConflict"]
            elif code == "TransactionCanceledException":
                reasons = _reasons(exc, len(items))
            else:
                raise service_error(exc, what) from None
        if "ConditionalCheckFailed" in reasons:
            return reasons
        if not any(r in _RETRYABLE for r in reasons):
            raise errors.ServiceError(f"DynamoDB canceled the transaction to {what}: {reasons}")
        time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
    raise errors.ThrottledError(f"DynamoDB kept conflicting on the job counts to {what}; retry shortly")


def counter_update(table: str, function_id: str, count_key: str, deltas: Mapping[str, int]) -> dict[str, Any]:
    """The transaction item that adds ``deltas`` (status -> change) to one counter item."""
    names = {"#v": VERSION_ATTRIBUTE}
    values: dict[str, Any] = {":one": {"N": "1"}}
    adds = ["#v :one"]
    for i, (status, delta) in enumerate(sorted(deltas.items())):
        if delta:
            names[f"#c{i}"] = f"{COUNT_ATTRIBUTE}{status}"
            values[f":c{i}"] = {"N": str(int(delta))}
            adds.append(f"#c{i} :c{i}")
    return {
        "Update": {
            "TableName": table,
            "Key": {"function_id": {"S": function_id}, "job_key": {"S": count_key}},
            "UpdateExpression": "ADD " + ", ".join(adds),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def status_deltas(before: Iterable[str | None], after: Iterable[str | None]) -> dict[str, int]:
    deltas: Counter[str] = Counter()
    for status in before:
        if status is not None:
            deltas[status] -= 1
    for status in after:
        if status is not None:
            deltas[status] += 1
    return {s: d for s, d in deltas.items() if d}


def read_counts(db: Any, table: str, function_id: str) -> JobCounts:
    """One Query of the Function's counter items (a few hundred bytes, whatever the job count)."""
    from geobatch_core.adapters.dynamodb import deserialize, service_error

    kwargs: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "KeyConditionExpression": "#f = :f AND begins_with(#k, :p)",
        "ExpressionAttributeNames": {"#f": "function_id", "#k": "job_key"},
        "ExpressionAttributeValues": {":f": {"S": function_id}, ":p": {"S": layout.COUNT_KEY_PREFIX}},
    }
    totals: Counter[str] = Counter()
    versions: dict[str, int] = {}
    while True:
        try:
            raw = db.query(**kwargs)
        except ClientError as exc:
            raise service_error(exc, "read the job counts") from None
        for item in (deserialize(i) for i in raw.get("Items", [])):
            versions[item["job_key"]] = int(item.get(VERSION_ATTRIBUTE, 0))
            for attr, value in item.items():
                if attr.startswith(COUNT_ATTRIBUTE):
                    totals[attr[len(COUNT_ATTRIBUTE) :]] += int(value)
        if not raw.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = raw["LastEvaluatedKey"]
    return JobCounts(by_status=dict(totals), version=json.dumps(versions, sort_keys=True))


def correct_counts(db: Any, table: str, function_id: str, deltas: Mapping[str, int], version: str) -> bool:
    """Add ``deltas`` if no counter item moved since ``version`` was read: one transaction that
    checks every counter item's version (the ones absent then must still be absent)."""
    seen: dict[str, int] = json.loads(version)
    keys = [f"{layout.COUNT_KEY_PREFIX}{i:02d}" for i in range(layout.COUNT_SHARDS)]
    items: list[dict[str, Any]] = []
    for key in keys:
        condition = (
            {
                "ConditionExpression": "#v = :seen",
                "ExpressionAttributeValues": {":seen": {"N": str(seen[key])}},
            }
            if key in seen
            else {"ConditionExpression": "attribute_not_exists(#v)"}
        )
        if key == keys[0]:
            update = counter_update(table, function_id, key, deltas)["Update"]
            values = {**update["ExpressionAttributeValues"], **condition.get("ExpressionAttributeValues", {})}
            items.append({"Update": {**update, **condition, "ExpressionAttributeValues": values}})
        else:
            check = {
                "TableName": table,
                "Key": _key(function_id, key),
                "ExpressionAttributeNames": {"#v": "v"},
            }
            items.append({"ConditionCheck": {**check, **condition}})
    return transact(db, items, "correct the job counts") is None


def delete_counts(db: Any, table: str, function_id: str) -> None:
    from geobatch_core.adapters.dynamodb import service_error

    keys = [f"{layout.COUNT_KEY_PREFIX}{i:02d}" for i in range(layout.COUNT_SHARDS)]
    for start in range(0, len(keys), 25):
        requests = [{"DeleteRequest": {"Key": _key(function_id, k)}} for k in keys[start : start + 25]]
        try:
            db.batch_write_item(RequestItems={table: requests})
        except ClientError as exc:
            raise service_error(exc, "delete the job counts") from None


def _key(function_id: str, job_key: str) -> dict[str, Any]:
    return {"function_id": {"S": function_id}, "job_key": {"S": job_key}}


def one_of(value: Any, wanted: Any) -> bool:
    options = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
    return any((o is ABSENT and value is None) or (o is not ABSENT and value == o) for o in options)


def chunks(sizes: Sequence[int]) -> Iterable[list[int]]:
    """Indexes of items (of these sizes) in runs that fit one transaction beside a counter update."""
    run: list[int] = []
    size = 0
    for index, item_size in enumerate(sizes):
        if run and (len(run) >= TRANSACT_ITEMS - 1 or size + item_size > TRANSACT_BYTES):
            yield run
            run, size = [], 0
        run.append(index)
        size += item_size
    if run:
        yield run


# ------------------------------------------------------------------ the counted job writes


class CountedStore(Protocol):
    """What the counted writes need of ``DynamoJobStore``."""

    db: Any
    table: str

    def get(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item: ...

    def update_args(
        self,
        function_id: str,
        job_key: str,
        changes: Mapping[str, Any],
        expect: Mapping[str, Any],
        append_attempt: Mapping[str, Any] | None,
        replace_last_attempt: Mapping[str, Any] | None,
    ) -> dict[str, Any]: ...

    def update_job(self, args: Mapping[str, Any]) -> Item | None: ...


def counted_transition(
    store: CountedStore,
    function_id: str,
    job_key: str,
    *,
    changes: Mapping[str, Any],
    expect: Mapping[str, Any],
    append_attempt: Mapping[str, Any] | None = None,
    replace_last_attempt: Mapping[str, Any] | None = None,
) -> Item | None:
    """A transition that sets ``status``: the job's conditional write and the status deltas in one
    transaction. The deltas need the status it leaves: the expectation's when it names one, else
    (one of several, or none) the job is read and the expectation narrowed to what was read; if
    the write's condition fails the job is read again: if its status moved (to one that still
    qualifies) the write is tried again, if not another expectation failed and so does the write."""
    new_status = changes["status"]
    wanted = expect.get("status")
    several = wanted is None or wanted is ABSENT or isinstance(wanted, list | tuple | set | frozenset)
    lost_under: list[Any] = []  # the status a failed attempt was narrowed to
    for _ in range(RACES):
        old = None if several else wanted
        if several:
            try:
                old = store.get(function_id, job_key, consistent=True).get("status")
            except errors.NotFoundError:
                return None
            if wanted is not None and not one_of(old, wanted):
                return None
            if lost_under and lost_under[-1] == old:
                return None  # the status held still: another expectation failed, as a plain write would
        narrowed = {**expect, "status": ABSENT if old is None else old}
        args = store.update_args(
            function_id, job_key, changes, narrowed, append_attempt, replace_last_attempt
        )
        if old == new_status:  # no count moves: the plain conditional write
            return store.update_job(args)
        deltas = status_deltas([old], [new_status])
        items = [
            {"Update": {"TableName": store.table, **args}},
            counter_update(store.table, function_id, layout.count_key(job_key), deltas),
        ]
        if transact(store.db, items, "change the job's state") is None:
            try:  # a transaction returns no item: read back what was written (strongly consistent)
                return store.get(function_id, job_key, consistent=True)
            except errors.NotFoundError:
                return None
        if not several:
            return None
        lost_under.append(old)
    raise errors.ThrottledError(f"job {function_id}-{job_key} kept changing; retry shortly")


def put_counted(store: CountedStore, items: Sequence[Item]) -> list[str]:
    """Create jobs that do not exist, counting them: one transaction per run of up to 99 jobs. A job
    created meanwhile by a concurrent resend fails its condition and is left out of the retry."""
    from geobatch_core.adapters.dynamodb import serialize

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
                reasons = transact(store.db, [*puts, counter], "write jobs")
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
        condition = (
            {"ConditionExpression": "attribute_not_exists(#s)"}
            if status is None
            else {"ConditionExpression": "#s = :s", "ExpressionAttributeValues": {":s": {"S": status}}}
        )
        key = _key(function_id, job_key)
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
    if deltas:
        first = next(iter(statuses))
        items.append(counter_update(store.table, function_id, layout.count_key(first), deltas))
    return transact(store.db, items, "delete jobs") is None


def _statuses(store: CountedStore, function_id: str, job_keys: Sequence[str]) -> dict[str, str | None]:
    from geobatch_core.adapters.dynamodb import service_error

    found: dict[str, str | None] = {}
    request: dict[str, Any] = {
        store.table: {
            "Keys": [_key(function_id, k) for k in job_keys],
            "ConsistentRead": True,
            "ProjectionExpression": "job_key, #s",
            "ExpressionAttributeNames": {"#s": "status"},
        }
    }
    while request:
        try:
            raw = store.db.batch_get_item(RequestItems=request)
        except ClientError as exc:
            raise service_error(exc, "read the jobs to delete") from None
        for row in raw.get("Responses", {}).get(store.table, []):
            found[row["job_key"]["S"]] = row["status"]["S"] if "status" in row else None
        request = raw.get("UnprocessedKeys") or {}
    return found


def _by_function(values: Sequence[T], function_of: Callable[[T], str]) -> dict[str, list[T]]:
    groups: dict[str, list[T]] = {}
    for value in values:
        groups.setdefault(function_of(value), []).append(value)
    return groups
