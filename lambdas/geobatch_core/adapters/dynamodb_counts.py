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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout
from geobatch_core.adapters.dynamodb_items import ERRORS, deserialize
from geobatch_core.ports import JobCounts
from geobatch_core.store import ABSENT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestTypeDef

COUNT_ATTRIBUTE = "n_"  # a counter item holds "n_<status>" numbers and a version "v"
VERSION_ATTRIBUTE = "v"
TRANSACT_ITEMS = 100  # DynamoDB's limit of items per transaction
TRANSACT_BYTES = 3_500_000  # its limit is 4 MB per transaction; leave room for the request's frame
CONFLICT_RETRIES = 10
RACES = 8  # a job whose status keeps changing under a one-of expectation: re-read this often
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
                raise ERRORS.error(exc, what) from None
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


def read_counts(db: DynamoDBClient, table: str, function_id: str) -> JobCounts:
    """One Query of the Function's counter items (a few hundred bytes, whatever the job count)."""
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
            raise ERRORS.error(exc, "read the job counts") from None
        for item in (deserialize(i) for i in raw.get("Items", [])):
            versions[item["job_key"]] = int(item.get(VERSION_ATTRIBUTE, 0))
            for attr, value in item.items():
                if attr.startswith(COUNT_ATTRIBUTE):
                    totals[attr[len(COUNT_ATTRIBUTE) :]] += int(value)
        if not raw.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = raw["LastEvaluatedKey"]
    return JobCounts(by_status=dict(totals), version=json.dumps(versions, sort_keys=True))


def correct_counts(
    db: DynamoDBClient, table: str, function_id: str, deltas: Mapping[str, int], version: str
) -> bool:
    """Add ``deltas`` if no counter item moved since ``version`` was read: one transaction that
    checks every counter item's version (the ones absent then must still be absent)."""
    seen: dict[str, int] = json.loads(version)
    keys = [f"{layout.COUNT_KEY_PREFIX}{i:02d}" for i in range(layout.COUNT_SHARDS)]
    items: list[dict[str, Any]] = []
    for key in keys:
        condition: dict[str, Any] = (
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
                "Key": key_of(function_id, key),
                "ExpressionAttributeNames": {"#v": "v"},
            }
            items.append({"ConditionCheck": {**check, **condition}})
    return transact(db, items, "correct the job counts") is None


def delete_counts(db: DynamoDBClient, table: str, function_id: str) -> None:
    keys = [f"{layout.COUNT_KEY_PREFIX}{i:02d}" for i in range(layout.COUNT_SHARDS)]
    for start in range(0, len(keys), 25):
        requests: list[WriteRequestTypeDef] = [
            {"DeleteRequest": {"Key": key_of(function_id, k)}} for k in keys[start : start + 25]
        ]
        try:
            db.batch_write_item(RequestItems={table: requests})
        except ClientError as exc:
            raise ERRORS.error(exc, "delete the job counts") from None


def key_of(function_id: str, job_key: str) -> dict[str, Any]:
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
