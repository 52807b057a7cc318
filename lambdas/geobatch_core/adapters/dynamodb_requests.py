"""Records of write requests that carried an Idempotency-Key, in the Jobs table: under a partition
of their own per caller ("req#<scope>"), expiring through the table's TTL. A record is claimed
by one execution (a conditional put), completed with its response (replayed to the retries) or
released when the execution failed transiently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout, schema
from geobatch_core.adapters.dynamodb_counted import CountedStore
from geobatch_core.adapters.dynamodb_items import ERRORS, Update, serialize
from geobatch_core.ports import Item
from geobatch_core.store import pending_request


def claim(
    store: CountedStore, scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
) -> Item | None:
    """Claim ``key`` for one execution: None when claimed (first use, or the lease of an
    execution that died ran out), else the record as it stands (done, or still in progress)."""
    partition = f"{layout.REQUEST_PARTITION_PREFIX}{scope}"
    item = pending_request(scope, key, fingerprint, now_s=now_s, lease_s=lease_s, ttl_s=ttl_s)
    try:
        store.db.put_item(
            TableName=store.table,
            Item=serialize(item),
            # An expired record (TTL lags by up to two days) counts as absent, as in every JobStore.
            ConditionExpression="attribute_not_exists(job_key) OR #x < :now OR "
            "(#s = :pending AND #l < :now AND #f = :fp)",
            ExpressionAttributeNames={
                "#s": "state",
                "#l": "lease_until",
                "#f": "fingerprint",
                "#x": layout.JOB_TTL_ATTRIBUTE,
            },
            ExpressionAttributeValues={
                ":pending": {"S": "pending"},
                ":now": {"N": str(now_s)},
                ":fp": {"S": fingerprint},
            },
        )
        return None
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise ERRORS.error(exc, "record the request") from None
    try:
        return store.get_row(partition, key, consistent=True)
    except errors.NotFoundError:  # released in between: the caller's retry will claim it
        return {"state": "pending", "fingerprint": fingerprint}


def complete(
    store: CountedStore, scope: str, key: str, fingerprint: str, response: Mapping[str, Any]
) -> None:
    """Store the response of the execution that claimed ``key`` (replayed to its retries)."""
    upd = Update()
    changes = {"state": "done", "lease_until": None, **response}
    expression = upd.update_expression(changes)
    condition = upd.condition({"fingerprint": fingerprint}, "job_key")
    try:
        store.db.update_item(
            TableName=store.table,
            Key=schema.JOBS.key(f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
            UpdateExpression=expression,
            ConditionExpression=condition,
            **upd.kwargs(),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise ERRORS.error(exc, "record the response") from None


def release(store: CountedStore, scope: str, key: str) -> None:
    """Forget a claimed key whose execution failed transiently, so a retry runs it again."""
    try:
        store.db.delete_item(
            TableName=store.table,
            Key=schema.JOBS.key(f"{layout.REQUEST_PARTITION_PREFIX}{scope}", key),
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":pending": {"S": "pending"}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise ERRORS.error(exc, "release the request") from None
