"""DynamoDB adapters for the Function and Job stores (the only DynamoDB code in GeoBatch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core import layout, schema
from geobatch_core.adapters import dynamodb_counted as counted
from geobatch_core.adapters import dynamodb_counts as counts
from geobatch_core.adapters import dynamodb_requests as requests
from geobatch_core.adapters.dynamodb_items import ERRORS, Update, deserialize, serialize
from geobatch_core.adapters.reachable import reachable
from geobatch_core.ports import Item, JobCounts, JobPage, JobWrite, Key
from geobatch_core.records import FunctionRecord
from geobatch_core.store import TypedJobs, reference_item, resent_reference

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesUnionTypeDef


class DynamoFunctionStore:
    def __init__(self, client: DynamoDBClient, table: str):
        self._db = reachable(client, "DynamoDB")
        self._table = table

    def put_new(self, function: FunctionRecord) -> None:
        item = function.to_item()
        try:
            self._db.put_item(
                TableName=self._table, Item=serialize(item), ConditionExpression="attribute_not_exists(id)"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise errors.ConflictError(f"Function {item['id']} already exists") from None
            raise ERRORS.error(exc, "create the Function") from None

    def get(self, function_id: str) -> FunctionRecord:
        try:
            raw = self._db.get_item(
                TableName=self._table, Key=schema.FUNCTIONS.key(function_id), ConsistentRead=True
            )
        except ClientError as exc:
            raise ERRORS.error(exc, "read the Function") from None
        if "Item" not in raw:
            raise errors.NotFoundError(f"Function {function_id} does not exist")
        return FunctionRecord.from_item(deserialize(raw["Item"]))

    def update(
        self, function_id: str, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
    ) -> FunctionRecord:
        upd = Update()
        expression = upd.update_expression(changes)
        condition = upd.condition(expect or {}, "id")
        try:
            raw = self._db.update_item(
                TableName=self._table,
                Key=schema.FUNCTIONS.key(function_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                **upd.kwargs(),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                current = self.get(function_id)  # raises NotFound when it is gone
                raise errors.ConflictError(
                    f"Function {function_id} is {current.status}; the change needs {dict(expect or {})}"
                ) from None
            raise ERRORS.error(exc, "update the Function") from None
        return FunctionRecord.from_item(deserialize(raw["Attributes"]))

    def delete(self, function_id: str) -> None:
        try:
            self._db.delete_item(TableName=self._table, Key=schema.FUNCTIONS.key(function_id))
        except ClientError as exc:
            raise ERRORS.error(exc, "delete the Function") from None

    def list_by_owner(
        self, owner: str | None, *, start: Key | None, limit: int
    ) -> tuple[list[FunctionRecord], Key | None]:
        kwargs: dict[str, Any] = {"TableName": self._table, "Limit": limit}
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        try:
            if owner is None:
                raw = self._db.scan(**kwargs)
            else:
                raw = self._db.query(
                    IndexName=layout.FUNCTIONS_OWNER_INDEX,
                    KeyConditionExpression="#o = :o",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":o": {"S": owner}},
                    ScanIndexForward=False,
                    **kwargs,
                )
        except ClientError as exc:
            raise ERRORS.error(exc, "list Functions") from None
        items = [FunctionRecord.from_item(deserialize(i)) for i in raw.get("Items", [])]
        last = raw.get("LastEvaluatedKey")
        return items, (deserialize(last) if last else None)


class DynamoJobStore(TypedJobs):
    """Jobs, and their per-status counts moved in the same transaction (``dynamodb_counts``)."""

    def __init__(self, client: DynamoDBClient, table: str):
        self._db = reachable(client, "DynamoDB")
        self._table = table

    @property
    def db(self) -> DynamoDBClient:
        return self._db

    @property
    def table(self) -> str:
        return self._table

    def _key(self, function_id: str, job_key: str) -> dict[str, Any]:
        return schema.JOBS.key(function_id, job_key)

    def reserve_reference(
        self, function_id: str, reference_id: str, now_ms: int, fingerprint: str = ""
    ) -> tuple[int, bool]:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=serialize(reference_item(function_id, reference_id, now_ms, fingerprint)),
                # A reference past its time to live counts as gone, whether or not TTL removed it yet.
                ConditionExpression="attribute_not_exists(job_key) OR #x < :now",
                ExpressionAttributeNames={"#x": layout.JOB_TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(now_ms // 1000)}},
            )
            return now_ms, True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ERRORS.error(exc, "record the submission") from None
        first = self.get_row(function_id, f"ref#{reference_id}", consistent=True)
        return resent_reference(first, function_id, reference_id, fingerprint), False

    # Records of write requests that carried an Idempotency-Key: ``dynamodb_requests``.

    def claim_request(
        self, scope: str, key: str, fingerprint: str, *, now_s: int, lease_s: int, ttl_s: int
    ) -> Item | None:
        return requests.claim(self, scope, key, fingerprint, now_s=now_s, lease_s=lease_s, ttl_s=ttl_s)

    def complete_request(self, scope: str, key: str, fingerprint: str, response: Mapping[str, Any]) -> None:
        requests.complete(self, scope, key, fingerprint, response)

    def release_request(self, scope: str, key: str) -> None:
        requests.release(self, scope, key)

    def put_rows(self, items: Sequence[Item], *, check_existing: bool = True) -> list[str]:
        """On a resent batch the existing keys are read first (one BatchGetItem per 100) and only new
        jobs are written, each on the condition that it does not exist, in the transactions that
        count them: nothing is created or counted twice. A first submission
        (``check_existing=False``) skips the read."""
        existing: set[str] = set()
        keys = [self._key(i["function_id"], i["job_key"]) for i in items] if check_existing else []
        for start in range(0, len(keys), 100):
            request: Mapping[str, KeysAndAttributesUnionTypeDef] = {
                self._table: {"Keys": keys[start : start + 100], "ProjectionExpression": "job_key"}
            }
            while request:
                try:
                    raw = self._db.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise ERRORS.error(exc, "check existing jobs") from None
                existing.update(r["job_key"]["S"] for r in raw.get("Responses", {}).get(self._table, []))
                request = raw.get("UnprocessedKeys") or {}
        return counted.put_counted(self, [i for i in items if i["job_key"] not in existing])

    def get_row(self, function_id: str, job_key: str, *, consistent: bool = False) -> Item:
        try:
            raw = self._db.get_item(
                TableName=self._table, Key=self._key(function_id, job_key), ConsistentRead=consistent
            )
        except ClientError as exc:
            raise ERRORS.error(exc, "read the job") from None
        if "Item" not in raw:
            raise errors.NotFoundError(f"job {function_id}-{job_key} does not exist")
        return deserialize(raw["Item"])

    def update_row(self, function_id: str, job_key: str, **write: Unpack[JobWrite]) -> Item | None:
        counted_write = layout.counted_partition(function_id)
        if write["changes"].get("status") is not None and counted_write:  # counts move in the same write
            return counted.counted_transition(self, function_id, job_key, write)
        return self.update_job(self.update_args(function_id, job_key, write))

    def update_args(self, function_id: str, job_key: str, write: JobWrite) -> dict[str, Any]:
        """The conditional update of one job, as UpdateItem and TransactWriteItems both take it."""
        upd = Update()
        set_item = None
        append, replace = write.get("append_attempt"), write.get("replace_last_attempt")
        if replace is not None:
            set_item = ("attempts", replace.index, replace.to_item())
        expression = upd.update_expression(
            write["changes"], {"attempts": [append.to_item()]} if append is not None else None, set_item
        )
        condition = upd.condition(write["expect"], "job_key")
        return {
            "Key": self._key(function_id, job_key),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            **upd.kwargs(),
        }

    def update_job(self, args: Mapping[str, Any]) -> Item | None:
        try:
            raw = self._db.update_item(TableName=self._table, ReturnValues="ALL_NEW", **args)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise ERRORS.error(exc, "change the job's state") from None
        return deserialize(raw["Attributes"])

    def query_rows(self, function_id: str, **page: Unpack[JobPage]) -> tuple[list[Item], Key | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": page.get("consistent", False),
            "KeyConditionExpression": "#f = :f AND #k < :c",
            "ExpressionAttributeNames": {"#f": "function_id", "#k": "job_key"},
            "ExpressionAttributeValues": {":f": {"S": function_id}, ":c": {"S": layout.JOB_KEY_CEILING}},
            "ScanIndexForward": not page["newest_first"],
            "Limit": page["limit"],
        }
        projection = page.get("projection")
        if projection:  # the key attributes too: a projected row is still a job's
            wanted = dict.fromkeys(["function_id", "job_key", *projection])
            names = {f"#p{i}": p for i, p in enumerate(wanted)}
            kwargs["ExpressionAttributeNames"].update(names)
            kwargs["ProjectionExpression"] = ", ".join(names)
        return self._query_page(kwargs, page["start"])

    def delete_batch(self, keys: Iterable[tuple[str, str]]) -> None:
        counted.delete_counted(self, keys)

    def counts(self, function_id: str) -> JobCounts:
        return counts.read_counts(self._db, self._table, function_id)

    def correct_counts(self, function_id: str, deltas: Mapping[str, int], *, version: str) -> bool:
        return counts.correct_counts(self._db, self._table, function_id, deltas, version)

    def delete_counts(self, function_id: str) -> None:
        counts.delete_counts(self._db, self._table, function_id)

    def query_index_rows(
        self, sort: str, partition: str, *, start: Key | None, limit: int, descending: bool
    ) -> tuple[list[Item], Key | None]:
        name, partition_attr, _, _ = layout.JOB_INDEXES[sort]
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": partition_attr},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ScanIndexForward": not descending,
            "Limit": limit,
        }
        return self._query_page(kwargs, start)

    def _query_page(self, kwargs: dict[str, Any], start: Key | None) -> tuple[list[Item], Key | None]:
        """One page of a job query from ``start``: its items and the key to resume from (or None)."""
        if start:
            kwargs["ExclusiveStartKey"] = serialize(start)
        try:
            raw = self._db.query(**kwargs)
        except ClientError as exc:
            raise ERRORS.error(exc, "list jobs") from None
        last = raw.get("LastEvaluatedKey")
        return [deserialize(i) for i in raw.get("Items", [])], (deserialize(last) if last else None)
